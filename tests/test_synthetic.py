import numpy as np
import pytest

from microvae import synthetic
from microvae.correlations import s2, s3


def _mc_triple(r, s, t, R, dim, n, seed):
    """Monte Carlo volume/area common to three balls of radius R on the triangle (r, s, t)."""
    rng = np.random.default_rng(seed)
    c = (r * r + s * s - t * t) / (2 * r * s)
    centers = np.array([[0, 0, 0], [r, 0, 0], [s * c, s * np.sqrt(1 - c * c), 0]])[:, :dim]
    lo, hi = centers.min(0) - R, centers.max(0) + R
    pts = rng.uniform(lo, hi, (n, dim))
    inside = np.all([np.linalg.norm(pts - c_, axis=1) <= R for c_ in centers], axis=0)
    p = inside.mean()
    box = np.prod(hi - lo)
    return p * box, np.sqrt(p * (1 - p) / n) * box


@pytest.mark.parametrize("tri", [(1.0, 1.2, 0.9), (0.5, 1.5, 1.3), (1.9, 1.9, 0.2), (1.6, 0.4, 1.5)])
def test_triple_overlaps_match_monte_carlo(tri):
    area, err = _mc_triple(*tri, 1.0, 2, 400_000, 0)
    assert abs(synthetic.triple_disk_area(*tri, 1.0) - area) < 5 * err
    vol, err = _mc_triple(*tri, 1.0, 3, 400_000, 1)
    assert abs(synthetic.triple_sphere_volume(*tri, 1.0) - vol) < 5 * err


def test_triple_overlaps_exact_limits():
    R = 2.0
    np.testing.assert_allclose(synthetic.triple_disk_area(0, 0, 0, R), np.pi * R ** 2, rtol=1e-14)
    np.testing.assert_allclose(synthetic.triple_sphere_volume(0, 0, 0, R), 4 / 3 * np.pi * R ** 3, rtol=1e-12)
    # Two coincident centres: the lens of the remaining pair.
    np.testing.assert_allclose(synthetic.triple_disk_area(1.5, 1.5, 0, R), synthetic.lens_area(1.5, R), rtol=1e-13)
    np.testing.assert_allclose(synthetic.triple_sphere_volume(1.5, 1.5, 0, R), synthetic.lens_volume(1.5, R),
                               rtol=1e-6)
    # Nearly coincident centres (1e-10 apart) are still the lens of the pair.
    r, s = 1e-3, 1e-10
    t = np.sqrt(r * r + s * s - 2 * r * s * np.cos(np.pi - 1e-3))
    np.testing.assert_allclose(synthetic.triple_disk_area(r, s, t, 1.0), synthetic.lens_area(r, 1.0), atol=1e-7)
    # An equilateral triangle with side 2R sqrt(3)/... beyond 2R apart: no overlap.
    assert synthetic.triple_disk_area(4.1, 4.1, 4.1, R) == 0.0
    assert synthetic.triple_sphere_volume(4.1, 4.1, 4.1, R) == 0.0


def test_analytic_s3_reduces_to_s2_and_porosity():
    phi, R = 0.3, 5.0
    np.testing.assert_allclose(synthetic.disks_s3(0, 0, 0, R, phi), phi, rtol=1e-12)
    np.testing.assert_allclose(synthetic.disks_s3(4.0, 0.0, 4.0, R, phi), synthetic.disks_s2(4.0, R, phi), rtol=1e-12)
    np.testing.assert_allclose(synthetic.spheres_s3(3.0, 3.0, 0.0, R, phi), synthetic.spheres_s2(3.0, R, phi),
                               rtol=1e-6)
    # Far apart, the three points are independent.
    np.testing.assert_allclose(synthetic.disks_s3(40, 40, 40, R, phi), phi ** 3, rtol=1e-12)
    # Particle phase by inclusion-exclusion: at a single point it is 1 - phi.
    np.testing.assert_allclose(synthetic.disks_s3(0, 0, 0, R, phi, phase="particle"), 1 - phi, rtol=1e-12)
    np.testing.assert_allclose(synthetic.disks_s2(0, R, phi, phase="particle"), 1 - phi, rtol=1e-12)


def test_analytic_s3_matches_sampled_on_large_disk_images():
    images = synthetic.overlapping_disks((512, 512), 8, 0.4, n=2, seed=11)
    phi = images.mean()  # condition on the realized porosity (see test_correlations)
    est = s3(images, [6.0], [10.0], [0.5, 2.5], n_samples=200_000, seed=0).estimate.mean(axis=0)[0, 0]
    t = np.sqrt(6.0 ** 2 + 10.0 ** 2 - 120.0 * np.cos([0.5, 2.5]))
    np.testing.assert_allclose(est, synthetic.disks_s3(6.0, 10.0, t, 8, phi), atol=6e-3)


def test_triangle_inequality_enforced():
    with pytest.raises(ValueError, match="triangle"):
        synthetic.disks_s3(1.0, 1.0, 3.0, 2.0, 0.5)


def test_overlapping_media_porosity_and_reproducibility():
    a = synthetic.overlapping_disks((128, 128), 4, 0.3, n=20, seed=4)
    b = synthetic.overlapping_disks((128, 128), 4, 0.3, n=20, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and set(np.unique(a)) == {0, 1}
    assert abs(a.mean() - 0.3) < 0.01
    v = synthetic.overlapping_spheres((48, 48, 48), 4, 0.5, n=2, seed=0)
    assert v.shape == (2, 48, 48, 48) and abs(v.mean() - 0.5) < 0.02


def test_gaussian_random_field_median_cut_follows_arcsine_law():
    # A Gaussian field with correlation c(r) cut at its median has
    # S2(r) = 1/4 + asin(c(r)) / (2 pi): this checks the covariance (and so the correlation
    # length) and the level together.
    ell = 4.0
    g = synthetic.gaussian_random_field((256, 256), ell, 0.5, n=8, seed=0)
    assert abs(g.mean() - 0.5) < 0.01
    r = np.arange(21)
    exact = 0.25 + np.arcsin(np.exp(-r ** 2 / ell ** 2)) / (2 * np.pi)
    # Bins mix |r| within +-0.5 px; compare away from the steep start with a loose bound.
    np.testing.assert_allclose(s2(g, r_max=20).mean(0)[[0, 3, 5, 8, 12, 20]], exact[[0, 3, 5, 8, 12, 20]], atol=8e-3)
    g3 = synthetic.gaussian_random_field((32, 32, 32), 3, 0.2, n=2, seed=1)
    assert g3.shape == (2, 32, 32, 32) and abs(g3.mean() - 0.2) < 0.03


def test_grains_are_sandstone_like():
    g = synthetic.grains((128, 128), 8, 0.2, n=60, seed=0)
    phi = g.mean(axis=(1, 2))
    assert abs(phi.mean() - 0.2) < 0.02
    assert 0.02 < phi.std() < 0.1  # images differ in porosity, like crops of a real rock


@pytest.mark.parametrize("call,match", [
    (lambda: synthetic.overlapping_disks((64, 64), 4, 1.2), "porosity"),
    (lambda: synthetic.overlapping_disks((64,), 4, 0.2), "shape"),
    (lambda: synthetic.overlapping_disks((64, 64), -1, 0.2), "radius"),
    (lambda: synthetic.gaussian_random_field((64, 64), 3, 0.2, n=0), "n must"),
    (lambda: synthetic.disks_s2(1.0, 2.0, 0.5, phase="rock"), "phase"),
])
def test_bad_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()
