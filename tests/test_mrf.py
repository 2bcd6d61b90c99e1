"""MRF baseline: neighbourhood tables, compiled tree walk and sampler against scikit-learn and a
plain-Python reference, porosity matching, save/load, validation statistics, CLI.

Fast tests on synthetic Gaussian-random-field media; the Berea validation is in
test_mrf_berea.py."""
import json

import numpy as np
import pytest

from microvae.compare import compare_sets
from microvae.correlations import s2
from microvae.morphology import cluster_function, lineal_path
from microvae.mrf import MRF, _sampler, causal_offsets, match_porosity, neighbourhood_table, noncausal_offsets
from microvae.mrf.features import collapse_duplicates, sample_positions
from microvae.mrf.reference import SplitMix64, sample_reference
from microvae.synthetic import gaussian_random_field


@pytest.fixture(scope="module")
def grf():
    """48 level-cut Gaussian random fields, 48^2, correlation length 3 px, porosity 0.3."""
    return gaussian_random_field((48, 48), 3.0, 0.3, n=48, seed=0)


@pytest.fixture(scope="module")
def model(grf):
    return MRF(S=3, gibbs_S=2, max_samples=40_000).fit(grf, seed=0)


# --- neighbourhoods and tables -------------------------------------------------------------

def test_causal_offsets_precede_the_pixel_in_raster_order():
    for S in (1, 2, 5):
        off = causal_offsets(S)
        assert len(off) == 2 * S * (S + 1) == len({tuple(o) for o in off})
        assert np.all((off[:, 0] < 0) | ((off[:, 0] == 0) & (off[:, 1] < 0)))
        assert np.abs(off).max() == S
    assert len(noncausal_offsets(2)) == 24 and (0, 0) not in {tuple(o) for o in noncausal_offsets(2)}
    with pytest.raises(ValueError, match="half-width"):
        causal_offsets(0)


def test_table_matches_a_pixel_loop(rng):
    images = (rng.random((3, 9, 11)) < 0.4).astype(np.uint8)
    off = causal_offsets(2)
    X, y = neighbourhood_table(images, off)
    rows = [([images[n, i + di, j + dj] for di, dj in off], images[n, i, j])
            for n in range(3) for i in range(2, 9) for j in range(2, 9)]
    assert np.array_equal(X, np.array([r[0] for r in rows])) and np.array_equal(y, [r[1] for r in rows])
    pos = sample_positions((9, 11), 3, off, max_samples=20, seed=1)
    Xs, ys = neighbourhood_table(images, off, pos)
    assert len(pos) == 20 and len(np.unique(pos, axis=0)) == 20
    assert np.array_equal(ys, images[pos[:, 0], pos[:, 1], pos[:, 2]])
    k = 7
    assert np.array_equal(Xs[:, k], images[pos[:, 0], pos[:, 1] + off[k, 0], pos[:, 2] + off[k, 1]])
    with pytest.raises(ValueError, match="too small"):
        neighbourhood_table(images, causal_offsets(6))
    with pytest.raises(ValueError, match="complete neighbourhood"):
        neighbourhood_table(images, off, np.array([[0, 0, 0]]))


def test_collapse_duplicates_keeps_every_row_once_with_its_count(rng):
    X = (rng.random((500, 4)) < 0.3).astype(np.uint8)
    y = (rng.random(500) < 0.5).astype(np.uint8)
    Xu, yu, counts = collapse_duplicates(X, y)
    assert counts.sum() == 500 and len(np.unique(np.column_stack([Xu, yu]), axis=0)) == len(Xu)
    full = np.column_stack([X, y])
    for row, c in zip(np.column_stack([Xu, yu]), counts):
        assert np.sum(np.all(full == row, axis=1)) == c


# --- compiled tree walk and sampler ----------------------------------------------------------

def test_compiled_tree_walk_equals_predict_proba_exactly(model, rng):
    for est, tree in ((model.estimator_, model.causal_tree_), (model.gibbs_estimator_, model.gibbs_tree_)):
        X = (rng.random((5000, est.n_features_in_)) < rng.random((5000, 1))).astype(np.uint8)
        ours = _sampler.tree_proba(X, tree["left"], tree["right"], tree["feature"], tree["threshold"], tree["proba"])
        assert np.array_equal(ours, est.predict_proba(X)[:, 1])
        assert len(np.unique(ours)) > 10  # a real tree, not a constant


@pytest.mark.parametrize("options", [{}, {"margin": "noise"}, {"gibbs_sweeps": 2, "burn_in": 0}, {"gibbs_sweeps": 1}])
def test_compiled_sampler_equals_python_reference_bit_for_bit(model, options):
    fast = model.sample(3, size=10, seed=11, **options)
    slow = sample_reference(model, 3, size=10, seed=11, **options)
    assert np.array_equal(fast, slow)
    assert 0 < fast.mean() < 1


def test_splitmix64_reference_stream():
    # First outputs of SplitMix64 seeded with 0 (reference values of the published algorithm).
    g = SplitMix64(0)
    assert [g.next_u64() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_sampling_is_reproducible_and_independent_of_batching_and_threads(model):
    import numba

    a = model.sample(12, size=32, seed=3)
    assert a.shape == (12, 32, 32) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a[:5], model.sample(5, size=32, seed=3, batch_size=2))
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert np.array_equal(a, model.sample(12, size=32, seed=3))
    finally:
        numba.set_num_threads(before)
    assert not np.array_equal(a, model.sample(12, size=32, seed=4))
    assert model.sample(2, size=(20, 36), seed=0).shape == (2, 20, 36)


def test_samples_reproduce_the_training_statistics(model, grf):
    # 48 GRF training images; tolerance: 96 samples of 48^2 have a porosity standard error of
    # ~0.004 and S2 curve noise ~0.002, while white noise at the same porosity is ~0.05 off.
    fake = model.sample(96, size=48, seed=1)
    assert abs(fake.mean() - grf.mean()) < 0.03
    rmse = np.sqrt(np.mean((s2(fake).mean(0) - s2(grf).mean(0)) ** 2))
    noise = (np.random.default_rng(0).random(fake.shape) < grf.mean()).astype(np.uint8)
    rmse_noise = np.sqrt(np.mean((s2(noise).mean(0) - s2(grf).mean(0)) ** 2))
    assert rmse < 0.012 < rmse_noise


def test_samples_are_not_copies_of_training_images(model):
    fake = model.sample(16, size=48, seed=2)
    for f in fake:
        assert np.min(np.mean(model.tiles_ != f, axis=(1, 2))) > 0.1


# --- porosity matching ------------------------------------------------------------------------

def test_match_porosity_flips_only_interface_pixels_of_the_surplus_phase(model):
    raw = model.sample(6, size=40, seed=5)
    targets = np.array([0.1, 0.2, 0.3, 0.4, raw[4].mean(), 0.0])
    out = match_porosity(raw, targets, seed=0)
    counts = out.reshape(6, -1).sum(1)
    assert np.array_equal(counts, np.rint(targets * 1600))
    for k in range(6):
        changed = out[k] != raw[k]
        assert changed.sum() == abs(int(raw[k].sum()) - int(counts[k]))
        if changed.any() and counts[k] > 0:
            # every flipped pixel ends next to a pixel of its new phase (grown/eroded at the interface)
            new = out[k]
            pad = np.pad(new, 1, mode="edge")
            same_neighbour = np.zeros_like(changed)
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
                same_neighbour |= pad[1 + di:41 + di, 1 + dj:41 + dj] == new
            assert np.all(same_neighbour[changed])
    assert np.array_equal(out[4], raw[4])
    assert np.array_equal(out, match_porosity(raw, targets, seed=0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        match_porosity(raw, 1.5)


def test_sample_with_porosity_matching(model):
    fixed = model.sample(4, size=48, seed=0, porosity=0.25)
    assert np.array_equal(fixed.reshape(4, -1).sum(1), np.full(4, round(0.25 * 48 * 48)))
    drawn = model.sample(8, size=48, seed=0, porosity="train")
    phi = drawn.reshape(8, -1).mean(1)
    assert np.all(np.min(np.abs(phi[:, None] - model.train_porosities_[None]), axis=1) < 1 / 48 ** 2)
    with pytest.warns(UserWarning, match="spread"):
        model.sample(1, size=32, seed=0, porosity="train")


# --- fitting ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scoring", ["accuracy", "log_loss", "morphology"])
def test_S_is_chosen_by_cross_validation(grf, scoring):
    m = MRF(S_range=(1, 2, 3), cv_scoring=scoring, cv_samples=6000, cv_images=8, max_samples=6000,
            gibbs_S=None).fit(grf[:12], seed=0)
    assert set(m.cv_scores_) == {1, 2, 3}
    assert m.S_ == max(m.cv_scores_, key=lambda s: (m.cv_scores_[s][0], -s))
    if scoring == "accuracy":
        assert all(0.5 < v[0] <= 1 for v in m.cv_scores_.values())
    else:
        assert all(v[0] < 0 for v in m.cv_scores_.values())


def test_fit_is_deterministic_given_the_seed(grf):
    a = MRF(S=2, max_samples=5000, gibbs_S=None).fit(grf[:8], seed=1)
    b = MRF(S=2, max_samples=5000, gibbs_S=None).fit(grf[:8], seed=1)
    for k in ("left", "feature", "proba"):
        assert np.array_equal(a.causal_tree_[k], b.causal_tree_[k])
    assert np.array_equal(a.tiles_, b.tiles_)


def test_leaf_size_counts_pixels_not_unique_rows(grf):
    m = MRF(S=2, min_samples_leaf=50, max_samples=None, gibbs_S=None).fit(grf[:8], seed=0)
    X, y = neighbourhood_table(grf[:8], causal_offsets(2))
    leaves = m.estimator_.apply(X)
    assert np.bincount(leaves)[np.unique(leaves)].min() >= 50


def test_bad_inputs_give_clear_errors(grf):
    with pytest.raises(ValueError, match="binary"):
        MRF(S=2).fit(grf * 3)
    with pytest.raises(ValueError, match="only phase"):
        MRF(S=2).fit(np.zeros((2, 20, 20), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        MRF(S=5).fit(grf[:, :6, :6])
    with pytest.raises(ValueError, match="2D"):
        MRF(S=2).fit(grf[:2, None])
    with pytest.raises(ValueError, match="S must be"):
        MRF(S=0).fit(grf)
    with pytest.raises(ValueError, match="cv_scoring"):
        MRF(cv_scoring="auc").fit(grf)
    with pytest.raises(ValueError, match="at least 3 training images"):
        MRF().fit(grf[:2])
    with pytest.raises(ValueError, match="not fitted"):
        MRF(S=2).sample(1)
    m = MRF(S=2, max_samples=3000, gibbs_S=None).fit(grf[:4], seed=0)
    with pytest.raises(ValueError, match="Gibbs"):
        m.sample(1, gibbs_sweeps=1)
    with pytest.raises(ValueError, match="margin"):
        m.sample(1, margin="zeros")
    with pytest.raises(ValueError, match="n must be"):
        m.sample(0)
    with pytest.raises(ValueError, match="porosity"):
        m.sample(1, porosity="mean")


# --- save / load ----------------------------------------------------------------------------

def test_save_load_roundtrip_samples_identically(model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    loaded = MRF.load(path)
    assert loaded.S_ == model.S_ and loaded.cv_scores_ == model.cv_scores_
    assert np.array_equal(loaded.tiles_, model.tiles_)
    assert np.array_equal(loaded.sample(5, 40, seed=9, gibbs_sweeps=1), model.sample(5, 40, seed=9, gibbs_sweeps=1))
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(path)
    model.save(path, overwrite=True)
    assert not list(tmp_path.glob(".*tmp"))


def test_load_rejects_missing_corrupt_and_foreign_files(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        MRF.load(tmp_path / "none.npz")
    good = model.save(tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        MRF.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "images.npz", images=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="images.npz: not an MRF model"):
        MRF.load(tmp_path / "images.npz")
    with np.load(tmp_path / "m.npz") as npz:
        arrays = dict(npz)
    meta = json.loads(arrays["meta"].tobytes())
    for change, message in (({"format": "other"}, "not an MRF model"), ({"format_version": 99}, "version 99")):
        bad = dict(arrays, meta=np.frombuffer(json.dumps({**meta, **change}).encode(), np.uint8))
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(ValueError, match=message):
            MRF.load(tmp_path / "bad.npz")
    loop = arrays["causal_left"].copy()
    loop[0] = 0  # a cycle would hang the compiled walk
    np.savez(tmp_path / "loop.npz", **dict(arrays, causal_left=loop))
    with pytest.raises(ValueError, match="inconsistent"):
        MRF.load(tmp_path / "loop.npz")


# --- validation statistics ------------------------------------------------------------------

def _brute_axis_stat(img, r, same):
    h, w = img.shape
    rows = [same(img[i, j:j + r + 1]) for i in range(h) for j in range(w - r)]
    cols = [same(img[i:i + r + 1, j]) for j in range(w) for i in range(h - r)]
    return 0.5 * np.mean(rows) + 0.5 * np.mean(cols)


def test_lineal_path_and_cluster_function_match_brute_force(rng):
    from scipy import ndimage

    img = (rng.random((14, 17)) < 0.55).astype(np.uint8)
    L = lineal_path(img, r_max=6)[0]
    C = cluster_function(img, r_max=6)[0]
    labels, _ = ndimage.label(img)
    for r in range(7):
        assert np.isclose(L[r], _brute_axis_stat(img, r, lambda seg: bool(seg.all())))
        assert np.isclose(C[r], _brute_axis_stat(labels, r, lambda seg: seg[0] > 0 and seg[0] == seg[-1]))
    assert np.isclose(L[0], img.mean()) and np.isclose(C[0], img.mean())
    assert np.all(np.diff(L) <= 0)


def test_compare_reports_rmse_and_porosity(grf):
    same = compare_sets(grf[24:], grf[:24], noise_floor=False)["generated"]["generated"]
    noise = compare_sets(grf, (np.random.default_rng(0).random((24, 48, 48)) < 0.3).astype(np.uint8),
                         noise_floor=False)["generated"]["generated"]
    for key in ("s2", "lineal_path_pore", "cluster"):
        assert same["curves"][key]["rms_diff"] < noise["curves"][key]["rms_diff"] / 3
    assert abs(same["porosity"]["mean"] - grf[:24].mean()) < 1e-12


# --- CLI ------------------------------------------------------------------------------------

def test_cli_fit_and_sample(grf, tmp_path, capsys):
    from microvae.cli import main
    from microvae.io import load, save

    save(tmp_path / "train.npz", grf[:12])
    model = tmp_path / "model"
    assert main(["mrf", "fit", str(tmp_path / "train.npz"), "-o", str(model), "-S", "2", "--max-samples", "8000",
                 "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["S"] == 2 and summary["training_images"] == 12
    out = tmp_path / "fake.npz"
    assert main(["mrf", "sample", str(model), "-n", "5", "--size", "24", "-o", str(out), "--porosity", "0.3",
                 "--mosaic", str(tmp_path / "m.png")]) == 0
    fake = load(out)
    assert fake.shape == (5, 24, 24) and np.allclose(fake.reshape(5, -1).mean(1), round(0.3 * 576) / 576)
    assert np.array_equal(fake, MRF.load(model).sample(5, 24, seed=0, porosity=0.3))
    assert (tmp_path / "m.png").stat().st_size > 0
    assert main(["mrf", "sample", str(model), "-n", "1", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["mrf", "sample", str(tmp_path / "train.npz"), "-n", "1", "-o", str(tmp_path / "x.npz")]) == 2
    assert "not an MRF model" in capsys.readouterr().err
