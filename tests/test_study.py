"""The augmentation study: split and draw bookkeeping, leakage, resume, and the report files.

The core takes the labeller and the generators as arguments, so these tests run it with a
porosity-based labeller and Bernoulli-noise generators: seconds instead of hours.
"""
import json
import re
import shutil

import numpy as np
import pytest
import torch

from microvae import study

SIZE = 16
TINY = dict(image_size=SIZE, n_train=12, n_val=10, n_test=10, n_generated=24, added=(6, 24), draws=2,
            predictor=dict(channels=(2, 2, 2, 2), hidden=4, batch_size=8, max_epochs=3, patience=2),
            c2st=dict(seeds=2, max_epochs=4, patience=2, channels=(4, 4)))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def porosity_labeller(images):
    """Closed-form stand-ins for the labels: functions of the porosity only."""
    phi = images.reshape(len(images), -1).mean(axis=1)
    return {"porosity": phi, "E": (1 - phi) ** 2, "D": phi ** 1.5, "k": phi ** 3 / (1 - phi) ** 2,
            "valid": phi < 0.5}


class NoiseGenerator:
    """Bernoulli images around the training porosity; remembers what it was fitted on.

    A third generator for the runner, beside the VAE and the MRF: it only has the methods of
    :class:`microvae.study.Generator`.
    """

    def __init__(self, shift=0.0):
        self.shift, self.seen, self.calls = shift, [], 0

    def describe(self, image_size):
        return {"shift": self.shift}

    def fit(self, images, *, seed, workdir):
        self.calls += 1
        self.seen.append(images.copy())
        assert workdir.is_dir()
        phi = images.reshape(len(images), -1).mean(axis=1)
        self.phi, self.shape = phi, images.shape[1:]

    def sample(self, n, *, seed):
        rng = np.random.default_rng(seed)
        p = np.clip(rng.normal(self.phi.mean() + self.shift, self.phi.std(), n), 0.02, 0.98)
        return (rng.random((n,) + self.shape) < p[:, None, None]).astype(np.uint8)


def authentic(n=40, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.6, n)
    return (rng.random((n, SIZE, SIZE)) < p[:, None, None]).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "run"
    images = authentic()
    gens = {"vae": NoiseGenerator(), "mrf": NoiseGenerator(shift=0.15)}
    config = study.make_config("quick", **TINY)
    paths = study.run_study(images, labeller=porosity_labeller, generators=gens, config=config, out_dir=out,
                            data={"description": "test noise"}, log=lambda msg: None)
    return {"paths": paths, "images": images, "gens": gens, "config": config,
            "results": json.loads(paths["results"].read_text())}


# ---------------------------------------------------------------------- bookkeeping

def test_split_is_disjoint_and_seeded():
    s = study.split_indices(50, 20, 15, 10, seed=3)
    assert [len(s[k]) for k in ("train", "val", "test")] == [20, 15, 10]
    union = np.concatenate(list(s.values()))
    assert len(np.unique(union)) == 45 and union.max() < 50
    again = study.split_indices(50, 20, 15, 10, seed=3)
    other = study.split_indices(50, 20, 15, 10, seed=4)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    assert not np.array_equal(s["test"], other["test"])
    with pytest.raises(ValueError, match="need 45"):
        study.split_indices(44, 20, 15, 10, seed=0)


def test_draws_reproducible_distinct_and_without_replacement():
    a = study.draw_indices(100, 30, draw=0, generator="vae", seed=1)
    assert len(np.unique(a)) == 30 and a.min() >= 0 and a.max() < 100
    np.testing.assert_array_equal(a, study.draw_indices(100, 30, draw=0, generator="vae", seed=1))
    assert not np.array_equal(a, study.draw_indices(100, 30, draw=1, generator="vae", seed=1))
    assert not np.array_equal(a, study.draw_indices(100, 30, draw=0, generator="mrf", seed=1))
    assert not np.array_equal(a, study.draw_indices(100, 30, draw=0, generator="vae", seed=2))
    np.testing.assert_array_equal(study.draw_indices(100, 100, 0, "vae", seed=1), np.arange(100))


def test_plan_cells():
    config = study.make_config("quick", **TINY)
    cells = study.plan_cells(config)
    keys = [c["key"] for c in cells]
    assert len(keys) == len(set(keys))
    # baseline draws + per generator: 2 draws of 6, one draw of all 24
    assert len(cells) == 2 + 2 * (2 + 1)
    assert sum(c["generator"] is None for c in cells) == 2
    # Common random numbers: draw d has the same CNN seed for the baseline and every generator.
    seeds = {(c["draw"], c["cnn_seed"]) for c in cells}
    assert len(seeds) == 2
    # A pool shrunk by non-finite labels turns a size into a single all-samples draw.
    assert len(study.plan_cells(config, {"vae": 6, "mrf": 24})) == 2 + (1 + 1) + (2 + 1)
    assert len(study.plan_cells(config, {"vae": 0, "mrf": 24})) == 2 + (2 + 1)


def test_no_test_or_validation_image_in_any_training_set(tiny_run):
    res = tiny_run["results"]
    split = {k: np.asarray(v) for k, v in res["split"].items()}
    usable = {g: np.arange(n) for g, n in res["generated_usable"].items()}
    for cell in study.plan_cells(tiny_run["config"], res["generated_usable"]):
        auth_idx, gen_idx = study.cell_indices(cell, split, usable, seed=tiny_run["config"].seed)
        assert not set(auth_idx) & (set(split["test"]) | set(split["val"]))
        assert len(gen_idx) == cell["added"] or cell["added"] >= len(usable[cell["generator"]])
    # The generators saw the training + validation images, never a test image.
    with np.load(tiny_run["paths"]["dir"] / "authentic.npz") as npz:
        auth = npz["images"]
    test_rows = {auth[i].tobytes() for i in split["test"]}
    for gen in tiny_run["gens"].values():
        (seen,) = gen.seen
        assert len(seen) == len(split["train"]) + len(split["val"])
        assert not test_rows & {im.tobytes() for im in seen}


def test_cells_record_their_draws(tiny_run):
    cells_dir = tiny_run["paths"]["dir"] / "cells"
    cell = json.loads((cells_dir / "vae_m00006_d01.json").read_text())
    expected = study.draw_indices(24, 6, draw=1, generator="vae", seed=0)
    assert cell["generated_indices"] == expected.tolist()
    assert cell["n_train"] == 12 + 6


def test_pairwise_correlation_detects_mode_collapse():
    rng = np.random.default_rng(0)
    independent = (rng.random((50, 32, 32)) < 0.3).astype(np.uint8)
    # Sampling error of the mean over 1225 pairs of 1024-pixel images: ~1e-3.
    assert abs(study.pairwise_correlation(independent)) < 0.01
    one = independent[:1]
    collapsed = np.repeat(one, 20, axis=0)
    collapsed[::2] &= (rng.random((10, 32, 32)) < 0.9)  # different porosities, same picture
    assert study.pairwise_correlation(collapsed) > 0.8
    assert np.isnan(study.pairwise_correlation(np.zeros((5, 8, 8), dtype=np.uint8)))


# ---------------------------------------------------------------------- outputs

def test_results_json_schema_and_consistency(tiny_run):
    res = tiny_run["results"]
    assert res["config"]["added"] == [6, 24]
    assert set(res["baseline"]) == {"E", "D", "k"}
    assert all(len(v) == 2 for v in res["baseline"].values())
    aug = res["augmented"]
    assert len(aug) == 2 * 3
    assert {(a["generator"], a["added"]) for a in aug} == {(g, m) for g in ("vae", "mrf") for m in (6, 24)}
    for a in aug:
        assert set(a["r2"]) == {"E", "D", "k"} and all(np.isfinite(v) for v in a["r2"].values())
    # The summary is the mean and std of the per-draw values listed beside it.
    vae6 = [a["r2"]["E"] for a in aug if a["generator"] == "vae" and a["added"] == 6]
    assert res["summary"]["vae"]["6"]["E"]["mean"] == pytest.approx(np.mean(vae6))
    assert res["summary"]["vae"]["6"]["E"]["std"] == pytest.approx(np.std(vae6, ddof=1))
    assert res["summary"]["baseline"]["k"]["mean"] == pytest.approx(np.mean(res["baseline"]["k"]))
    dist = res["distribution"]
    assert set(dist["generators"]) == {"vae", "mrf"}
    for q in ("porosity", "E", "D", "k"):
        for g in ("vae", "mrf"):
            assert 0 <= dist["generators"][g][q]["ks"] <= 1
    # The MRF stand-in is shifted by +0.15 porosity: its distribution must match worse.
    assert dist["generators"]["mrf"]["porosity"]["wasserstein"] > dist["generators"]["vae"]["porosity"]["wasserstein"]
    assert dist["generators"]["mrf"]["porosity"]["mean"] > dist["authentic"]["porosity"]["mean"] + 0.05
    assert dist["generators"]["vae"]["pairwise_correlation"] < 0.2  # independent noise, no collapse
    assert res["digest"] == json.loads((tiny_run["paths"]["dir"] / "config.json").read_text())["digest"]
    assert isinstance(res["verdict"]["matches_paper"], bool)


def test_report_agrees_with_results(tiny_run):
    res = tiny_run["results"]
    report = tiny_run["paths"]["report"].read_text()
    assert report == study.render_report(res)
    rows = {}
    for line in report.splitlines():
        m = re.match(r"\| (none \(baseline\)|VAE|MRF) \| (\d+) \| (\d+) \| (.+) \|$", line)
        if m:
            rows[(m.group(1), int(m.group(2)))] = [float(c.split("±")[0]) for c in m.group(4).split(" | ")]
    assert len(rows) == 1 + 2 * 2
    assert rows[("none (baseline)", 0)][0] == pytest.approx(res["summary"]["baseline"]["E"]["mean"], abs=5e-4)
    assert rows[("MRF", 24)][2] == pytest.approx(res["summary"]["mrf"]["24"]["k"]["mean"], abs=5e-4)
    verdict = "matches" if res["verdict"]["matches_paper"] else "does not match"
    assert f"This run {verdict} the paper's finding" in report
    for name in re.findall(r"\]\((figures/[^)]+)\)", report):
        assert (tiny_run["paths"]["dir"] / name).exists(), name


def _morphology_rows(report):
    """The Morphology table of a report: quantity -> [authentic, noise floor, VAE, MRF] cells."""
    section = report[report.index("## Morphology"):report.index("## Realism")]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [c.strip() for c in rows[0]], {r[0].strip(): [c.strip() for c in r[1:]] for r in rows[1:]}


def test_morphology_is_compare_sets_of_all_authentic_images(tiny_run):
    from microvae.compare import CURVES, SCALARS, compare_sets

    res, run_dir = tiny_run["results"], tiny_run["paths"]["dir"]
    morph = res["morphology"]
    with np.load(run_dir / "authentic.npz") as npz:
        auth = npz["images"]
    gen = {}
    for g in ("vae", "mrf"):
        with np.load(run_dir / "generated" / f"{g}.npz") as npz:
            gen[g] = npz["images"]
    # The reference is the distribution section's: every labeled authentic image.
    assert len(auth) == res["distribution"]["authentic"]["n"] == morph["authentic"]["n"] == 32
    assert morph["reference"].startswith("all 32 labeled authentic images")
    expected = json.loads(json.dumps(compare_sets(auth, gen, seed=morph["settings"]["seed"])))
    for key in ("settings", "x", "authentic", "generated", "noise_floor"):
        assert morph[key] == expected[key], key
    assert morph["not_compared"] == []
    for g, e in morph["generated"].items():
        assert e["n"] == 24 and set(e["curves"]) == set(CURVES) and set(e["scalars"]) == set(SCALARS)
        assert {"max_diff", "rms_diff"} <= set(e["curves"]["s2"]) and {"mean_diff", "ks", "w1_rel"} <= \
            set(e["porosity"])
        # The distribution section's S2 difference is the same comparison of the same curves.
        assert e["curves"]["s2"]["max_diff"] == pytest.approx(
            res["distribution"]["generators"][g]["s2_max_abs_diff_of_mean"], rel=1e-12)
    assert morph["noise_floor"]["n"] == 16
    # The MRF stand-in is shifted by +0.15 porosity: further from the authentic set than the
    # VAE stand-in and than the authentic halves from each other.
    vae, mrf, floor = morph["generated"]["vae"], morph["generated"]["mrf"], morph["noise_floor"]
    assert mrf["porosity"]["mean_diff"] > 0.08
    for k in ("s2", "lineal_path_pore", "cluster"):
        assert mrf["curves"][k]["max_diff"] > 2 * max(vae["curves"][k]["max_diff"], floor["curves"][k]["max_diff"])


def test_realism_judges_generators_against_images_they_never_saw(tiny_run):
    from microvae.c2st import c2st
    from microvae.compare import label_distances

    res, run_dir = tiny_run["results"], tiny_run["paths"]["dir"]
    real = res["realism"]
    with np.load(run_dir / "authentic.npz") as npz:
        fitted = npz["label_pool_index"][np.concatenate([npz["split_train"], npz["split_val"]])].astype(int)
        table = {k[6:]: npz[k] for k in npz.files if k.startswith("label_")}
        split = {k[6:]: npz[k] for k in npz.files if k.startswith("split_")}
    # Held out: the 40 - 22 pool images that no generator was fitted on, and nothing else.
    held = tiny_run["images"][np.setdiff1d(np.arange(40), fitted)]
    assert real["n_held_out"] == 18
    with np.load(run_dir / "generated" / "vae.npz") as npz:
        vae = npz["images"]
    again = c2st(vae, held, **res["config"]["c2st"])
    assert real["c2st"]["vae"]["accuracies"] == again["accuracies"] and real["c2st"]["vae"]["n_per_class"] == 18
    # Halves of 9 images per class are too few for a noise floor: said, not run.
    assert "skipped" in real["c2st"]["noise_floor"]
    assert set(real["labels"]) == {"reference", "vae", "mrf"} and set(real["labels"]["vae"]) == {
        "porosity", "E", "D", "k"}
    fit = np.concatenate([split["train"], split["val"]])
    ref = label_distances({k: table[k][split["test"]] for k in ("porosity", "E")},
                          {k: table[k][fit] for k in ("porosity", "E")}, keys=("porosity", "E"))
    assert real["labels"]["reference"]["E"]["w1_rel"] == pytest.approx(ref["E"]["w1_rel"])
    # The MRF stand-in is shifted by +0.15 porosity: its labels are far, and the table says so.
    assert real["labels"]["mrf"]["porosity"]["w1_rel"] > 3 * real["labels"]["vae"]["porosity"]["w1_rel"]
    report = tiny_run["paths"]["report"].read_text()
    section = report[report.index("## Realism"):report.index("## Samples")]
    assert "18 held-out authentic images" in section
    row = next(line for line in section.splitlines() if line.startswith("| MRF |"))
    assert f"{real['c2st']['mrf']['accuracy']:.3f}" in row
    assert "| noise floor | – (9 images per class; the test needs 10)" in section
    assert json.loads((run_dir / "realism.json").read_text())["stage_key"]


def test_report_morphology_table_holds_the_results(tiny_run):
    res, report = tiny_run["results"], tiny_run["paths"]["report"].read_text()
    morph = res["morphology"]
    header, rows = _morphology_rows(report)
    assert header[1:] == ["authentic (32)", "noise floor (16 vs 16)", "VAE (24)", "MRF (24)"]
    assert "Reference set: all 32 labeled authentic images" in report
    assert len(rows) == 3 + len(morph["authentic"]["curves"]) + len(morph["authentic"]["scalars"]) + 2
    cols = [morph["noise_floor"], morph["generated"]["vae"], morph["generated"]["mrf"]]
    js = rows["3×3 pattern JS divergence from the authentic set, mbit (value)"][1:]
    assert [float(c) for c in js] == pytest.approx([1000 * e["pattern_js"] for e in cols], rel=5e-3)
    auth_phi, *diffs = rows["porosity: mean ± std (Δ mean)"]
    mean, std = map(float, auth_phi.split("±"))
    assert mean == pytest.approx(morph["authentic"]["porosity"]["mean"], rel=5e-3)
    assert std == pytest.approx(morph["authentic"]["porosity"]["std"], rel=5e-3)
    assert [float(d) for d in diffs] == pytest.approx([e["porosity"]["mean_diff"] for e in cols], rel=5e-3)
    s2 = [c.split(" / ") for c in rows["S2(r): max / RMS Δ of the mean curve"][1:]]
    assert [float(c[0]) for c in s2] == pytest.approx([e["curves"]["s2"]["max_diff"] for e in cols], rel=5e-3)
    assert [float(c[1]) for c in s2] == pytest.approx([e["curves"]["s2"]["rms_diff"] for e in cols], rel=5e-3)
    euler = rows["Euler characteristic per area, 1/px²: mean ± std (Δ mean, W1/σ)"]
    assert float(euler[0].split("±")[0]) == pytest.approx(morph["authentic"]["scalars"]["euler_density"]["mean"],
                                                          rel=5e-3)
    for cell, e in zip(euler[1:], cols):
        delta, w1 = re.fullmatch(r"(\S+) \((\S+)\)", cell).groups()
        assert float(delta) == pytest.approx(e["scalars"]["euler_density"]["mean_diff"], rel=5e-3)
        assert float(w1) == pytest.approx(e["scalars"]["euler_density"]["w1_rel"], rel=5e-3)
    diversity = rows["diversity, mean pairwise correlation (value)"]
    assert [float(d) for d in diversity] == pytest.approx(
        [morph["authentic"]["diversity"]] + [e["diversity"] for e in cols], rel=5e-3)
    assert "![morphology curves](figures/morphology.png)" in report


def test_figures_and_label_tables_written(tiny_run):
    run_dir = tiny_run["paths"]["dir"]
    for name in ("mosaic_authentic", "mosaic_vae", "mosaic_mrf", "histograms", "s2", "r2_vs_added", "morphology"):
        png = run_dir / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The three mosaics side by side, on one line of the report (paper Fig. 7).
    line = next(x for x in tiny_run["paths"]["report"].read_text().splitlines() if "mosaic_authentic" in x)
    assert all(f'src="figures/mosaic_{g}.png"' in line for g in ("authentic", "vae", "mrf"))
    import csv

    with open(run_dir / "labels" / "vae.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and {"porosity", "E", "D", "k", "valid"} <= set(rows[0])
    meta = json.loads((run_dir / "labels" / "vae.csv.json").read_text())
    assert meta["parameters"]["study_digest"] == tiny_run["results"]["digest"]
    assert not list(run_dir.rglob("*.tmp"))



def test_every_json_file_of_a_run_is_standard_json(tiny_run):
    """NaN (the std over the single draw that adds all samples) is written as null, not as NaN,
    and the report rendered from the file is the one written from the results in memory."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    files = sorted(tiny_run["paths"]["dir"].rglob("*.json"))
    assert len(files) > 10
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse)
    res = tiny_run["results"]
    assert res["summary"]["vae"]["24"]["E"]["n"] == 1 and res["summary"]["vae"]["24"]["E"]["std"] is None
    assert tiny_run["paths"]["report"].read_text() == study.render_report(res)


# ---------------------------------------------------------------------- resume and safety

def test_resume_skips_finished_work(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run["paths"]["dir"], run_dir)
    (run_dir / "cells" / "mrf_m00006_d00.json").unlink()
    # As a folder made before the morphology comparison existed: resuming it adds the comparison.
    old_results = json.loads((run_dir / "results.json").read_text())
    del old_results["morphology"]
    (run_dir / "results.json").write_text(json.dumps(old_results))
    (run_dir / "figures" / "morphology.png").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()}
    calls = []

    def labeller(images):
        calls.append(len(images))
        return porosity_labeller(images)

    gens = {"vae": NoiseGenerator(), "mrf": NoiseGenerator(shift=0.15)}
    paths = study.run_study(tiny_run["images"], labeller=labeller, generators=gens, config=tiny_run["config"],
                            out_dir=run_dir, resume=True, data={"description": "test noise"}, log=lambda m: None)
    assert calls == [] and gens["vae"].calls == gens["mrf"].calls == 0
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()}
    assert {k for k in after if before.get(k) != after[k]} == {"mrf_m00006_d00.json"}
    # Seeded and deterministic: the recomputed cell reproduces the deleted one.
    res = json.loads(paths["results"].read_text())
    old = [a for a in tiny_run["results"]["augmented"] if a["generator"] == "mrf" and a["added"] == 6]
    new = [a for a in res["augmented"] if a["generator"] == "mrf" and a["added"] == 6]
    assert [a["r2"] for a in new] == [a["r2"] for a in old]
    assert res["baseline"] == tiny_run["results"]["baseline"]
    assert res["morphology"] == tiny_run["results"]["morphology"]
    assert (run_dir / "figures" / "morphology.png").is_file() and "## Morphology" in paths["report"].read_text()


def test_resume_recomputes_only_what_changed(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run["paths"]["dir"], run_dir)
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()}
    # One more draw per size, and the MRF stand-in's settings changed.
    gens = {"vae": NoiseGenerator(), "mrf": NoiseGenerator(shift=0.3)}
    config = study.make_config("quick", **{**TINY, "draws": 3})
    paths = study.run_study(tiny_run["images"], labeller=porosity_labeller, generators=gens, config=config,
                            out_dir=run_dir, resume=True, log=lambda m: None)
    assert gens["vae"].calls == 0 and gens["mrf"].calls == 1
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()}
    kept = {k for k in before if after[k] == before[k]}
    assert kept == {"baseline_d00.json", "baseline_d01.json", "vae_m00006_d00.json", "vae_m00006_d01.json",
                    "vae_m00024_d00.json"}
    res = json.loads(paths["results"].read_text())
    assert len(res["baseline"]["E"]) == 3 and res["baseline"]["E"][:2] == tiny_run["results"]["baseline"]["E"]
    assert res["distribution"]["generators"]["mrf"]["porosity"]["mean"] > \
        tiny_run["results"]["distribution"]["generators"]["mrf"]["porosity"]["mean"] + 0.05


def test_existing_folder_is_protected(tiny_run, tmp_path):
    run_dir = tiny_run["paths"]["dir"]
    kwargs = dict(labeller=porosity_labeller, generators={"vae": NoiseGenerator(), "mrf": NoiseGenerator()},
                  log=lambda m: None)
    with pytest.raises(FileExistsError, match="--resume"):
        study.run_study(tiny_run["images"], config=tiny_run["config"], out_dir=run_dir, **kwargs)
    with pytest.raises(ValueError, match="other authentic data"):
        study.run_study(authentic(seed=5), config=tiny_run["config"], out_dir=run_dir, resume=True, **kwargs)
    (tmp_path / "user.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        study.run_study(tiny_run["images"], config=tiny_run["config"], out_dir=tmp_path, **kwargs)
    assert (tmp_path / "user.txt").read_text() == "mine"


# ---------------------------------------------------------------------- configuration and data

def test_make_config_presets_and_errors():
    paper = study.make_config("paper")
    assert (paper.n_train, paper.n_val, paper.n_test, paper.n_generated) == (100, 100, 100, 1000)
    assert paper.added == (50, 100, 200, 400, 600, 800, 1000) and paper.draws == 10
    assert paper.predictor["lr"] == 1e-3 and paper.predictor["joint"] is False
    quick = study.make_config("quick", max_epochs=5, predictor={"hidden": 8})
    assert quick.predictor["max_epochs"] == 5 and quick.predictor["hidden"] == 8
    assert quick.predictor["channels"] == study.PRESETS["quick"]["predictor"]["channels"]
    assert study.paper_differences(quick.to_dict())
    assert study.paper_differences(paper.to_dict()) == []
    with pytest.raises(TypeError, match="unknown study option"):
        study.make_config("quick", epochs=3)
    with pytest.raises(ValueError, match="added"):
        study.make_config("quick", n_generated=100, added=(50, 200))
    with pytest.raises(ValueError, match="unknown preset"):
        study.make_config("fast")
    with pytest.raises(ValueError, match="multiple of 16"):
        study.make_config("quick", image_size=50)


def test_authentic_pool_from_volume_and_tiles():
    rng = np.random.default_rng(0)
    vol = (rng.random((1, 64, 64, 64)) < 0.3).astype(np.uint8)
    pool, note = study.authentic_pool(vol, ndim=3, size=16, needed=50, seed=0)
    # Step 16 on a 64³ volume: 4 planes x 4 x 4 tiles per axis, non-overlapping within a plane.
    assert pool.shape == (3 * 4 * 16, 16, 16) and note["stride"] == 16 and note["in_plane_overlap_px"] == 0
    assert np.array_equal(pool[0], vol[0, 0, :16, :16])
    pool, note = study.authentic_pool(vol, ndim=3, size=32, needed=50, seed=0)
    assert len(pool) >= 50 and note["in_plane_overlap_px"] > 0
    images = (rng.random((3, 40, 33)) < 0.3).astype(np.uint8)
    tiles, note = study.authentic_pool(images, ndim=2, size=16, needed=10, seed=0)
    assert tiles.shape == (3 * 2 * 2, 16, 16)
    np.testing.assert_array_equal(tiles[3], images[0, 16:32, 16:32])
    with pytest.raises(ValueError, match="smaller than"):
        study.authentic_pool(images, ndim=2, size=48, needed=1, seed=0)
    with pytest.raises(ValueError, match="needs 100"):
        study.authentic_pool(images, ndim=2, size=16, needed=100, seed=0)


def test_non_finite_labels_are_left_out(tmp_path):
    images = authentic(60, seed=1)

    def labeller(imgs):
        out = porosity_labeller(imgs)
        out["k"] = np.where(out["porosity"] > 0.5, np.nan, out["k"])
        return out

    config = study.make_config("quick", **{**TINY, "n_train": 8, "n_val": 8, "n_test": 8, "generators": ()})
    paths = study.run_study(images, labeller=labeller, generators={}, config=config, out_dir=tmp_path / "r",
                            log=lambda m: None)
    # No generator: the morphology section still gives the authentic values and their noise floor.
    morph = json.loads(paths["results"].read_text())["morphology"]
    assert morph["generated"] == {} and morph["noise_floor"]["n"] == 12
    with np.load(tmp_path / "r" / "authentic.npz") as npz:
        kept = npz["images"]
        assert np.isfinite(npz["label_k"]).all()
    assert len(kept) == 24 and (kept.reshape(24, -1).mean(axis=1) <= 0.5).all()


# ---------------------------------------------------------------------- the real pipeline

def test_reproduce_smoke_with_real_labels_vae_and_mrf(tmp_path):
    """End to end with the real labeller, VAE and MRF on the embedded data, shrunk to seconds."""
    out = tmp_path / "run"
    paths = study.reproduce(
        None, preset="quick", out_dir=out, seed=1, threads=1, log=lambda m: None,
        image_size=32, n_train=12, n_val=8, n_test=8, n_generated=12, added=(4, 12), draws=2,
        predictor=dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=2),
        # Two training steps decode near-uniform probabilities; Bernoulli draws keep both phases.
        vae=dict(steps=2, batch_size=4, channels=(8, 8), checkpoint_every=1, sample_every=0,
                 sample=dict(binarize="bernoulli")),
        mrf=dict(model=dict(S=2, max_samples=5000, gibbs_S=None, n_tiles=4)),
        synthetic=dict(radius=3.0), c2st=dict(max_per_class=20, seeds=1, max_epochs=2))
    res = json.loads(paths["results"].read_text())
    assert res["data"]["source"] == "embedded"
    assert set(res["generated_usable"]) == {"vae", "mrf"}
    assert len(res["augmented"]) == 2 * (2 + 1) and len(res["baseline"]["E"]) == 2
    for q in ("porosity", "E", "D", "k"):
        assert np.isfinite(res["distribution"]["authentic"][q]["mean"])
    # Physical ranges of the real labels: E/E1 and D/D2 in (0, 1), porosity ~0.2.
    auth = res["distribution"]["authentic"]
    assert 0 < auth["E"]["mean"] < 1 and 0 < auth["D"]["mean"] < 1 and 0.1 < auth["porosity"]["mean"] < 0.35
    assert (out / "models" / "mrf" / "mrf.npz").is_file()
    assert (out / "models" / "vae" / "checkpoint.pt").is_file()
    with np.load(out / "generated" / "vae.npz") as npz:
        assert npz["images"].shape == (12, 32, 32)
    assert "the paper's finding that VAE augmentation beats MRF augmentation" in paths["report"].read_text()
    # The classifier test sees the 8 test images, the 2 unlabeled pool images and 40 fresh images of
    # the embedded generator: none of the 20 images the generators were fitted on.
    assert res["realism"]["n_held_out"] == 8 + 2 + 40 and res["realism"]["c2st"]["noise_floor"]["n_per_class"] == 20


def test_reproduce_cli_errors_are_one_line(tmp_path, capsys):
    from microvae.cli import main

    (tmp_path / "keep.txt").write_text("x")
    assert main(["reproduce", "-o", str(tmp_path), "--added", "1,x"]) == 2
    assert capsys.readouterr().err.strip() == ("microvae reproduce: error: --added takes comma-separated integers, "
                                               "got '1,x'")
    assert main(["reproduce", "-o", str(tmp_path), "--added", "50,2000"]) == 2
    assert "added" in capsys.readouterr().err
    assert main(["reproduce", "-o", str(tmp_path), "--split", "10,10"]) == 2
    assert "--split" in capsys.readouterr().err
    assert main(["reproduce", "-o", str(tmp_path), "--split", "10,10,10"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    image = np.zeros((40, 40), dtype=np.uint8)
    image[::2] = 1
    np.save(tmp_path / "one.npy", image)
    assert main(["reproduce", str(tmp_path / "one.npy"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "smaller than the study's image size 64" in err
    assert (tmp_path / "keep.txt").read_text() == "x" and not (tmp_path / "out").exists()


def test_generator_without_usable_samples_gets_no_cells(tmp_path):
    class Blank(NoiseGenerator):
        def sample(self, n, *, seed):
            return np.zeros((n,) + self.shape, dtype=np.uint8)  # one phase: labels undefined

    def labeller(imgs):
        out = porosity_labeller(imgs)
        single = (out["porosity"] == 0) | (out["porosity"] == 1)
        return {k: (np.where(single, np.nan, v) if k != "valid" else v) for k, v in out.items()}

    config = study.make_config("quick", **{**TINY, "generators": ("vae",)})
    paths = study.run_study(authentic(), labeller=labeller, generators={"vae": Blank()}, config=config,
                            out_dir=tmp_path / "r", log=lambda m: None)
    res = json.loads(paths["results"].read_text())
    assert res["generated_usable"] == {"vae": 0} and res["augmented"] == []
    assert res["distribution"]["generators"]["vae"]["n_usable"] == 0
    assert "0 of 24 samples with finite labels" in paths["report"].read_text()


def test_thread_count_survives_generators(tmp_path, monkeypatch):
    """A generator that changes the process's thread count (numba's OpenMP layer does, through
    the libgomp it shares with torch) must not change the CNN's."""
    from microvae.nn.predictor import PropertyPredictor

    seen = []
    fit = PropertyPredictor.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(PropertyPredictor, "fit", recording_fit)
    before = torch.get_num_threads()

    class Greedy(NoiseGenerator):
        def fit(self, images, *, seed, workdir):
            torch.set_num_threads(2)
            super().fit(images, seed=seed, workdir=workdir)

    config = study.make_config("quick", **{**TINY, "generators": ("vae",), "added": (6,), "draws": 1})
    study.run_study(authentic(), labeller=porosity_labeller, generators={"vae": Greedy()}, config=config,
                    out_dir=tmp_path / "r", threads=1, log=lambda m: None)
    assert seen == [1, 1]
    assert torch.get_num_threads() == before  # restored to the count in force before the run


# ---------------------------------------------------------------------- the package's seams

def test_digest_and_split_unchanged_since_the_single_module(tiny_run):
    """Pinned on ``microvae/study.py`` before it became a package (commit 193de0f): the same
    config, images and generator settings give the same run digest and split, so resuming a
    run folder made by the old module works and nothing about the study's identity moved.

    The digest covers the whole config: it changed once on purpose, when the config gained the
    realism section's ``c2st`` options (was ``30f0261b907aac6f``). Resuming checks the
    authentic stage's key only, which did not change."""
    res = tiny_run["results"]
    assert res["digest"] == "5fa119a0b9e02068"
    assert res["split"]["test"] == [0, 1, 5, 7, 8, 14, 16, 20, 24, 27]


def test_authentic_images_are_validated_once(tmp_path, monkeypatch):
    from microvae._validate import as_binary_batch
    from microvae.study import data, run

    seen = []

    def counting(images, ndim=None, name="images"):
        seen.append(name)
        return as_binary_batch(images, ndim=ndim, name=name)

    monkeypatch.setattr(data, "as_binary_batch", counting)
    monkeypatch.setattr(run, "as_binary_batch", counting)
    images = (np.random.default_rng(0).random((3, 64, 64)) < 0.4).astype(np.uint8)  # 48 tiles of 16 px
    study.reproduce(images, out_dir=tmp_path / "r", labeller=porosity_labeller, log=lambda m: None,
                    generators={"vae": NoiseGenerator(), "mrf": NoiseGenerator()}, **TINY)
    # Once at the entry; the generators' samples are the only other arrays checked.
    assert sorted(seen) == ["images", "mrf samples", "vae samples"]


def test_generator_without_the_protocol_is_refused_before_any_work(tmp_path):
    def old_style(images, n, *, seed, workdir):
        return images[:n]

    config = study.make_config("quick", **{**TINY, "generators": ("vae",)})
    with pytest.raises(TypeError, match="lacks describe, fit, sample"):
        study.run_study(authentic(), labeller=porosity_labeller, generators={"vae": old_style}, config=config,
                        out_dir=tmp_path / "r", log=lambda m: None)
    assert not (tmp_path / "r").exists()


def _summary(means, stds=None):
    """A summarize()-shaped dict: means[g][m] = (E, D) mean test R² over 3 draws (std 0.001 unless
    given in ``stds``); the baseline is ``means["baseline"] = (E, D)``."""
    def entry(values, std):
        return {p: {"n": 3, "mean": v, "std": std} for p, v in zip(("E", "D"), values)}

    out = {"baseline": entry(means.pop("baseline"), 0.001)}
    for g, by_size in means.items():
        out[g] = {str(m): entry(v, (stds or {}).get((g, m), 0.001)) for m, v in by_size.items()}
    return out


def test_verdict_majority_of_comparisons_not_the_mean():
    from microvae.study.stats import verdict

    config = study.make_config("quick", **{**TINY, "properties": ("E", "D"), "added": (6, 12, 24)})
    # VAE ahead in 5 of 6 (size, property) cells by 0.01; behind in one by a lot: the mean
    # difference is negative, the majority says VAE.
    summary = _summary({"baseline": (0.5, 0.5),
                        "vae": {6: (0.61, 0.61), 12: (0.61, 0.61), 24: (0.61, 0.0)},
                        "mrf": {6: (0.60, 0.60), 12: (0.60, 0.60), 24: (0.60, 0.60)}})
    v = verdict(summary, config)
    assert v["vae_wins"] == 5 and v["comparisons"] == 6 and v["matches_paper"] is True
    assert v["vae_minus_mrf_mean_r2"]["D"] == pytest.approx((0.01 + 0.01 - 0.6) / 3)
    assert v["vae_minus_mrf_by_size"]["E"] == pytest.approx({"6": 0.01, "12": 0.01, "24": 0.01})
    # Gains over the baseline: mean over sizes and properties, and the count above it.
    assert v["mrf_mean_gain_over_baseline"] == pytest.approx(0.1)
    assert v["vae_cells_above_baseline"] == 5
    assert v["vae_mean_gain_over_baseline"] == pytest.approx((5 * 0.11 - 0.5) / 6)
    # Clearly ahead: |difference| > 2 standard errors, se = sqrt(sv²/n + sm²/n) = 0.001*sqrt(2/3).
    assert v["vae_clearly_ahead"] == 5 and v["mrf_clearly_ahead"] == 1
    wide = _summary({"baseline": (0.5, 0.5),
                     "vae": {6: (0.61, 0.61), 12: (0.61, 0.61), 24: (0.61, 0.0)},
                     "mrf": {6: (0.60, 0.60), 12: (0.60, 0.60), 24: (0.60, 0.60)}},
                    stds={("vae", m): 0.1 for m in (6, 12, 24)})
    v = verdict(wide, config)
    assert v["vae_clearly_ahead"] == 0 and v["mrf_clearly_ahead"] == 1 and v["matches_paper"] is True
    # A tie in the count (3 of 6) is not a majority.
    tie = _summary({"baseline": (0.5, 0.5), "vae": {6: (0.7, 0.7), 12: (0.7, 0.5), 24: (0.5, 0.5)},
                    "mrf": {6: (0.6, 0.6), 12: (0.6, 0.6), 24: (0.6, 0.6)}})
    assert verdict(tie, config)["matches_paper"] is False


def test_verdict_single_draw_sizes_are_never_clear_and_one_generator_has_no_comparison():
    from microvae.study.stats import verdict

    config = study.make_config("quick", **{**TINY, "properties": ("E", "D"), "added": (6, 24)})
    summary = _summary({"baseline": (0.5, 0.5), "vae": {6: (0.9, 0.9)}, "mrf": {6: (0.1, 0.1)}})
    for g in ("vae", "mrf"):
        summary[g]["24"] = {p: {"n": 1, "mean": 0.9 if g == "vae" else 0.1, "std": float("nan")} for p in "ED"}
    v = verdict(summary, config)
    assert v["vae_wins"] == 4 and v["vae_clearly_ahead"] == 2  # size 24 ran once: no spread, not clear
    only_vae = study.make_config("quick", **{**TINY, "properties": ("E", "D"), "generators": ("vae",)})
    v = verdict({"baseline": summary["baseline"], "vae": summary["vae"]}, only_vae)
    assert "matches_paper" not in v and v["vae_cells_above_baseline"] == 4


def test_distribution_statistics_use_one_ddof(monkeypatch):
    from microvae import compare
    from microvae.compare import distances
    from microvae.study import stats

    values = np.array([1.0, 2.0, 4.0, np.nan])
    s = stats.summary_stats(values)
    assert s == {"n": 3, "mean": pytest.approx(7 / 3), "std": pytest.approx(np.std([1, 2, 4], ddof=stats.DDOF))}
    c = stats.compare_samples(values, values + 1)
    assert c["wasserstein"] == pytest.approx(1.0)
    assert c["wasserstein_rel"] == pytest.approx(1.0 / s["std"])
    # Defined once, in compare.distances: the study's summaries and compare's follow the one constant.
    monkeypatch.setattr(distances, "DDOF", 0)
    assert stats.summary_stats(values)["std"] == pytest.approx(np.std([1, 2, 4]))
    assert compare.distribution_distance(values, values)["std"] == pytest.approx(np.std([1, 2, 4]))
