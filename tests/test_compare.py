"""Fidelity comparison of image sets: compare_sets, its table and figure, and the CLI."""
import json

import numpy as np
import pytest

from microvae import morphology as M
from microvae.compare import (
    CURVES,
    LABELS,
    SCALARS,
    compare_sets,
    describe,
    distribution_distance,
    format_table,
    label_distances,
    label_values,
    pairwise_correlation,
    pattern_divergence,
    plot_comparison,
    save_json,
)
from microvae.correlations import s2
from microvae.synthetic import gaussian_random_field


@pytest.fixture(scope="module")
def sets():
    auth = gaussian_random_field((32, 32), 3.0, 0.3, n=40, seed=0)
    like = gaussian_random_field((32, 32), 3.0, 0.3, n=30, seed=1)
    unlike = gaussian_random_field((32, 32), 1.5, 0.2, n=30, seed=2)
    return auth, like, unlike


@pytest.fixture(scope="module")
def result(sets):
    auth, like, unlike = sets
    return compare_sets(auth, {"like": like, "unlike": unlike}, seed=3)


def test_result_is_json_and_has_every_quantity(result):
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    for name in ("like", "unlike"):
        entry = result["generated"][name]
        assert set(entry["curves"]) == set(CURVES) and set(entry["scalars"]) == set(SCALARS)
        for key in ("mean", "std", "ks", "ks_pvalue", "w1", "w1_rel", "std_ratio", "rel_diff"):
            assert key in entry["porosity"]
    assert result["noise_floor"]["n"] == 20


def test_numbers_match_the_descriptors_computed_directly(sets, result):
    from scipy import stats

    auth, like, _ = sets
    entry = result["generated"]["like"]
    pa, pl = auth.mean(axis=(1, 2)), like.mean(axis=(1, 2))
    assert entry["porosity"]["mean"] == pytest.approx(pl.mean())
    assert entry["porosity"]["std_ratio"] == pytest.approx(pl.std(ddof=1) / pa.std(ddof=1))
    assert entry["porosity"]["w1_rel"] == pytest.approx(stats.wasserstein_distance(pa, pl) / pa.std(ddof=1))
    assert entry["porosity"]["ks_pvalue"] == pytest.approx(stats.ks_2samp(pa, pl).pvalue)
    for key, fn in (("s2", lambda x: s2(x, r_max=16)), ("lineal_path_solid", lambda x: M.lineal_path(x, phase=0)),
                    ("cluster", M.cluster_function)):
        diff = fn(like).mean(axis=0) - fn(auth).mean(axis=0)
        assert entry["curves"][key]["max_diff"] == pytest.approx(np.abs(diff).max())
        assert entry["curves"][key]["rms_diff"] == pytest.approx(np.sqrt(np.mean(diff ** 2)))
    chords = np.nanmean(M.chord_lengths(like, phase=1).probability[:, 1:], axis=0)
    np.testing.assert_allclose(entry["curves"]["chord_pore"]["mean"], chords)
    euler = M.euler_density(like)
    assert entry["scalars"]["euler_density"]["mean"] == pytest.approx(euler.mean())
    perc = M.cluster_statistics(like)["percolates"].mean()
    assert entry["scalars"]["percolation_fraction"]["mean"] == pytest.approx(perc)


def test_unlike_set_is_far_and_like_set_is_near_the_noise_floor(result):
    like, unlike, floor = (result["generated"]["like"], result["generated"]["unlike"], result["noise_floor"])
    for key in CURVES:
        assert unlike["curves"][key]["max_diff"] > 2 * like["curves"][key]["max_diff"], key
    assert unlike["scalars"]["cluster_density"]["w1_rel"] > 3 * floor["scalars"]["cluster_density"]["w1_rel"]
    assert like["porosity"]["ks_pvalue"] > 0.01 and unlike["porosity"]["ks_pvalue"] < 1e-4


def test_noise_floor_is_two_disjoint_seeded_halves(sets):
    auth = sets[0]
    a = compare_sets(auth, auth[:5], seed=1)["noise_floor"]
    b = compare_sets(auth, auth[:5], seed=1)["noise_floor"]
    c = compare_sets(auth, auth[:5], seed=2)["noise_floor"]
    assert a == b and a != c
    order = np.random.default_rng(1).permutation(40)
    half = auth[np.sort(order[20:])]
    assert a["porosity"]["mean"] == pytest.approx(half.mean())


def test_precomputed_descriptors_give_the_same_result(sets, result):
    auth, like, unlike = sets
    again = compare_sets(describe(auth), {"like": describe(like), "unlike": unlike}, seed=3)
    assert again == result
    with pytest.raises(ValueError, match="computed with"):
        compare_sets(describe(auth, r_max=8), like, r_max=10)


def test_diversity_detects_mode_collapse():
    rng = np.random.default_rng(0)
    independent = (rng.random((50, 16, 16)) < 0.4).astype(np.uint8)
    assert abs(pairwise_correlation(independent)) < 0.01
    collapsed = np.repeat(independent[:1], 50, axis=0)
    collapsed[::2, 0, 0] ^= 1
    assert pairwise_correlation(collapsed) > 0.8
    assert np.isnan(pairwise_correlation(np.zeros((5, 8, 8), dtype=np.uint8)))


def test_distribution_distance_of_shifted_values():
    ref = np.arange(10.0)
    d = distribution_distance(ref, ref + 2)
    assert d["w1"] == pytest.approx(2) and d["mean_diff"] == pytest.approx(2)
    assert d["rel_diff"] == pytest.approx(2 / 4.5) and d["std_ratio"] == pytest.approx(1)
    assert np.isnan(distribution_distance([], ref)["ks"])


def test_3d_sets():
    rng = np.random.default_rng(1)
    a = (rng.random((4, 10, 10, 10)) < 0.4).astype(np.uint8)
    b = (rng.random((3, 10, 10, 10)) < 0.5).astype(np.uint8)
    r = compare_sets(a, b)
    assert r["settings"]["ndim"] == 3 and r["settings"]["connectivity"] == 6
    assert r["generated"]["generated"]["porosity"]["mean"] == pytest.approx(b.mean())


def test_bad_sets_are_refused(sets):
    auth = sets[0]
    with pytest.raises(ValueError, match="differ in shape"):
        compare_sets(auth, auth[:, :16, :16])
    with pytest.raises(ValueError, match="at least 2"):
        compare_sets(auth, auth[:1])
    with pytest.raises(ValueError, match="no image sets"):
        compare_sets(auth, {})
    with pytest.raises(ValueError, match="binary"):
        compare_sets(auth, auth * 2.0)
    with pytest.raises(ValueError, match="r_max"):
        compare_sets(auth, auth, r_max=20)


def test_table_and_figure(result, tmp_path):
    table = format_table(result)
    assert "| porosity mean ± std |" in table and "noise floor (20)" in table and "unlike (30)" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1
    path = plot_comparison(tmp_path / "fig.png", result)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        plot_comparison(path, result)
    save_json(tmp_path / "r.json", result)
    assert json.loads((tmp_path / "r.json").read_text()) == result
    with pytest.raises(FileExistsError):
        save_json(tmp_path / "r.json", result)


@pytest.mark.usefixtures("one_torch_thread")
def test_cli(sets, tmp_path, capsys):
    from microvae.cli import main
    from microvae.io import save

    auth, like, unlike = sets
    for name, x in (("auth", auth), ("like", like), ("unlike", unlike)):
        save(tmp_path / f"{name}.npz", x)
    out, fig = tmp_path / "out.json", tmp_path / "fig.png"
    args = ["compare", str(tmp_path / "auth.npz"), str(tmp_path / "like.npz"), f"u={tmp_path / 'unlike.npz'}",
            "-o", str(out), "--plot", str(fig), "--seed", "3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| porosity mean ± std |" in printed and "u (30)" in printed
    saved = json.loads(out.read_text())
    assert set(saved["generated"]) == {"like", "u"}
    assert saved["generated"]["like"] == compare_sets(auth, like, seed=3)["generated"]["generated"]
    assert fig.exists()
    # Existing outputs are refused before any work, and kept.
    before = out.read_bytes()
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    assert main(["compare", str(tmp_path / "auth.npz"), str(tmp_path / "missing.npz")]) == 2
    assert "missing" in capsys.readouterr().err
    # Labels and the classifier test on request, against the held-out images given.
    out2 = tmp_path / "out2.json"
    assert main(["compare", str(tmp_path / "auth.npz"), f"u={tmp_path / 'unlike.npz'}", "--labels", "--c2st",
                 "--c2st-seeds", "1", "--held-out", str(tmp_path / "like.npz"), "-o", str(out2)]) == 0
    printed = capsys.readouterr().out
    assert "C2ST accuracy [95 % CI] vs 30 held-out" in printed and "label E: mean (W1/σ, KS p)" in printed
    saved = json.loads(out2.read_text())
    assert saved["settings"]["c2st"]["seeds"] == 1 and saved["inputs"]["held_out"] == str(tmp_path / "like.npz")
    assert main(["compare", str(tmp_path / "auth.npz"), str(tmp_path / "like.npz"), "--held-out",
                 str(tmp_path / "like.npz")]) == 2
    assert "add --c2st" in capsys.readouterr().err


def test_nearest_correlation_tells_copies_from_new_images():
    from microvae.compare import nearest_correlation

    rng = np.random.default_rng(3)
    train = (rng.random((30, 16, 16)) < 0.3).astype(np.uint8)
    new = (rng.random((20, 16, 16)) < 0.3).astype(np.uint8)
    copies = train[:20].copy()
    copies[:, 0, :3] ^= 1  # nearly identical
    assert nearest_correlation(copies, train) > 0.9
    # Independent noise: the best of 30 correlations of 256 pixels, about 2.2 / sqrt(256).
    assert 0.05 < nearest_correlation(new, train) < 0.3
    # Against a direct loop.
    def unit(v):
        v = v.astype(float).ravel() - v.mean()
        return v / np.linalg.norm(v)
    expected = np.median([max(unit(a) @ unit(b) for b in train) for a in new])
    assert nearest_correlation(new, train) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="differ in shape"):
        nearest_correlation(new, train[:, :8])


def test_pattern_divergence_against_scipy(sets):
    from scipy.spatial.distance import jensenshannon

    auth, like, unlike = sets
    p, q = M.pattern_histogram(unlike).mean(axis=0), M.pattern_histogram(auth).mean(axis=0)
    assert pattern_divergence(unlike, auth) == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    assert pattern_divergence(describe(unlike), describe(auth)) == pattern_divergence(unlike, auth)
    assert pattern_divergence(auth, auth) == 0
    # All solid against all pore: disjoint configurations, 1 bit.
    assert pattern_divergence(np.zeros((2, 8, 8)), np.ones((2, 8, 8))) == pytest.approx(1)
    assert pattern_divergence(unlike, auth) > 5 * pattern_divergence(like, auth)
    with pytest.raises(ValueError, match="windows differ"):
        pattern_divergence(auth, np.zeros((2, 4, 4, 4)))
    with pytest.raises(ValueError, match="default window size"):
        pattern_divergence(describe(auth), auth, size=2)


def test_label_distances_of_tables_and_images(sets):
    auth, like, unlike = sets
    table_a = label_values(auth)
    assert list(table_a) == list(LABELS) and table_a["E"].shape == (40,)
    got = label_distances(unlike, table_a)
    direct = label_values(unlike)
    for k in LABELS:
        assert got[k] == distribution_distance(table_a[k], direct[k])
    # Planar sections of crops: the study's labels with the non-periodic estimators.
    from microvae.properties import label

    np.testing.assert_array_equal(table_a["zeta2"], label(auth, d=3, periodic=False)["zeta2"])
    assert label_distances(like, auth)["E"]["w1_rel"] < got["E"]["w1_rel"]
    with pytest.raises(KeyError, match="lack"):
        label_distances({"E": [1.0]}, table_a)
    with pytest.raises(ValueError, match="unknown labels"):
        label_values(auth, keys=("E", "stiffness"))


@pytest.mark.usefixtures("one_torch_thread")
def test_compare_sets_with_labels_and_classifier(sets):
    auth, like, unlike = sets
    fast = {"seeds": 1, "max_epochs": 3, "patience": 2}
    r = compare_sets(auth, {"like": like, "unlike": unlike}, seed=3, labels=True, c2st=fast, held_out=like)
    assert json.loads(json.dumps(r, allow_nan=False)) == r
    assert r["settings"]["c2st"]["n_held_out"] == 30 and r["settings"]["labels"]["periodic"] is False
    assert set(r["authentic"]["labels"]) == set(LABELS)
    for entry in (r["generated"]["unlike"], r["noise_floor"]):
        assert set(entry["labels"]) == set(LABELS) and 0 <= entry["c2st"]["accuracy"] <= 1
    # The floor's classifier splits the held-out images into halves.
    assert r["noise_floor"]["c2st"]["n_per_class"] == 15
    assert r["generated"]["unlike"]["labels"]["E"]["w1_rel"] > r["noise_floor"]["labels"]["E"]["w1_rel"]
    table = format_table(r)
    assert "C2ST accuracy [95 % CI] vs 30 held-out" in table and "label E: mean (W1/σ, KS p)" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1
    plain = compare_sets(auth, {"like": like, "unlike": unlike}, seed=3)
    assert "c2st" not in plain["generated"]["like"] and "labels" not in plain["authentic"]
