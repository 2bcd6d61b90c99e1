import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from microvae.cli import main
from microvae.correlations import s2


def test_version_and_help_in_a_real_process():
    out = subprocess.run([sys.executable, "-m", "microvae", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("microvae ")
    out = subprocess.run([sys.executable, "-m", "microvae", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("data", "correlate"):
        assert command in out.stdout


def test_user_error_is_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "microvae", "correlate", str(tmp_path / "missing.npy"),
                          "--s2", "-o", str(tmp_path / "o.csv")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "missing.npy" in out.stderr


def test_synth_info_correlate_roundtrip(tmp_path, capsys):
    images = tmp_path / "disks.npz"
    assert main(["data", "synth", "disks", "-n", "4", "--size", "64", "--porosity", "0.4", "--radius", "4",
                 "-o", str(images)]) == 0
    assert main(["data", "info", str(images)]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["n"] == 4 and info["shape"] == [64, 64]

    out = tmp_path / "s2.csv"
    assert main(["correlate", str(images), "--s2", "--r-max", "10", "--voxel-size", "2", "-o", str(out),
                 "--plot", str(tmp_path / "s2.png")]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 4 * 11
    data = np.load(images)["images"]
    expected = s2(data, r_max=10)
    np.testing.assert_allclose([float(r["s2"]) for r in rows], expected.ravel(), rtol=1e-12)
    assert float(rows[3]["r"]) == 6.0  # third bin times voxel size 2
    meta = json.load(open(str(out) + ".json"))
    assert meta["parameters"]["r_max"] == 10 and meta["parameters"]["periodic"] is True
    assert (tmp_path / "s2.png").stat().st_size > 1000

    # Existing outputs are kept unless --overwrite.
    assert main(["correlate", str(images), "--s2", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_slice_volume_with_pore_value(tmp_path, rng):
    vol = np.where(rng.random((32, 32, 32)) < 0.3, 0, 255).astype(np.uint8)
    np.save(tmp_path / "vol.npy", vol)
    out = tmp_path / "slices.npy"
    assert main(["data", "slice", str(tmp_path / "vol.npy"), "--pore-value", "0", "--size", "16", "-n", "9",
                 "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (9, 16, 16) and abs(samples.mean() - 0.3) < 0.1
    # Without the pore value the data is ambiguous: a clear error, exit code 2.
    assert main(["data", "slice", str(tmp_path / "vol.npy"), "--size", "16", "-n", "9",
                 "-o", str(tmp_path / "x.npy")]) == 2


@pytest.mark.parametrize("kind", ["grf", "grains", "spheres"])
def test_synth_kinds(tmp_path, kind):
    out = tmp_path / f"{kind}.npy"
    assert main(["data", "synth", kind, "-n", "2", "--size", "24", "--radius", "3", "-o", str(out)]) == 0
    arr = np.load(out)
    assert arr.shape == ((2, 24, 24, 24) if kind == "spheres" else (2, 24, 24))
