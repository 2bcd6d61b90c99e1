import numpy as np
import pytest

from microvae import synthetic
from microvae.correlations import fftshift_map, radial_distances, s2, s3, s3_map
from microvae.correlations.reference import (
    s2_map_reference,
    s2_radial_reference,
    s3_map_reference,
    s3_triangle_reference,
)


def _binary(rng, shape, p=0.4):
    return (rng.random(shape) < p).astype(np.uint8)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("shape", [(3, 12, 10), (2, 9, 11), (2, 6, 8, 7)])
def test_s2_map_equals_bruteforce(rng, periodic, shape):
    images = _binary(rng, shape)
    fast = s2(images, periodic=periodic, radial=False)
    ref = np.stack([s2_map_reference(im, periodic=periodic) for im in images])
    assert fast.shape == images.shape
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("periodic,r_max", [(True, 5), (False, 5), (False, 9)])
@pytest.mark.parametrize("shape", [(3, 12, 10), (2, 6, 8, 7)])
def test_s2_radial_equals_bruteforce(rng, periodic, r_max, shape):
    images = _binary(rng, shape)
    r_max = min(r_max, min(shape[1:]) // 2 if periodic else min(shape[1:]) - 1)
    fast = s2(images, periodic=periodic, r_max=r_max)
    ref = np.stack([s2_radial_reference(im, r_max, periodic=periodic) for im in images])
    assert fast.shape == (len(images), r_max + 1)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("route", ["matrix", "inverse", "slabs"])
def test_s2_volume_routes_equal_bruteforce(rng, monkeypatch, route, periodic):
    # Volumes take the half-spectrum binning matrix when it is small, the inverse transform when
    # periodic and of moderate size, else the slabs; force each on a small volume.
    from microvae.correlations import two_point

    vol = _binary(rng, (1, 8, 9, 10))
    ref = s2_radial_reference(vol[0], 4, periodic=periodic)
    if route != "matrix":
        monkeypatch.setattr(two_point, "_MAX_BINNING_ENTRIES", 0)
    if route == "slabs":
        monkeypatch.setattr(two_point, "_CHUNK_BYTES", 0)
    np.testing.assert_allclose(s2(vol, r_max=4, periodic=periodic)[0], ref, atol=1e-12)


# The new paths (2D: the compiled kernel; volumes: the slabs) against the brute-force reference
# and against the paths of before (2D: inverse transform + bincount; small volumes: the
# half-spectrum binning matrix, today's default for them), on odd sizes.
_KERNEL_SHAPES = [(5, 23, 31), (9, 16, 16), (3, 37, 37), (2, 9, 11, 7), (1, 13, 13, 13)]


def _forced(images, periodic, r_max, dtype, monkeypatch, nd):
    from microvae.correlations import two_point

    with monkeypatch.context() as m:
        m.setattr(two_point, "_MAX_BINNING_ENTRIES", 0)  # 2D: inverse transform; 3D: slabs (below)
        m.setattr(two_point, "_CHUNK_BYTES", 0)
        return s2(images, periodic=periodic, r_max=r_max, dtype=dtype, ndim=nd)


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-12), ("float32", 2e-6)])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("shape", _KERNEL_SHAPES)
def test_s2_kernel_equals_reference_and_old_path(rng, monkeypatch, shape, periodic, dtype, atol):
    images = _binary(rng, shape)
    nd = len(shape) - 1
    r_max = min(shape[1:]) // 2 if periodic else min(shape[1:]) - 2
    default = s2(images, periodic=periodic, r_max=r_max, dtype=dtype, ndim=nd)
    forced = _forced(images, periodic, r_max, dtype, monkeypatch, nd)
    assert default.dtype == forced.dtype == np.dtype(dtype) and default.shape == (len(images), r_max + 1)
    ref = np.stack([s2_radial_reference(im, r_max, periodic=periodic) for im in images[:2]])
    np.testing.assert_allclose(default[:2], ref, rtol=0, atol=atol)
    np.testing.assert_allclose(forced[:2], ref, rtol=0, atol=atol)
    np.testing.assert_allclose(default, forced, rtol=0, atol=atol)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("shape", [(4, 17, 23), (3, 16, 16), (2, 9, 8, 7)])
def test_s2_directional_equals_map_along_axes(rng, shape, periodic):
    images = _binary(rng, shape)
    nd = len(shape) - 1
    r_max = min(shape[1:]) // 2
    out = s2(images, periodic=periodic, directional=True, ndim=nd)
    assert out.shape == (len(images), nd, r_max + 1)
    for i, im in enumerate(images[:2]):
        m = s2_map_reference(im, periodic=periodic)
        for axis in range(nd):
            line = [m[tuple(r if a == axis else 0 for a in range(nd))] for r in range(r_max + 1)]
            np.testing.assert_allclose(out[i, axis], line, atol=1e-12)
    # float32 from the same transforms, within float32 rounding.
    np.testing.assert_allclose(s2(images, periodic=periodic, directional=True, dtype=np.float32, ndim=nd), out,
                               atol=2e-6)


def test_s2_kernel_constants_fold_the_half_spectrum_matrix():
    # The orbit binning matrix is the half-spectrum matrix with equal rows merged: expanding it
    # back over the orbits (times the Hermitian weights) must give the matrix itself.
    from microvae.correlations import two_point

    for shape, periodic in [((16, 16), True), ((16, 16), False), ((9, 14), True), ((9, 14), False)]:
        r = min(shape) // 2
        grid = two_point._grid(shape, periodic, (r, r))
        edges = two_point.round_edges(r)
        full = two_point._spectral_binning(shape, grid, periodic, edges)
        orbit, fold, K = two_point.orbit_binning(shape, grid, periodic, edges, None, "float64")
        expanded = K[orbit] * np.tile(fold, grid[0])[:, None]
        np.testing.assert_allclose(expanded, full, rtol=0, atol=1e-15 * np.abs(full).max())
        if shape[0] == shape[1]:
            assert len(K) < len(full) / 3  # the exchange of the axes folds too


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_s2_kernel_variants_agree(isa, tmp_path):
    # Each SIMD variant the CPU runs (the environment variable caps the choice) gives the
    # reference's values; a fresh process, since the choice is made once.
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from microvae import _spectral\n"
        "from microvae.correlations import s2\n"
        "from microvae.correlations.reference import s2_radial_reference\n"
        "im = (np.random.default_rng(0).random((3, 21, 18)) < 0.4).astype(np.uint8)\n"
        "for p in (True, False):\n"
        "    ref = np.stack([s2_radial_reference(i, 9, periodic=p) for i in im])\n"
        "    assert np.abs(s2(im, periodic=p) - ref).max() < 1e-12\n"
        "    assert np.abs(s2(im, periodic=p, dtype='float32') - ref).max() < 2e-6\n"
        "print(_spectral.instruction_set())\n")
    env = {**__import__("os").environ, "MICROVAE_SPECTRAL_ISA": isa}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ({"generic"} if isa == "generic" else {"generic", "avx2"})


def test_s2_rejects_bad_dtype(rng):
    images = _binary(rng, (2, 8, 8))
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        s2(images, dtype="float16")
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        s2(images, dtype="int32")


def test_s2_zero_is_porosity_and_tail_is_square(rng):
    images = synthetic.overlapping_disks((256, 256), 4, 0.5, n=2, seed=1)
    out = s2(images, r_max=100)
    phi = images.mean(axis=(1, 2))
    np.testing.assert_allclose(out[:, 0], phi, atol=1e-14)
    # Beyond 2R the disks are uncorrelated: S2 -> phi^2 up to sampling noise.
    np.testing.assert_allclose(out[:, 60:].mean(axis=1), phi ** 2, atol=0.01)


def _bin_average(f, r_max, nd):
    """Average f(|r|) over the lattice vectors of each radial bin, as the estimator does."""
    d = np.arange(-r_max, r_max + 1)
    radius = np.sqrt(sum(g ** 2 for g in np.meshgrid(*([d] * nd), indexing="ij")))
    bins = np.floor(radius + 0.5).astype(int)
    keep = bins <= r_max
    return np.bincount(bins[keep], weights=f(radius[keep])) / np.bincount(bins[keep])


def test_s2_matches_analytic_overlapping_disks():
    # The pixels sample the continuum medium at lattice points, so the estimate is unbiased.
    # The dominant fluctuation is the realized disk count (porosity std ~0.004 here), so the
    # analytic curve uses the realized porosity; the remaining error is ~1e-3 (6 seeds
    # measured: max 2.6e-3), while a one-pixel radius error would be ~2.5e-2.
    images = synthetic.overlapping_disks((512, 512), 8, 0.5, n=8, seed=3)
    phi = images.mean()
    est = s2(images, r_max=40).mean(axis=0)
    exact = _bin_average(lambda r: synthetic.disks_s2(r, 8, phi), 40, 2)
    assert np.abs(est - exact).max() < 5e-3


def test_s2_3d_matches_analytic_spheres():
    vol = synthetic.overlapping_spheres((80, 80, 80), 5, 0.4, n=1, seed=7)
    est = s2(vol, r_max=20)[0]
    exact = _bin_average(lambda r: synthetic.spheres_s2(r, 5, vol.mean()), 20, 3)
    assert np.abs(est - exact).max() < 5e-3


def test_s2_accepts_single_image_and_volume(rng):
    im = _binary(rng, (16, 16))
    assert s2(im).shape == (1, 9)
    vol = _binary(rng, (8, 8, 8))
    assert s2(vol, ndim=3).shape == (1, 5)
    assert s2(vol).shape == (8, 5)  # a 3D array without ndim is a stack of 2D images


@pytest.mark.parametrize("bad,match", [
    (np.full((4, 8, 8), 2), "binary"),
    (np.full((4, 8, 8), np.nan), "NaN"),
    (np.zeros((0, 8, 8)), "empty"),
    (np.zeros((2, 2, 2, 2, 2)), "shape"),
    (np.array([["a"]]), "dtype"),
])
def test_s2_rejects_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        s2(bad)


def test_s2_rejects_r_max_beyond_half_box_when_periodic(rng):
    with pytest.raises(ValueError, match="r_max"):
        s2(_binary(rng, (1, 16, 16)), r_max=9)
    assert s2(_binary(rng, (1, 16, 16)), periodic=False, r_max=15).shape == (1, 16)


def test_fftshift_and_distances(rng):
    m = s2(_binary(rng, (1, 8, 8)), radial=False)
    assert fftshift_map(m)[0, 4, 4] == m[0, 0, 0]
    np.testing.assert_allclose(radial_distances(3, 0.5), [0, 0.5, 1.0, 1.5])


@pytest.mark.parametrize("periodic", [True, False])
def test_s3_map_equals_bruteforce(rng, periodic):
    images = _binary(rng, (2, 10, 9), 0.5)
    vecs = [(1, 2), (-3, 0), (0, 0)]
    fast = s3_map(images, vecs, periodic=periodic)
    ref = np.stack([[s3_map_reference(im, v, periodic=periodic) for v in vecs] for im in images])
    np.testing.assert_allclose(fast, ref, atol=1e-12)
    # r1 = 0 reduces S3 to S2.
    np.testing.assert_allclose(fast[:, 2], s2(images, periodic=periodic, radial=False), atol=1e-12)


def test_s3_map_3d_equals_bruteforce(rng):
    vol = _binary(rng, (1, 5, 6, 7), 0.5)
    fast = s3_map(vol, [(1, -2, 3)])
    np.testing.assert_allclose(fast[0, 0], s3_map_reference(vol[0], (1, -2, 3)), atol=1e-12)


def test_s3_sampled_agrees_with_exact_orientation_average(rng):
    image = _binary(rng, (1, 24, 24), 0.5)
    est = s3(image, [3.0, 5.0], [4.0], [0.7, 2.0], n_samples=100_000, seed=1)
    for i, r in enumerate([3.0, 5.0]):
        for k, th in enumerate([0.7, 2.0]):
            ref = s3_triangle_reference(image[0], r, 4.0, th)
            # 5 standard errors: a wrong geometry or rounding rule is off by far more.
            assert abs(est.estimate[0, i, 0, k] - ref) < 5 * est.stderr[0, i, 0, k] + 1e-3


def test_s3_sampled_degenerate_cases(rng):
    ones = np.ones((1, 16, 16), dtype=np.uint8)
    est = s3(ones, [2.0], [3.0], [1.0], n_samples=100, seed=0)
    assert est.estimate[0, 0, 0, 0] == 1.0 and est.stderr[0, 0, 0, 0] == 0.0
    # r = s = 0: every triangle is one pixel, so S3 is the porosity (up to sampling).
    image = _binary(rng, (1, 32, 32), 0.3)
    est = s3(image, [0.0], [0.0], [0.0], n_samples=200_000, seed=2)
    assert abs(est.estimate.item() - image.mean()) < 5 * est.stderr.item()


def test_s3_sampled_reproducible_and_3d(rng):
    vol = synthetic.overlapping_spheres((40, 40, 40), 4, 0.5, n=1, seed=0)
    a = s3(vol, [2.0, 4.0], [3.0], [1.0], n_samples=20_000, seed=5)
    b = s3(vol, [2.0, 4.0], [3.0], [1.0], n_samples=20_000, seed=5)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    t = np.sqrt(2.0 ** 2 + 3.0 ** 2 - 2 * 2 * 3 * np.cos(1.0))
    exact = synthetic.spheres_s3(2.0, 3.0, t, 4, 0.5)
    # One 40³ volume: sampling error of the medium (~0.01) dominates the Monte Carlo error.
    assert abs(a.estimate[0, 0, 0, 0] - exact) < 0.03


def test_s3_sampled_non_periodic_stays_inside(rng):
    # Pore only in the first and last rows: a triangle with all three vertices in pore must
    # straddle the top/bottom edge, i.e. wrap. Non-periodic: exactly 0, every draw inside.
    # Periodic: the exact orientation average, 0.006 (120 of the 20 000 draws wrap onto pore).
    image = np.zeros((1, 20, 20), dtype=np.uint8)
    image[0, 0, :] = image[0, -1, :] = 1
    est = s3(image, [3.0], [3.0], [0.5], n_samples=20_000, periodic=False, seed=0)
    assert est.trials.item() == 20_000
    assert est.estimate.item() == 0.0
    wrapped = s3(image, [3.0], [3.0], [0.5], n_samples=20_000, periodic=True, seed=0)
    exact = s3_triangle_reference(image[0], 3.0, 3.0, 0.5)
    assert exact > 0.005 and wrapped.estimate.item() > 0.004
    assert abs(wrapped.estimate.item() - exact) < 5 * wrapped.stderr.item() + 1e-3


def test_s3_rejects_bad_grid(rng):
    with pytest.raises(ValueError, match="r must"):
        s3(_binary(rng, (1, 8, 8)), [-1.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="r1"):
        s3_map(_binary(rng, (1, 8, 8)), [(1, 2, 3)])
