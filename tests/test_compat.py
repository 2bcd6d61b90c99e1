"""microvae.compat against the real PoreSpy 3.2 and PyMKS 0.4.1 (both in the test extra), on
random images and on Berea slices: same fields, shapes, dtypes, chunks, values within 1e-10."""
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # PyMKS 0.4.1 imports pkg_resources
    import porespy
    import pymks

from microvae.compat import porespy as mps
from microvae.compat import pymks as mpk
from microvae.correlations.reference import s2_map_reference
from tests.conftest import shared_file

TOL = 1e-10
PS_FIELDS = ["distance", "bin_centers", "bin_edges", "bin_widths", "probability", "probability_scaled", "pdf",
             "relfreq"]


def _fields(result):
    return [k for k in vars(result) if not k.startswith("_")]


def assert_same_results(ours, theirs):
    assert _fields(ours) == _fields(theirs) == PS_FIELDS
    for key in PS_FIELDS:
        a, b = np.asarray(ours[key]), np.asarray(theirs[key])
        assert a.shape == b.shape, key
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=key)


@pytest.fixture(scope="module")
def berea_slices():
    from microvae.io import load

    vol = load(shared_file("berea.zip"), pore_value=0)
    return np.stack([vol[50, :128, :128], vol[200, 100:228, 30:158], vol[:128, 300, 200:328]])


@pytest.fixture(autouse=True)
def _synchronous_dask():
    with dask.config.set(scheduler="synchronous"):
        yield


# ---------------------------------------------------------------------------- PoreSpy

@pytest.mark.parametrize("shape, bins", [
    ((64, 64), 100), ((50, 73), 10), ((41, 41), 3), ((30, 45), np.array([0, 5, 20, 40, 50.0])),
    ((40, 40), np.linspace(0.5, 30.5, 7)), ((19, 23, 17), 100), ((16, 20, 24), 4)])
def test_two_point_correlation_equals_porespy(rng, shape, bins):
    im = rng.random(shape) < 0.35
    assert_same_results(mps.two_point_correlation(im, voxel_size=2.5, bins=bins),
                        porespy.metrics.two_point_correlation(im, voxel_size=2.5, bins=bins))


def test_two_point_correlation_equals_porespy_on_berea(berea_slices):
    for im in berea_slices:
        assert_same_results(mps.two_point_correlation(im), porespy.metrics.two_point_correlation(im.astype(bool)))
    vol = berea_slices[:, :48, :48].copy()  # a 3 x 48 x 48 volume
    assert_same_results(mps.two_point_correlation(vol), porespy.metrics.two_point_correlation(vol.astype(bool)))


def test_two_point_correlation_batch_rows_are_porespy(rng):
    images = (rng.random((5, 33, 40)) < 0.5).astype(np.uint8)
    out = mps.two_point_correlation_batch(images, bins=20)
    assert out.probability.shape == (5, 16)  # 1-pixel bins up to 33 // 2
    for i, im in enumerate(images):
        ref = porespy.metrics.two_point_correlation(im.astype(bool), bins=20)
        np.testing.assert_array_equal(out.bin_edges, ref.bin_edges)
        for key in ("probability", "probability_scaled", "pdf", "relfreq"):
            np.testing.assert_allclose(out[key][i], ref[key], rtol=0, atol=TOL)


def test_two_point_correlation_matches_brute_force_definition(rng):
    """Independent of PoreSpy: bin averages of the non-periodic S2 map from the displacement loop."""
    im = (rng.random((9, 11)) < 0.5).astype(np.uint8)
    padded = np.zeros((17, 21))
    padded[:9, :11] = im
    full = s2_map_reference(padded, periodic=False)  # displacements up to 8 x 10 reach all pairs
    dy, dx = np.meshgrid(np.fft.fftfreq(17, 1 / 17), np.fft.fftfreq(21, 1 / 21), indexing="ij")
    # Undo the zero padding's normalization: pairs inside the 17 x 21 frame -> inside the image.
    overlap_pad = (17 - np.abs(dy)) * (21 - np.abs(dx))
    overlap_im = np.maximum(9 - np.abs(dy), 0) * np.maximum(11 - np.abs(dx), 0)
    inside = overlap_im > 0
    s2 = np.where(inside, full * overlap_pad / np.where(inside, overlap_im, 1), 0)
    dist = np.hypot(dy, dx)
    edges = np.array([0, 1, 2.5, 4, 7, 12])
    out = mps.two_point_correlation(im, bins=edges)
    for b in range(len(edges) - 1):
        sel = inside & (dist >= edges[b]) & (dist < edges[b + 1])
        assert out.pdf[b] == pytest.approx(s2[sel].mean(), abs=1e-12)


def test_porosity_equals_porespy(rng):
    im = rng.integers(0, 3, (20, 30))  # 2 = outside the sample, ignored
    mask = rng.random((20, 30)) < 0.7
    assert mps.porosity(im) == porespy.metrics.porosity(im)
    assert mps.porosity(im, mask=mask) == porespy.metrics.porosity(im, mask=mask)
    pores = im == 1
    assert mps.porosity(pores) == porespy.metrics.porosity(pores) == pytest.approx(pores.mean(), abs=1e-15)


def _dead_end_pores():
    """A 20 x 24 image with one cluster of each kind (pore pixels: 49)."""
    im = np.zeros((20, 24), dtype=bool)
    im[9:11, 8:11] = True                        # closed: 6 pixels touching no face
    im[0:4, 20] = True                           # dead end from the top face: 4
    im[17:20, 0:2] = True                        # corner pocket, its opening wraps the corner: 6
    im[15:20, 10] = im[15:20, 14] = im[15, 10:15] = True  # U with two openings on one face: 13
    im[:, 23] = True                             # one opening (the right face), but spans top to bottom: 20
    return im


@pytest.mark.parametrize("ndim", [2, 3])
def test_porosity_fills_closed_and_surface_pores(ndim):
    im = _dead_end_pores()
    if ndim == 3:  # the same clusters in the middle layer of a volume: its z faces add no openings
        im = np.stack([np.zeros_like(im), im, np.zeros_like(im)], axis=-1)
    before = im.copy()
    for closed, surface, filled in [(False, False, 0), (True, False, 6), (False, True, 10), (True, True, 16)]:
        phi = mps.porosity(im, fill_closed=closed, fill_surface=surface)
        assert phi == pytest.approx((49 - filled) / im.size, abs=1e-15)
        assert phi == pytest.approx(porespy.metrics.porosity(im, fill_closed=closed, fill_surface=surface),
                                    abs=1e-15)
    np.testing.assert_array_equal(im, before)  # the input is never filled in place


@pytest.mark.parametrize("shape", [(150, 150), (40, 40, 40)])
def test_porosity_fill_options_equal_porespy_on_blobs(shape):
    im = porespy.generators.blobs(shape, porosity=0.6, seed=1)
    for closed in (False, True):
        for surface in (False, True):
            assert mps.porosity(im, fill_closed=closed, fill_surface=surface) == pytest.approx(
                porespy.metrics.porosity(im, fill_closed=closed, fill_surface=surface), abs=1e-15)


def test_porosity_fill_options_with_a_mask():
    im = _dead_end_pores()
    mask = np.ones(im.shape, dtype=bool)
    mask[:, :12] = False
    # As in PoreSpy, pixels outside the mask become solid (0). Left in the right half: the
    # U's right arm, now a dead end from the bottom face (7), the dead end from the top (4),
    # the spanning column (20). (PoreSpy 3.2.0 fails here: it indexes with the integer image.)
    assert mps.porosity(im, mask=mask) == porespy.metrics.porosity(im, mask=mask) == 31 / 480
    assert mps.porosity(im, mask=mask, fill_surface=True) == pytest.approx(20 / 480, abs=1e-15)


def test_results_behave_like_porespys(rng):
    out = mps.two_point_correlation(rng.random((20, 20)) < 0.5)
    assert out["probability"] is out.probability
    assert [v.shape for v in out] == [v.shape for v in porespy.metrics.two_point_correlation(
        rng.random((20, 20)) < 0.5)]
    assert "probability_scaled" in str(out) and "Array of size (10,)" in str(out)


def test_porespy_compat_errors(rng):
    im = rng.random((20, 20)) < 0.5
    with pytest.raises(ValueError, match="binary"):
        mps.two_point_correlation(im * 2.5)
    with pytest.raises(ValueError, match="beyond the largest displacement"):
        mps.two_point_correlation(im, bins=np.array([0, 10, 30.0]))
    with pytest.raises(ValueError, match="increasing"):
        mps.two_point_correlation(im, bins=np.array([0, 5, 3.0]))
    with pytest.raises(ValueError, match="positive number of bins"):
        mps.two_point_correlation(im, bins=0)
    with pytest.raises(ValueError, match="one 2D or 3D image"):
        mps.two_point_correlation(im[None, None])
    with pytest.raises(ValueError, match="no 0"):
        mps.porosity(np.full((3, 3), 2))


# ---------------------------------------------------------------------------- PoreSpy chords

CLD_FIELDS = ["L", "pdf", "cdf", "relfreq", "bin_centers", "bin_edges", "bin_widths"]
# PoreSpy's chord_counts reads RegionProperties.filled_area, which scikit-image deprecates.
chords_warnings = pytest.mark.filterwarnings("ignore:.*filled_area:FutureWarning")


def assert_same_chords(ours, theirs, exact=True):
    """Exact equality, or (``exact=False``, PoreSpy's untrimmed cc3d labels) equality on our chord
    pixels with PoreSpy's extra labels allowed only off them: cc3d 4.1.1's stray 2D labels."""
    if exact:
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
        return
    on = ours > 0
    np.testing.assert_array_equal(ours[on], theirs[on])
    assert np.count_nonzero(theirs[~on]) <= max(8, on.size // 500)


@chords_warnings
@pytest.mark.parametrize("shape", [(40, 52), (23, 30, 27)])
@pytest.mark.parametrize("spacing", [1, 2])
@pytest.mark.parametrize("trim_edges", [True, False])
@pytest.mark.parametrize("label", [False, True])
def test_apply_chords_equals_porespy(rng, shape, spacing, trim_edges, label):
    im = rng.random(shape) < 0.6
    for axis in range(len(shape)):
        kw = dict(spacing=spacing, axis=axis, trim_edges=trim_edges, label=label)
        ours, theirs = mps.apply_chords(im, **kw), porespy.filters.apply_chords(im, **kw)
        assert ours.max() > 0
        assert_same_chords(ours, theirs, exact=trim_edges or not label)
        if not trim_edges and not label:
            np.testing.assert_array_equal(ours, porespy.filters.apply_chords(im, spacing=spacing, axis=axis,
                                                                             trim_edges=False, label=True) > 0)


@chords_warnings
def test_apply_chords_equals_porespy_on_berea(berea_slices, berea_volume):
    for im in [*berea_slices, berea_volume[100:140, 200:240, 50:90]]:
        for axis in range(im.ndim):
            for spacing in (1, 3):
                kw = dict(spacing=spacing, axis=axis, label=True)
                assert_same_chords(mps.apply_chords(im, **kw), porespy.filters.apply_chords(im.astype(bool), **kw))


def test_apply_chords_spacing_zero_is_deprecated_and_labelled(rng):
    im = rng.random((20, 24)) < 0.6
    for trim_edges in (True, False):
        with pytest.warns(DeprecationWarning, match="spacing=0"):
            ours = mps.apply_chords(im, spacing=0, axis=1, trim_edges=trim_edges)
        with pytest.warns(DeprecationWarning, match="spacing=0"):
            theirs = porespy.filters.apply_chords(im, spacing=0, axis=1, trim_edges=trim_edges)
        assert ours.max() > 1  # labels, though label=False was passed
        assert_same_chords(ours, theirs)


@chords_warnings
def test_chord_lengths_are_morphologys(rng):
    """PoreSpy's trimmed chords of every other line are the interior runs that
    microvae.morphology.chord_lengths counts, once PoreSpy's outermost sampled lines are dropped."""
    from microvae.morphology import chord_lengths

    im = rng.random((41, 30)) < 0.55
    chords = porespy.filters.apply_chords(im, spacing=1, axis=0)
    theirs = np.bincount(porespy.metrics.chord_counts(chords), minlength=im.shape[0] + 1)
    inner = im[:, ::2][:, 1:-1]  # sampled columns 0, 2, .., 28; PoreSpy drops the first and last
    np.testing.assert_array_equal(chord_lengths(inner, axis=0).counts[0], theirs)


CLD_ARGS = [dict(), dict(bins=None), dict(bins=5, log=True), dict(bins=None, log=True, voxel_size=0.5),
            dict(normalization="length", voxel_size=2.5), dict(bins=np.arange(0, 40, 3.0), normalization="length"),
            dict(bins=7, normalization="number")]


def assert_same_distribution(ours, theirs):
    fields = ["LogL" if "LogL" in vars(theirs) else "L"] + CLD_FIELDS[1:]
    assert _fields(ours) == _fields(theirs) == fields
    for key in fields:
        a, b = ours[key], theirs[key]
        assert a.dtype == b.dtype and a.shape == b.shape, key
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=key)


@chords_warnings
@pytest.mark.parametrize("kwargs", CLD_ARGS)
def test_chord_length_distribution_equals_porespy(rng, berea_slices, berea_volume, kwargs):
    images = [rng.random((60, 45)) < 0.6, rng.random((20, 25, 30)) < 0.6, berea_slices[1].astype(bool),
              berea_volume[100:140, 200:240, 50:90].astype(bool)]
    for im in images:
        for label in (False, True):
            chords = porespy.filters.apply_chords(im, axis=im.ndim - 1, label=label)
            assert_same_distribution(mps.chord_length_distribution(chords, **kwargs),
                                     porespy.metrics.chord_length_distribution(chords, **kwargs))


@chords_warnings
def test_chord_length_distribution_fills_enclosed_holes_like_porespy(rng):
    """PoreSpy measures each cluster with its enclosed holes filled: a 5 x 5 ring counts 25 pixels."""
    ring = np.zeros((9, 11), dtype=bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    ring[1, 8:10] = True
    ours = mps.chord_length_distribution(ring, bins=None)
    assert_same_distribution(ours, porespy.metrics.chord_length_distribution(ring, bins=None))
    assert ours.pdf[25] == ours.pdf[2] == 0.5 and ours.pdf[24] == 0
    im = rng.random((30, 30)) < 0.6  # raw images enclose solid too
    assert_same_distribution(mps.chord_length_distribution(im), porespy.metrics.chord_length_distribution(im))


def test_chord_compat_errors(rng):
    im = rng.random((20, 20)) < 0.5
    with pytest.raises(ValueError, match="binary"):
        mps.apply_chords(im * 2.5)
    with pytest.raises(ValueError, match="spacing"):
        mps.apply_chords(im, spacing=-1)
    with pytest.raises(ValueError, match="axis"):
        mps.apply_chords(im, axis=2)
    with pytest.raises(ValueError, match="one 2D or 3D image"):
        mps.apply_chords(im[0])
    with pytest.raises(ValueError, match="normalization"):
        mps.chord_length_distribution(im, normalization="volume")
    with pytest.raises(ValueError, match="voxel_size"):
        mps.chord_length_distribution(im, voxel_size=0)
    assert "Results of chord_length_distribution" in str(mps.chord_length_distribution(mps.apply_chords(im)))


# ---------------------------------------------------------------------------- PyMKS

def assert_same_array(ours, theirs, atol=TOL):
    assert type(ours) is type(theirs)
    if isinstance(theirs, da.Array):
        assert ours.chunks == theirs.chunks
        ours, theirs = ours.compute(), theirs.compute()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol)


@pytest.mark.parametrize("shape", [(3, 9, 12), (2, 16, 16), (2, 7, 8, 9), (3, 11)])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("cutoff", [None, 2, 100, 0])
def test_two_point_stats_equals_pymks(rng, shape, periodic, cutoff):
    x, y = rng.integers(0, 2, shape), rng.random(shape)
    kw = dict(periodic_boundary=periodic, cutoff=cutoff)
    assert_same_array(mpk.two_point_stats(x, y, **kw), pymks.two_point_stats(x, y, **kw))
    mask = rng.random(shape)
    assert_same_array(mpk.two_point_stats(x, y, mask=mask, **kw), pymks.two_point_stats(x, y, mask=mask, **kw))


def test_two_point_stats_matches_brute_force_definition(rng):
    """Independent of PyMKS: the non-periodic auto-correlation is the S2 map of the slow reference."""
    x = (rng.random((2, 9, 10)) < 0.4).astype(np.uint8)
    out = mpk.two_point_stats(x, x, periodic_boundary=False, cutoff=3)
    for i in range(2):
        ref = np.fft.fftshift(s2_map_reference(x[i], periodic=False))[4 - 3:4 + 4, 5 - 3:5 + 4]
        np.testing.assert_allclose(out[i], ref, atol=1e-12)


def test_two_point_stats_dask_in_dask_out(rng):
    x, y, m = rng.integers(0, 2, (6, 9, 12)), rng.random((6, 9, 12)), rng.random((6, 9, 12))
    dx, dy = da.from_array(x, chunks=(2, 9, 12)), da.from_array(y, chunks=(3, 9, 12))
    dm = da.from_array(m, chunks=(4, 9, 12))
    assert_same_array(mpk.two_point_stats(dx, dy), pymks.two_point_stats(dx, dy))
    kw = dict(mask=dm, periodic_boundary=False, cutoff=3)
    assert_same_array(mpk.two_point_stats(dx, dy, **kw), pymks.two_point_stats(dx, dy, **kw))
    assert_same_array(mpk.two_point_stats(x, dy), pymks.two_point_stats(x, dy))  # NumPy wins
    assert_same_array(mpk.two_point_stats(dx, y), pymks.two_point_stats(dx, y))


def test_two_point_stats_float32_like_pymks(rng):
    y = rng.random((2, 10, 10)).astype(np.float32)
    # PyMKS transforms float32 in float32; ours in float64, so the two agree to float32 precision.
    assert_same_array(mpk.two_point_stats(y, y), pymks.two_point_stats(y, y), atol=1e-6)


def test_two_point_stats_on_berea(berea_slices):
    pores = berea_slices.astype(np.float64)
    for periodic in (True, False):
        kw = dict(periodic_boundary=periodic, cutoff=20)
        assert_same_array(mpk.two_point_stats(pores, 1 - pores, **kw), pymks.two_point_stats(pores, 1 - pores, **kw))


@pytest.mark.parametrize("periodic", [True, False])
def test_two_point_stats_one_mask_for_every_sample(rng, periodic):
    x, y = rng.integers(0, 2, (5, 9, 12)), rng.random((5, 9, 12))
    mask = rng.random((9, 12)) < 0.8  # a region of interest shared by all samples
    every = np.broadcast_to(mask, x.shape).astype(float)
    kw = dict(periodic_boundary=periodic, cutoff=3)
    # The same as PyMKS given the mask repeated for each sample (PyMKS 0.4.1 itself normalizes a
    # one-sample mask along its last axis only, or fails without periodic boundaries).
    want = pymks.two_point_stats(x, y, mask=every, **kw)
    assert_same_array(mpk.two_point_stats(x, y, mask=mask, **kw), want)
    assert_same_array(mpk.two_point_stats(x, y, mask=mask[None].astype(int), **kw), want)  # (1, H, W), ints
    dx, dy = da.from_array(x, chunks=(2, 9, 12)), da.from_array(y, chunks=(3, 9, 12))
    lazy = mpk.two_point_stats(dx, dy, mask=da.from_array(mask.astype(float)), **kw)
    assert_same_array(lazy, pymks.two_point_stats(dx, dy, mask=da.from_array(every, chunks=(5, 9, 12)), **kw))


def test_two_point_stats_masks_are_checked_like_pymks(rng):
    x = rng.random((4, 6, 6))
    for bad in (x * 2, x - 0.5, da.from_array(x * 2)):
        with pytest.raises(RuntimeError, match=r"Mask must be in range \[0,1\]"):
            mpk.two_point_stats(x, x, mask=bad)
        with pytest.raises(RuntimeError, match=r"Mask must be in range \[0,1\]"):
            pymks.two_point_stats(x, x, mask=bad)
    for shape in ((2, 6, 6), (6,), (6, 5)):
        with pytest.raises(ValueError, match=r"mask must have the shape of the arrays \(4, 6, 6\) or of one sample"):
            mpk.two_point_stats(x, x, mask=np.ones(shape))
    with pytest.raises(ValueError, match="NaN"):
        mpk.two_point_stats(x, x, mask=np.full((6, 6), np.nan))
    for ok in (x > 0.5, (x > 0.5).astype(np.int64)):  # booleans and integers are masks too
        assert_same_array(mpk.two_point_stats(x, x, mask=ok), pymks.two_point_stats(x, x, mask=ok))


def test_two_point_stats_is_curried_like_pymks(rng):
    x, y = rng.random((2, 7, 9)), rng.random((2, 7, 9))
    want = pymks.two_point_stats(x, y, periodic_boundary=False, cutoff=2)
    assert callable(mpk.two_point_stats(periodic_boundary=False)) and callable(mpk.two_point_stats(x))
    for got in (mpk.two_point_stats(periodic_boundary=False, cutoff=2)(x, y),
                mpk.two_point_stats(periodic_boundary=False)(cutoff=2)(x)(y),
                mpk.two_point_stats(x, periodic_boundary=False)(y, cutoff=2),
                mpk.two_point_stats(arr2=y, cutoff=2)(x, periodic_boundary=False),
                pymks.two_point_stats(periodic_boundary=False)(cutoff=2)(x)(y)):
        assert_same_array(got, want)
    # Options bound first are replaced by those given later, as with PyMKS's curry.
    assert_same_array(mpk.two_point_stats(cutoff=1)(x, y, cutoff=2, periodic_boundary=False), want)


@pytest.mark.parametrize("correlations", [None, [(0, 1), (2, 2), (1, 0)]])
@pytest.mark.parametrize("periodic", [True, False])
def test_two_point_correlation_transformer_equals_pymks(rng, correlations, periodic):
    data = rng.integers(0, 2, (4, 9, 12, 3)).astype(float)
    kw = dict(correlations=correlations, periodic_boundary=periodic, cutoff=3)
    assert_same_array(mpk.TwoPointCorrelation(**kw).fit(data).transform(data),
                      pymks.TwoPointCorrelation(**kw).fit(data).transform(data))
    lazy = da.from_array(data, chunks=(3, 9, 12, 1))
    assert_same_array(mpk.TwoPointCorrelation(**kw).transform(lazy), pymks.TwoPointCorrelation(**kw).transform(lazy))


@pytest.mark.parametrize("shape", [(3, 9, 12, 3), (2, 7, 8, 9, 2)])
@pytest.mark.parametrize("correlations", [None, [], [(1, 0), (1, 1), (0, 0)]])
@pytest.mark.parametrize("periodic", [True, False])
def test_correlations_multiple_equals_pymks(rng, shape, correlations, periodic):
    data = rng.random(shape)
    kw = dict(periodic_boundary=periodic, cutoff=2)
    assert_same_array(mpk.correlations_multiple(data, correlations, **kw),
                      pymks.correlations_multiple(data, correlations, **kw))
    lazy = da.from_array(data, chunks=(2,) + shape[1:-1] + (1,))
    assert_same_array(mpk.correlations_multiple(lazy, correlations, **kw),
                      pymks.correlations_multiple(lazy, correlations, **kw))


def test_transformer_in_a_pipeline(rng):
    data = rng.integers(0, 2, (5, 8, 8, 2)).astype(float)
    # (PyMKS's own FlattenTransformer no longer fits scikit-learn's transform signature.)
    def pipeline(stats):
        return Pipeline([("stats", stats), ("flat", FunctionTransformer(lambda x: x.reshape(len(x), -1))),
                         ("pca", PCA(n_components=3, svd_solver="full"))])
    ours = pipeline(mpk.TwoPointCorrelation(cutoff=2)).fit_transform(data)
    theirs = pipeline(pymks.TwoPointCorrelation(cutoff=2)).fit_transform(data)
    assert ours.shape == (5, 3)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-8)  # PCA signs are arbitrary
    assert clone(mpk.TwoPointCorrelation(cutoff=2)).get_params() == pymks.TwoPointCorrelation(cutoff=2).get_params()


def test_pymks_compat_ffts_use_the_thread_setting(rng, monkeypatch):
    import scipy.fft

    from microvae import threads

    seen = []

    def spy(real):
        def fft(*args, **kwargs):
            seen.append(kwargs.get("workers"))
            return real(*args, **kwargs)
        return fft

    for name in ("rfftn", "irfftn"):
        monkeypatch.setattr(scipy.fft, name, spy(getattr(scipy.fft, name)))
    monkeypatch.setattr(threads, "_threads", 3)
    x, mask = rng.random((2, 9, 10)), rng.random((2, 9, 10))
    ours = mpk.two_point_stats(x, 1 - x, mask=mask)
    assert len(seen) == 5 and set(seen) == {3}  # 3 forward (two fields, the mask), 2 inverse
    monkeypatch.undo()
    assert_same_array(ours, pymks.two_point_stats(x, 1 - x, mask=mask))


def test_pymks_compat_errors(rng):
    x = rng.random((2, 6, 6))
    with pytest.raises(RuntimeError, match="range"):  # PyMKS's exception type
        mpk.two_point_stats(x, x, mask=x * 2)
    with pytest.raises(ValueError, match="same shape"):
        mpk.two_point_stats(x, x[:, :5])
    with pytest.raises(ValueError, match="cutoff"):
        mpk.two_point_stats(x, x, cutoff=-1)
    with pytest.raises(ValueError, match="NaN"):
        mpk.two_point_stats(x * np.nan, x)
    with pytest.raises(ValueError, match="pair of states"):
        mpk.TwoPointCorrelation(correlations=[(0, 5)]).transform(x[..., None])
