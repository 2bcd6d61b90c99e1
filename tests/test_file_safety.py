"""Nothing the user had is overwritten or lost: every output path (tables, plots, mosaics,
read-only folders, the input itself) is checked before any work; interrupted or failed label
runs resume or restart cleanly from their parts; ``train --overwrite`` clears only a run
folder."""
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import write_images as _images
from microvae.cli import main


def test_correlate_checks_the_plot_target_before_writing_the_table(tmp_path, capsys):
    src = _images(tmp_path / "in.npy")
    (tmp_path / "plot.png").write_bytes(b"mine")
    assert main(["correlate", str(src), "--s2", "-o", str(tmp_path / "s2.csv"), "--plot",
                 str(tmp_path / "plot.png")]) == 2
    assert "plot.png exists" in capsys.readouterr().err
    assert not (tmp_path / "s2.csv").exists() and (tmp_path / "plot.png").read_bytes() == b"mine"


def test_mrf_sample_checks_the_mosaic_before_sampling(tmp_path, capsys):
    (tmp_path / "mosaic.png").write_bytes(b"mine")
    assert main(["mrf", "sample", str(tmp_path / "model.npz"), "-n", "2", "-o", str(tmp_path / "s.npy"),
                 "--mosaic", str(tmp_path / "mosaic.png")]) == 2
    assert "mosaic.png exists" in capsys.readouterr().err and not (tmp_path / "s.npy").exists()


def test_vae_sample_checks_the_mosaic_before_sampling(tmp_path, capsys):
    (tmp_path / "mosaic.png").write_bytes(b"mine")
    assert main(["sample", str(tmp_path / "no-run"), "-n", "2", "-o", str(tmp_path / "s.npy"),
                 "--mosaic", str(tmp_path / "mosaic.png")]) == 2
    assert "mosaic.png exists" in capsys.readouterr().err and not (tmp_path / "s.npy").exists()


def test_output_equal_to_input_is_refused_even_with_overwrite(tmp_path, capsys):
    vol = tmp_path / "vol.npy"
    np.save(vol, (np.random.default_rng(0).random((20, 20, 20)) < 0.4).astype(np.uint8))
    before = vol.read_bytes()
    assert main(["data", "slice", str(vol), "--size", "8", "-n", "4", "-o", str(vol), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err and vol.read_bytes() == before


def test_compare_checks_its_outputs_like_every_command(tmp_path, capsys):
    """The bug: compare had its own check, so -o AUTHENTIC --overwrite replaced the input with JSON."""
    auth, gen = _images(tmp_path / "auth.npy"), _images(tmp_path / "gen.npy", seed=1)
    before = auth.read_bytes()
    assert main(["compare", str(auth), str(gen), "-o", str(auth), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err and auth.read_bytes() == before
    assert main(["compare", str(auth), f"g={gen}", "-o", str(gen), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["compare", str(auth), str(gen), "-o", str(tmp_path / "x"), "--plot", str(tmp_path / "x")]) == 2
    assert "same file" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", [
    ["correlate", "IN", "--s2"],
    ["compare", "IN", "IN"],
    ["data", "slice", "IN", "--volume", "--size", "8", "-n", "2"],
    ["bench", "--quick", "--cases", "tiny", "--json"],
])
def test_read_only_output_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    """The writability pre-check, also where the tests run as root (who may write anywhere)."""
    from microvae import io
    from microvae.bench import registry as bench

    src = _images(tmp_path / "in.npy", n=16)
    ro = tmp_path / "ro"
    ro.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != ro and access(path, mode, **kw))
    for module, work in ((io, "load"), (bench, "run")):
        monkeypatch.setattr(module, work, lambda *a, **k: pytest.fail("work began before the output check"))
    argv = [str(src) if a == "IN" else a for a in command]
    assert main(argv + ([] if command[0] == "bench" else ["-o"]) + [str(ro / "out.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not writable" in err and str(ro) in err
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_line(tmp_path, capsys):
    src = _images(tmp_path / "in.npy")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["correlate", str(src), "--s2", "-o", str(ro / "s2.csv")]) == 2
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not writable" in err


@pytest.mark.parametrize("argv", [
    ["data", "synth", "disks", "-n", "2", "-o", "OUT"],
    ["sample", "no-run", "-n", "2", "-o", "OUT"],
    ["mrf", "sample", "no-model.npz", "-n", "2", "-o", "OUT"],
])
def test_image_output_format_is_checked_before_work(tmp_path, capsys, argv):
    """The bug: `sample -o out.png` sampled first, then failed in save() with nothing written."""
    argv = [a if a != "OUT" else str(tmp_path / "out.png") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write images as '.png'" in err and ".npy" in err and err.count("\n") == 1


def test_failed_label_run_does_not_block_the_corrected_rerun(tmp_path, capsys):
    src = _images(tmp_path / "in.npy")
    out = tmp_path / "labels.csv"
    base = ["label", str(src), "-o", str(out), "--d", "2", "--no-periodic"]
    assert main(base + ["--margin", "20"]) == 2  # fails in the first chunk: margin too wide for 16 px
    assert "margin" in capsys.readouterr().err
    assert not (tmp_path / "labels.csv.parts").exists()
    assert main(base + ["--margin", "2"]) == 0
    assert out.exists() and not (tmp_path / "labels.csv.parts").exists()


def test_stale_manifest_without_chunks_is_replaced(tmp_path):
    from microvae.labeling import label_chunks

    images = (np.random.default_rng(2).random((4, 16, 16)) < 0.4).astype(np.uint8)
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"digest": "from-a-failed-run"}))
    (labels,) = label_chunks([images], parts, {"run": 2}, d=2)
    assert len(labels["porosity"]) == 4


def test_damaged_part_is_named_with_the_remedy(tmp_path, capsys):
    src = _images(tmp_path / "in.npy", n=6)
    out = tmp_path / "labels.csv"
    from microvae.labeling import label_chunks

    parts = tmp_path / "labels.csv.parts"
    images = np.load(src)
    label_chunks([images], parts, {"x": 1}, batch_size=3, d=2)
    part = sorted(parts.glob("part-*.npz"))[1]
    part.write_bytes(part.read_bytes()[:40])  # truncated copy
    with pytest.raises(ValueError, match=r"part-0000-000000000003\.npz is damaged.*delete it.*--overwrite"):
        label_chunks([images], parts, {"x": 1}, batch_size=3, d=2)
    # The CLI says the same in one line (its manifest differs: the chunks are refused first).
    assert main(["label", str(src), "-o", str(out), "--d", "2", "--batch-size", "3"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["label", str(src), "-o", str(out), "--d", "2", "--batch-size", "3", "--overwrite"]) == 0
    assert not zipfile.is_zipfile(out)  # a CSV, written after the rerun


def test_train_stopped_before_its_first_checkpoint_can_restart(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")  # what a run killed before its first checkpoint leaves
    (run / "metrics.jsonl").write_text("")
    src = _images(tmp_path / "in.npy", n=4, size=16)
    base = ["train", str(src), "-o", str(run), "--image-size", "16", "--steps", "1", "--batch-size", "2",
            "--style-mode", "none", "--no-progress", "--sample-every", "0", "--device", "cpu"]
    # The quick preset's six strided stages need sides divisible by 64; --channels sets fewer.
    assert main(base + ["--overwrite"]) == 2
    assert "--image-size 16 must be divisible by 2**6 = 64" in capsys.readouterr().err
    base += ["--channels", "8,8"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "--overwrite" in err
    assert main(base + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "before its first checkpoint" in err
    assert main(base + ["--overwrite"]) == 0
    assert (run / "checkpoint.pt").is_file()
    assert json.loads((run / "config.json").read_text())["config"]["channels"] == [8, 8]


def test_train_overwrite_never_clears_a_folder_that_is_not_a_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    src = _images(tmp_path / "in.npy", n=4, size=16)
    assert main(["train", str(src), "-o", str(mine), "--image-size", "16", "--channels", "8,8", "--steps", "1",
                 "--batch-size", "2", "--style-mode", "none", "--overwrite", "--device", "cpu"]) == 2
    assert "no microvae run" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work"
