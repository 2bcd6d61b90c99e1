"""Hostile and careless input: every case here once gave a traceback, lost data or ran code
from a file. Each test names the problem it guards against."""
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from microvae.cli import main


def _images(path, n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    np.save(path, (rng.random((n, size, size)) < 0.4).astype(np.uint8))
    return path


class _Marker:
    """Pickled into a chunk: unpickling it creates a file, i.e. runs code from the data."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickle_store(path, marker, dtype="|O"):
    """A Zarr v2 store whose chunk is decoded by the pickle filter (the zarr 2 layout)."""
    path.mkdir()
    (path / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [2, 8, 8], "chunks": [2, 8, 8], "dtype": dtype, "compressor": None,
        "fill_value": 0, "filters": [{"id": "pickle"}], "order": "C"}))
    (path / "0.0.0").write_bytes(pickle.dumps(_Marker(marker)))
    return path


# ---------------------------------------------------------------------- 1. pickle in Zarr stores

@pytest.mark.parametrize("dtype", ["|O", "|u1"])
def test_zarr_pickle_codec_is_refused_before_any_chunk_is_read(tmp_path, monkeypatch, capsys, dtype):
    zarr = pytest.importorskip("zarr")
    from microvae.distributed import open_store

    marker = tmp_path / "code_ran"
    store = _pickle_store(tmp_path / "evil.zarr", marker, dtype)
    # Even where numcodecs' own guard is switched off, nothing is decoded.
    monkeypatch.setenv("NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE", "1")
    opened = []
    monkeypatch.setattr(zarr, "open", lambda *a, **k: opened.append(a) or pytest.fail("zarr.open was called"))
    with pytest.raises(ValueError, match="pickle"):
        open_store(store)
    assert main(["label", str(store), "-o", str(tmp_path / "labels.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err and "evil.zarr" in err
    assert not opened and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zarr"]  # no output, no .parts manifest


def test_zarr_object_dtype_is_refused(tmp_path):
    pytest.importorskip("zarr")
    from microvae.distributed import open_store

    store = tmp_path / "strings.zarr"
    store.mkdir()
    (store / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [2, 8, 8], "chunks": [2, 8, 8], "dtype": "|O", "compressor": None,
        "fill_value": 0, "filters": [{"id": "vlen-utf8"}], "order": "C"}))
    with pytest.raises(ValueError, match="not numeric or boolean"):
        open_store(store)


def test_numeric_zarr_store_still_opens(tmp_path):
    zarr = pytest.importorskip("zarr")
    from microvae.distributed import open_store

    group = zarr.open_group(str(tmp_path / "ok.zarr"), mode="w")
    group.create_array("images", shape=(3, 8, 8), chunks=(1, 8, 8), dtype="uint8")[:] = 1
    assert open_store(tmp_path / "ok.zarr").shape == (3, 8, 8)


def _consolidated_store(path, zarr_format):
    """A benign uint8 store whose consolidated metadata alone names a pickle filter/codec."""
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.create_array("images", shape=(2, 8, 8), chunks=(2, 8, 8), dtype="uint8")[:] = 1
    zarr.consolidate_metadata(str(path))
    if zarr_format == 2:
        meta = json.loads((path / ".zmetadata").read_text())
        meta["metadata"]["images/.zarray"]["filters"] = [{"id": "pickle"}]
        (path / ".zmetadata").write_text(json.dumps(meta))
    else:
        meta = json.loads((path / "zarr.json").read_text())
        meta["consolidated_metadata"]["metadata"]["images"]["codecs"].insert(0, {"name": "numcodecs.pickle"})
        (path / "zarr.json").write_text(json.dumps(meta))
    return path


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_consolidated_metadata_is_checked_like_the_array_metadata(tmp_path, monkeypatch, zarr_format):
    zarr = pytest.importorskip("zarr")
    from microvae.distributed import label_dask, open_store

    store = _consolidated_store(tmp_path / "consolidated.zarr", zarr_format)
    # zarr reads consolidated metadata instead of the per-array files, which stay benign here.
    array_meta = store / "images" / (".zarray" if zarr_format == 2 else "zarr.json")
    assert "pickle" not in array_meta.read_text()
    monkeypatch.setattr(zarr, "open", lambda *a, **k: pytest.fail("zarr.open was called"))
    for call in (open_store, label_dask):
        with pytest.raises(ValueError, match="refusing a Zarr array encoded with .*pickle"):
            call(store)


class _Zarr2Array:
    """Stands in for a zarr 2 array opened by the caller (zarr 3 cannot build one with a pickle filter)."""

    __module__ = "zarr.core"

    def __init__(self, dtype, filters):
        self.shape, self.dtype, self.filters, self.compressor = (2, 8, 8), np.dtype(dtype), filters, None


@pytest.mark.parametrize("make, match", [
    (lambda: _Zarr2Array("u1", [pytest.importorskip("numcodecs").Pickle()]), "encoded with 'pickle'"),
    (lambda: pytest.importorskip("dask.array").from_array(np.empty((2, 8, 8), dtype=object), chunks=1),
     "dtype object is not numeric"),
    (lambda: pytest.importorskip("zarr").create_array(store={}, shape=(2, 8, 8), dtype=str), "not numeric"),
], ids=["zarr2-pickle-filter", "dask-object", "zarr-string"])
def test_label_dask_checks_an_array_the_caller_opened(monkeypatch, make, match):
    import microvae.properties
    from microvae.distributed import label_dask

    monkeypatch.setattr(microvae.properties, "label", lambda *a, **k: pytest.fail("a chunk was labelled"))
    with pytest.raises(ValueError, match=match):
        label_dask(make())


# ---------------------------------------------------------------------- 2. sizes and counts

@pytest.mark.parametrize("argv, flag", [
    (["correlate", "IN", "--s2", "--batch", "-1"], "--batch-size"),
    (["correlate", "IN", "--s2", "--batch-size", "0"], "--batch-size"),
    (["correlate", "IN", "--s2", "--r-max", "2.5"], "--r-max"),
    (["correlate", "IN", "--s2", "--voxel-size", "-1"], "--voxel-size"),
    (["data", "synth", "disks", "-n", "0"], "-n"),
    (["data", "synth", "disks", "--size", "-8"], "--size"),
    (["data", "synth", "disks", "--porosity", "1.5"], "--porosity"),
    (["data", "slice", "IN", "--size", "0"], "--size"),
    (["label", "IN", "--batch-size", "0"], "--batch-size"),
    (["label", "IN", "--chunk", "0"], "--batch-size"),
    (["label", "IN", "--processes", "-2"], "--processes"),
    (["label", "IN", "--slice", "x"], "--slice"),
    (["label", "IN", "--shape", "4,-4"], "--shape"),
    (["label", "IN", "--K1", "nan"], "--K1"),
    (["mrf", "sample", "IN", "-n", "0"], "-n"),
    (["reproduce", "--draws", "0"], "--draws"),
    (["train", "IN", "--steps", "-5"], "--steps"),
    (["sample", "IN", "-n", "-3"], "-n"),
    (["sample", "IN", "-n", "2", "--smooth", "-1"], "--smooth"),
    (["compare", "IN", "IN", "--r-max", "2.5"], "--r-max"),
    (["compare", "IN", "IN", "--seed", "-1"], "--seed"),
    (["compare", "IN", "IN", "--connectivity", "0"], "--connectivity"),
    (["train", "IN", "--style-width", "-0.5"], "--style-width"),
    (["train", "IN", "--w-st", "-1"], "--w-st"),
    (["train", "IN", "--w-mc", "nan"], "--w-mc"),
])
def test_size_and_count_options_reject_bad_values(tmp_path, capsys, argv, flag):
    out = str(tmp_path / "out.csv")
    argv = [a if a != "IN" else str(tmp_path / "in.npy") for a in argv] + ["-o", out]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}" in last and "must be" in last
    assert not os.path.exists(out)


def test_correlate_negative_batch_writes_nothing(tmp_path):
    """The bug: --batch -1 filled the CSV with uninitialised memory and exited 0."""
    src = _images(tmp_path / "in.npy")
    out = subprocess.run([sys.executable, "-m", "microvae", "correlate", str(src), "--s2", "--batch", "-1",
                          "-o", str(tmp_path / "s2.csv")], capture_output=True, text=True)
    assert out.returncode == 2 and "--batch" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s2.csv").exists()


# ---------------------------------------------------------------------- 3. label chunks

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
    from microvae.distributed import label_chunks

    images = (np.random.default_rng(2).random((4, 16, 16)) < 0.4).astype(np.uint8)
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"digest": "from-a-failed-run"}))
    (labels,) = label_chunks([images], parts, {"run": 2}, d=2)
    assert len(labels["porosity"]) == 4


def test_damaged_part_is_named_with_the_remedy(tmp_path, capsys):
    src = _images(tmp_path / "in.npy", n=6)
    out = tmp_path / "labels.csv"
    from microvae.distributed import label_chunks

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


# ---------------------------------------------------------------------- 4. every output checked first

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
    from microvae import bench, io

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


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from microvae import io

    def readonly_fs(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "s2.csv"))

    monkeypatch.setattr(io, "save_table", readonly_fs)
    assert main(["correlate", str(_images(tmp_path / "in.npy")), "--s2", "-o", str(tmp_path / "s2.csv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system" in err and "s2.csv" in err


def test_broken_pipe_is_one_line(tmp_path):
    src = _images(tmp_path / "in.npy")
    proc = subprocess.Popen([sys.executable, "-m", "microvae", "data", "info", str(src)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the command prints
    err = proc.stderr.read()
    assert proc.wait() != 0
    assert "Traceback" not in err and "Exception ignored" not in err and "pipe" in err


@pytest.mark.parametrize("device", ["cuda/foo", "tpu", "cuda:99"])
@pytest.mark.parametrize("command", [["train", "IN"], ["sample", "IN", "-n", "2"], ["reproduce"]])
def test_bad_device_is_named(tmp_path, capsys, device, command):
    argv = [a if a != "IN" else str(tmp_path / "in.npy") for a in command] + ["-o", str(tmp_path / "o"),
                                                                             "--device", device]
    with pytest.raises(SystemExit):
        main(argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --device" in last and device in last


# ---------------------------------------------------------------------- 5. train --overwrite

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


# ---------------------------------------------------------------------- 6. permeability validity

def test_unresolved_or_non_positive_permeability_is_flagged_with_the_reason():
    from microvae import synthetic
    from microvae.correlations import s2
    from microvae.properties import label
    from microvae.properties.strong_contrast import INVALID_FLAGS, invalid_reasons, validity_flags

    noise = (np.random.default_rng(0).random((40, 32, 32)) < 0.3).astype(np.uint8)
    out = label(noise, d=3)
    chi1 = s2(noise)[:, 1] - out["porosity"] ** 2
    # Uncorrelated pixels: χ reaches 0 within the first pixel in most images, and k <= 0 in many.
    assert (chi1 <= 0).sum() > 10 and (out["k"] <= 0).sum() > 10
    assert not out["valid"][out["k"] <= 0].any() and not out["valid"][chi1 <= 0].any()
    assert np.all((out["invalid"][out["k"] <= 0] & 8) == 8)
    assert np.array_equal((out["invalid"] & 16) == 16, chi1 <= 0)
    assert np.array_equal(out["valid"], out["invalid"] == 0)
    assert "k <= 0" in " ".join(invalid_reasons(out["invalid"][np.argmin(out["k"])]))
    # Resolved media keep their labels valid.
    grains = label(synthetic.grains((64, 64), 4, 0.25, n=6, seed=1))
    assert grains["valid"].all() and (grains["invalid"] == 0).all() and (grains["k"] > 0).all()
    assert validity_flags(0.3, 0.4, 0.4, k=-1.0) == 8 and validity_flags(1.0, 0.4, 0.4) == 1
    assert set(INVALID_FLAGS) == {1, 2, 4, 8, 16}


def test_cli_label_says_why_images_are_flagged(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", (np.random.default_rng(3).random((8, 16, 16)) < 0.3).astype(np.uint8))
    out = tmp_path / "labels.csv"
    assert main(["label", str(tmp_path / "noise.npy"), "-o", str(out), "--d", "2"]) == 0
    assert "k unresolved" in capsys.readouterr().out
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert np.array_equal(table["valid"] == 1, table["invalid"] == 0) and (table["invalid"] > 0).any()
    meta = json.loads((tmp_path / "labels.csv.json").read_text())
    assert meta["parameters"]["invalid_flags"]["8"] == "permeability k <= 0"


# ---------------------------------------------------------------------- clear errors

def test_r_max_must_be_an_integer():
    from microvae.correlations import s2

    images = (np.random.default_rng(0).random((2, 16, 16)) < 0.3).astype(np.uint8)
    for bad in (2.5, "3", True):
        with pytest.raises(TypeError, match="r_max must be an integer"):
            s2(images, r_max=bad)
    assert s2(images, r_max=np.int64(3)).shape == (2, 4)


def _call(module, name, *args, **kwargs):
    """A call of ``module.name`` made when the test runs (imports stay inside the test)."""
    import importlib

    return lambda: getattr(importlib.import_module(module), name)(*args, **kwargs)


def _fit_mrf(**options):
    def fit():
        from microvae.mrf import MRF

        return MRF(**options).fit(_IMAGES)

    return fit


_IMAGES = (np.random.default_rng(0).random((2, 16, 16)) < 0.4).astype(np.uint8)
_S3_GRID = (np.array([2.0]), np.array([2.0]), np.array([1.0]))


@pytest.mark.parametrize("call, error, match", [
    # Silently truncated or accepted before (int(2.7), float("3")), or a ValueError for a wrong type.
    (_call("microvae.properties", "label", _IMAGES, d=2, batch_size=2.7), TypeError, "batch_size must be an integer"),
    (_call("microvae.properties", "label", _IMAGES, d=2, batch_size=0), ValueError, "batch_size must be an integer >= 1"),
    (_call("microvae.correlations", "s3", _IMAGES, *_S3_GRID, n_samples=2.5), TypeError, "n_samples must be an integer"),
    (_call("microvae.correlations", "s3", _IMAGES, *_S3_GRID, n_samples=1), ValueError, "n_samples must be an integer >= 2"),
    (_call("microvae.correlations", "radial_distances", 2.5), TypeError, "r_max must be an integer"),
    (_call("microvae.correlations", "radial_distances", "3"), TypeError, "r_max must be an integer"),
    (_call("microvae.correlations", "radial_distances", -1), ValueError, "r_max must be an integer >= 0"),
    (_call("microvae.morphology", "lineal_path", _IMAGES, r_max=2.5), TypeError, "r_max must be an integer"),
    (_call("microvae.morphology", "cluster_function", _IMAGES, r_max=True), TypeError, "r_max must be an integer"),
    (_call("microvae.morphology", "lineal_path", _IMAGES, r_max=16), ValueError, r"r_max must be an integer in \[0, 15\]"),
    (_call("microvae.morphology", "chord_lengths", _IMAGES, axis=1.0), TypeError, "axis must be an integer"),
    (_call("microvae.properties.quadrature", "parameters_from_functions", None, None, 0.3, r_max="3"), TypeError,
     "r_max must be a number"),
    (_call("microvae.properties.quadrature", "parameters_from_functions", None, None, 0.3, r_max=-1.0), ValueError,
     "r_max must be positive"),
    (_call("microvae.properties", "three_point_parameters", _IMAGES, d=4), ValueError, "d must be 2 or 3"),
    (_call("microvae.properties.strong_contrast", "elastic_moduli", 0.3, 0.5, 0.5, 3, "4.3"), TypeError,
     "K1 must be a number"),
    (_call("microvae.properties.strong_contrast", "rock_youngs_modulus", 4.3, -1.0), ValueError,
     "G1 must be positive"),
    (_call("microvae.compat.porespy", "two_point_correlation_batch", _IMAGES, "2"), TypeError,
     "voxel_size must be a number"),
    (_call("microvae.mrf.features", "causal_offsets", 2.0), TypeError, "half-width S must be an integer"),
    (_fit_mrf(S=2.5), TypeError, "S must be an integer"),
    (_fit_mrf(min_samples_leaf=0), ValueError, "min_samples_leaf must be an integer >= 1"),
    (_call("microvae.vae", "sample", "no-run", 2.5), TypeError, "n must be an integer"),
    (_call("microvae.vae", "load_config", "quick", steps=2.5), TypeError, "steps must be an integer"),
    (_call("microvae.vae", "load_config", "quick", style_batch=-1), ValueError, "style_batch must be an integer >= 0"),
    (_call("microvae.nn.predictor", "PredictorConfig", batch_size=2.5), TypeError, "batch_size must be an integer"),
    (_call("microvae.study", "make_config", "quick", draws=1.5), TypeError, "draws must be an integer"),
    (_call("microvae.study", "make_config", "quick", max_epochs=2.5), TypeError, "max_epochs must be an integer"),
])
def test_wrong_types_are_type_errors_and_bad_values_value_errors(call, error, match):
    """One shared validator per rule (microvae._validate), so the same rule gives the same error."""
    with pytest.raises(error, match=match):
        call()


def test_s3_triangles_larger_than_the_image_are_refused():
    from microvae.correlations import s3

    image = (np.random.default_rng(0).random((1, 16, 16)) < 0.3).astype(np.uint8)
    with pytest.raises(ValueError, match="do not fit"):
        s3(image, [9.0], [1.0], [0.0], n_samples=10)  # wraps: 9 px is -7 px on a 16 px torus
    with pytest.raises(ValueError, match="sides up to 16"):
        s3(image, [8.0], [8.0], [np.pi], n_samples=10)  # the third side is 16 px
    with pytest.raises(ValueError, match="side - 1"):
        s3(image, [16.0], [1.0], [0.0], n_samples=10, periodic=False)
    assert s3(image, [8.0], [1.0], [0.0], n_samples=10, seed=0).estimate.shape == (1, 1, 1, 1)


def test_negative_voxel_size_is_refused():
    from microvae.correlations import radial_distances

    with pytest.raises(ValueError, match="voxel_size"):
        radial_distances(4, -1.0)
    np.testing.assert_array_equal(radial_distances(2, 0.5), [0.0, 0.5, 1.0])


def test_single_phase_inputs(tmp_path, capsys):
    from microvae import study
    from microvae.properties import label

    solid = np.zeros((4, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "solid.npy", solid)
    assert main(["train", str(tmp_path / "solid.npy"), "-o", str(tmp_path / "run"), "--image-size", "16",
                 "--device", "cpu"]) == 2
    assert "all solid" in capsys.readouterr().err and not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="all solid"):
        study.run_study(np.zeros((40, 16, 16), np.uint8), labeller=None, generators={},
                        config=study.make_config("quick", image_size=16, generators=()), out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    assert label(solid, d=2)["invalid"].tolist() == [1] * 4  # a single phase, and only that


def test_data_slice_refuses_a_stack_of_2d_images(tmp_path, capsys):
    assert main(["data", "synth", "disks", "-n", "20", "--size", "32", "-o", str(tmp_path / "stack.npz")]) == 0
    capsys.readouterr()
    assert main(["data", "slice", str(tmp_path / "stack.npz"), "--size", "8", "-n", "4",
                 "-o", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert "stack of 20 2D images" in err and "--volume" in err and not (tmp_path / "s.npy").exists()
    assert main(["data", "slice", str(tmp_path / "stack.npz"), "--size", "8", "-n", "4", "--volume",
                 "-o", str(tmp_path / "s.npy")]) == 0


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_data_slice_refuses_a_3d_array_that_may_be_a_stack(tmp_path, capsys, suffix):
    """A stack written by sample/mrf sample (.npy, .tif) carries no mark; when its first axis
    differs from the two equal last ones, data slice asks instead of guessing."""
    from microvae.io import save

    stack = tmp_path / f"stack{suffix}"
    save(stack, (np.random.default_rng(0).random((12, 20, 20)) < 0.4).astype(np.uint8))
    out = tmp_path / "s.npy"
    assert main(["data", "slice", str(stack), "--size", "8", "-n", "4", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stack of 12 square 20x20 images" in err and "--volume" in err
    assert not out.exists()
    assert main(["data", "slice", str(stack), "--size", "8", "-n", "4", "--volume", "-o", str(out)]) == 0
    cube = tmp_path / f"cube{suffix}"
    save(cube, (np.random.default_rng(1).random((20, 20, 20)) < 0.4).astype(np.uint8))
    assert main(["data", "slice", str(cube), "--size", "8", "-n", "4", "-o", str(tmp_path / "c.npy")]) == 0


def test_library_errors_name_the_cli_flag(tmp_path, capsys):
    src = _images(tmp_path / "in.npy", n=3, size=16)
    assert main(["label", str(src), "-o", str(tmp_path / "l.csv"), "--no-periodic", "--margin", "30"]) == 2
    assert "--margin must be" in capsys.readouterr().err
    np.save(tmp_path / "thin.npy", np.ones((4, 32, 32), np.uint8) * (np.arange(32) % 2).astype(np.uint8))
    assert main(["data", "slice", str(tmp_path / "thin.npy"), "--size", "8", "-n", "2", "--volume",
                 "-o", str(tmp_path / "s.npy")]) == 2
    assert "--size 8 does not fit" in capsys.readouterr().err


def test_raw_shape_message_does_not_overflow(tmp_path):
    from microvae import io

    (tmp_path / "x.raw").write_bytes(b"12")
    with pytest.raises(ValueError, match=r"needs 1329227995784915872903807060280344576 \("):
        io.read(tmp_path / "x.raw", shape=(2 ** 40,) * 3, dtype="uint8")


def test_object_npy_is_refused_without_advising_pickle(tmp_path):
    from microvae import io

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as exc:
        io.read(tmp_path / "obj.npy")
    assert "Python objects" in str(exc.value) and "allow_pickle" not in str(exc.value)


# ---------------------------------------------------------------------- process-wide state

def test_import_and_atomic_write_leave_the_umask_alone(tmp_path):
    code = f"""
import os
calls = []
real = os.umask
os.umask = lambda mask: calls.append(mask) or real(mask)
import microvae.io
path = microvae.io.atomic_write({str(tmp_path / 'f.txt')!r}, lambda fh: fh.write(b"x"))
os.umask = real
mask = real(0o022); real(mask)
assert calls == [], calls
assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask, oct(os.stat(path).st_mode)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_plotting_keeps_the_users_matplotlib_backend(tmp_path):
    code = f"""
import sys
import matplotlib
matplotlib.use("svg")
import numpy as np
from microvae.compare import compare_sets, plot_comparison
from microvae.plotting import mosaic, plot_s2
mosaic({str(tmp_path / 'm.png')!r}, np.ones((4, 8, 8), np.uint8))
plot_s2({str(tmp_path / 's.png')!r}, np.arange(3), np.ones((2, 3)))
sets = (np.random.default_rng(0).random((2, 6, 16, 16)) < 0.4).astype(np.uint8)
plot_comparison({str(tmp_path / 'c.png')!r}, compare_sets(sets[0], sets[1], noise_floor=False))
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("m.png", "s.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------- the API convention

# Functions of the public API whose options are still positional (CONTRIBUTING.md, "API
# convention"). The list may only shrink: a new function must follow it.
KNOWN_POSITIONAL_OPTIONS = {
    # The seed is the generator's whole state: the data of the constructor, not an option.
    "microvae.mrf.reference.SplitMix64.__init__": ["seed"],
    # benchmarks/bench_mrf.py calls it with a positional seed; it goes when that call does.
    "microvae.mrf.reference.sample_reference": ["seed"],
}


def _public_functions():
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import microvae

    for info in pkgutil.walk_packages(microvae.__path__, "microvae."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or parts[0] in ("cli", "bench", "bench_torch"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == module.__name__ and not dataclasses.is_dataclass(obj):
                for attr, fn in vars(obj).items():
                    if inspect.isfunction(fn) and (attr == "__init__" or not attr.startswith("_")):
                        yield f"{module.__name__}.{name}.{attr}", fn


def test_options_are_keyword_only_after_the_data_argument():
    import inspect

    options = {"periodic", "seed", "workers", "batch_size", "device"}
    found = {}
    for qualname, fn in _public_functions():
        params = list(inspect.signature(fn).parameters.values())[1:]  # the data argument may be positional
        positional = [p.name for p in params if p.name in options and p.kind is p.POSITIONAL_OR_KEYWORD]
        if positional:
            found[qualname] = positional
    new = {k: v for k, v in found.items() if KNOWN_POSITIONAL_OPTIONS.get(k) != v}
    assert not new, f"options must be keyword-only (after *): {new}"
    fixed = set(KNOWN_POSITIONAL_OPTIONS) - set(found)
    assert not fixed, f"these follow the convention now: remove them from KNOWN_POSITIONAL_OPTIONS: {fixed}"
    assert "microvae.distributed.label_dask" in dict(_public_functions())  # the scan sees the package


def test_public_functions_have_type_hints():
    """CONTRIBUTING.md, "Type hints on public functions": every function in a public module's
    ``__all__`` (and the methods of its classes) annotates its parameters and its result."""
    import inspect

    bare = {}
    for qualname, fn in _public_functions():
        if not fn.__module__.startswith("microvae."):
            continue  # inherited from the standard library (a Protocol's __init__)
        sig = inspect.signature(fn)
        names = [p.name for p in sig.parameters.values()
                 if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        without = [n for n in names if sig.parameters[n].annotation is inspect.Parameter.empty]
        if fn.__name__ != "__init__" and sig.return_annotation is inspect.Signature.empty:
            without.append("return")
        if without:
            bare[qualname] = without
    assert not bare, f"public functions without type hints: {bare}"
    assert "microvae.vae.train.train_vae" in dict(_public_functions())  # the scan sees the package


def test_package_ships_py_typed_and_its_licence():
    """The type hints reach users only with the py.typed marker in the package data; the licence
    is declared (SPDX) and shipped."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT" and project["project"]["license-files"] == ["LICENSE"]
    assert (root / "LICENSE").read_text().startswith("MIT License")
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["microvae"]
    assert (root / "microvae" / "py.typed").is_file()


def test_one_name_per_idea():
    """batch_size (not chunk_size) for images per unit of work; workers = threads of one call."""
    import inspect

    for qualname, fn in _public_functions():
        names = set(inspect.signature(fn).parameters)
        assert "chunk_size" not in names, qualname
        assert "n_workers" not in names and "processes" not in names or "workers" not in names, qualname


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


def test_reproduce_errors_name_its_flags(tmp_path, capsys):
    for argv, expected in [(["--size", "50"], "--size must be a multiple of 16"),
                           (["--added", "5000"], "from 1 to --n-generated (1000)"),
                           (["--split", "1,2,3"], "--split (train, validation, test) must"),
                           (["--generators", "gan"], "unknown generator(s) ['gan']")]:
        assert main(["reproduce", "-o", str(tmp_path / "r"), *argv]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_reproduce_generators_by_name(tmp_path):
    """--generators mrf reached reproduce() as the generator objects and failed; names choose
    among the real generators."""
    from microvae import study

    images = (np.random.default_rng(0).random((40, 16, 16)) < 0.4).astype(np.uint8)
    labeller = lambda x: {"porosity": x.reshape(len(x), -1).mean(1), "E": x.reshape(len(x), -1).mean(1),  # noqa: E731
                          "D": x.reshape(len(x), -1).std(1), "k": x[:, 0].mean(1)}
    paths = study.reproduce(images, generators=(), labeller=labeller, out_dir=tmp_path / "r", log=lambda m: None,
                            image_size=16, n_train=8, n_val=8, n_test=8, draws=1,
                            predictor=dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=1))
    res = json.loads(paths["results"].read_text())
    assert res["config"]["generators"] == [] and res["augmented"] == []


def test_counts_are_checked_once_with_the_same_rule():
    """check_int: the counts of io.slices, synthetic and the MRF sampler (three copies before)."""
    from microvae import io, synthetic

    vol = (np.random.default_rng(0).random((16, 16, 16)) < 0.4).astype(np.uint8)
    with pytest.raises(TypeError, match="n must be an integer, got 2.5"):
        io.slices(vol, 8, 2.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        io.slices(vol, 8, 0, stride=8)  # gave an empty stack
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        io.slices(vol, 8, stride=0)
    with pytest.raises(TypeError, match="n must be an integer"):
        synthetic.grains((16, 16), 3, 0.3, n=2.7)  # silently truncated to 2 before
    assert len(io.slices(vol, 8, np.int64(3), seed=0)) == 3
