"""Errors of the ``microvae`` commands: a bad value is refused in one line naming its flag before
any work (argparse's own errors, and the library's errors translated to the flag), OS errors
and a closed pipe are one line, never a traceback."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_images as _images
from microvae.cli import main


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


@pytest.mark.parametrize("device", ["cuda/foo", "tpu", "cuda:99"])
@pytest.mark.parametrize("command", [["train", "IN"], ["sample", "IN", "-n", "2"], ["reproduce"]])
def test_bad_device_is_named(tmp_path, capsys, device, command):
    argv = [a if a != "IN" else str(tmp_path / "in.npy") for a in command] + ["-o", str(tmp_path / "o"),
                                                                             "--device", device]
    with pytest.raises(SystemExit):
        main(argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --device" in last and device in last


def test_library_errors_name_the_cli_flag(tmp_path, capsys):
    src = _images(tmp_path / "in.npy", n=3, size=16)
    assert main(["label", str(src), "-o", str(tmp_path / "l.csv"), "--no-periodic", "--margin", "30"]) == 2
    assert "--margin must be" in capsys.readouterr().err
    np.save(tmp_path / "thin.npy", np.ones((4, 32, 32), np.uint8) * (np.arange(32) % 2).astype(np.uint8))
    assert main(["data", "slice", str(tmp_path / "thin.npy"), "--size", "8", "-n", "2", "--volume",
                 "-o", str(tmp_path / "s.npy")]) == 2
    assert "--size 8 does not fit" in capsys.readouterr().err


def test_reproduce_errors_name_its_flags(tmp_path, capsys):
    for argv, expected in [(["--size", "50"], "--size must be a multiple of 16"),
                           (["--added", "5000"], "from 1 to --n-generated (1000)"),
                           (["--split", "1,2,3"], "--split (train, validation, test) must"),
                           (["--generators", "gan"], "unknown generator(s) ['gan']")]:
        assert main(["reproduce", "-o", str(tmp_path / "r"), *argv]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


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
