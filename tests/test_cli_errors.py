"""Errors of the ``microvae`` commands: a bad value is refused in one line naming its flag before
any work (argparse's own errors, and the library's errors translated to the flag), OS errors
and a closed pipe are one line, never a traceback."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_images as _images

from microvae import synthetic
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


# ---------------------------------------------------------------------- any exception: one line

def _synth(tmp_path, *extra):
    return [*extra, "data", "synth", "disks", "-n", "2", "--size", "16", "-o", str(tmp_path / "s.npz")]


@pytest.mark.parametrize("exc, code, line", [
    (RuntimeError("enforce fail at inline_container.cc:672\n  unexpected pos 15744"), 1,
     "unexpected RuntimeError: enforce fail at inline_container.cc:672 unexpected pos 15744 (run with --debug for "
     "the traceback, and please report it)"),
    (np.linalg.LinAlgError("Singular matrix"), 2, "Singular matrix"),  # a ValueError
    (ZeroDivisionError("float division by zero"), 1, "unexpected ZeroDivisionError: float division by zero"),
    (MemoryError("Unable to allocate 37.3 GiB for an array"), 1, "out of memory (Unable to allocate 37.3 GiB"),
])
def test_any_exception_is_one_line_and_debug_shows_it(tmp_path, capsys, monkeypatch, exc, code, line):
    def fail(*args, **kwargs):
        raise exc
    monkeypatch.setattr(synthetic, "overlapping_disks", fail)
    assert main(_synth(tmp_path)) == code
    err = capsys.readouterr().err
    assert err.startswith("microvae data: error: ") and line in err and err.count("\n") == 1
    with pytest.raises(type(exc)):
        main(_synth(tmp_path, "--debug"))


def test_long_messages_are_cut(tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("x" * 5000)
    monkeypatch.setattr(synthetic, "overlapping_disks", fail)
    assert main(_synth(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 700 and err.rstrip().endswith("xxx...")


# ---------------------------------------------------------------------- messages say what was typed

def test_flags_are_named_only_where_the_message_means_them(tmp_path, capsys):
    vol = tmp_path / "vol.npy"
    np.save(vol, (np.random.default_rng(0).random((20, 24, 24)) < 0.4).astype(np.uint8))
    assert main(["data", "slice", str(vol), "--volume", "--size", "50", "-n", "1", "-o", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert "--size 50 does not fit planes of shape (24, 24)" in err and "--shape" not in err
    # A switch with a --no- form is named by the form that does what the message asks.
    np.save(tmp_path / "small.npy", np.eye(6, dtype=np.uint8)[None].repeat(2, axis=0))
    assert main(["label", str(tmp_path / "small.npy"), "-o", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert "--extrapolate needs image sides of at least 8 pixels" in err and "pass --no-extrapolate" in err
    assert "False" not in err and "True" not in err
    assert main(["reproduce", "-o", str(tmp_path / "r"), "--added", "0"]) == 2
    assert "--added must be an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["data", "slice", "IN", "--volume", "--size", "4", "-n", "1"],
                                     ["label", "IN", "--volume", "--slice", "4"]])
def test_bad_axes_are_refused_by_the_parser(tmp_path, capsys, command):
    argv = [a if a != "IN" else str(tmp_path / "in.npy") for a in command]
    for bad in ("x", "0,0", "3", ""):
        with pytest.raises(SystemExit):
            main(argv + ["--axes", bad, "-o", str(tmp_path / "o.npz")])
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert "argument --axes: must be distinct axes from 0, 1, 2" in last and "invalid literal" not in last


def test_an_output_named_dash_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = _images(tmp_path / "in.npy")
    for argv in (["label", str(src), "-o", "-"], ["data", "synth", "disks", "-n", "1", "-o", "-"],
                 ["correlate", str(src), "--s2", "-o", "-"]):
        assert main(argv) == 2
        assert "an output named '-' would be a file called '-'" in capsys.readouterr().err
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("kind", ["zarr", "hdf5"])
def test_store_errors_name_the_store_and_what_it_holds(tmp_path, capsys, kind):
    images = (np.random.default_rng(0).random((3, 16, 16)) < 0.4).astype(np.uint8)
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        store = tmp_path / "x.zarr"
        zarr.open_group(str(store), mode="w").create_array("images", data=images)
    else:
        h5py = pytest.importorskip("h5py")
        store = tmp_path / "x.h5"
        with h5py.File(store, "w") as fh:
            fh["images"] = images
            fh["other"] = images
    assert main(["label", str(store), "--dataset", "nope", "-o", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{store}: no " in err and "'nope' (has ['images'" in err and err.count("\n") == 1
    if kind == "hdf5":
        assert main(["label", str(store), "-o", str(tmp_path / "l.csv")]) == 2
        err = capsys.readouterr().err
        assert "choose one with --dataset" in err and "(--dataset)" not in err


def test_a_damaged_hdf5_file_is_named(tmp_path, capsys):
    pytest.importorskip("h5py")
    (tmp_path / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    assert main(["label", str(tmp_path / "x.h5"), "-o", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'x.h5'}: cannot read it as a HDF5 file" in err and err.count("\n") == 1


def test_ctrl_c_stops_a_local_cluster_run_in_one_line(tmp_path):
    """Ctrl-C reaches every process of the job; the workers of `label --processes` ignore it and
    the command stops them, so the terminal shows one line instead of a traceback per worker."""
    pytest.importorskip("distributed")
    import re
    import signal
    import time

    from microvae.labeling import local_client

    with local_client(1) as client:
        before = client.run(os.getpid)
        for pid in before.values():
            os.kill(pid, signal.SIGINT)
        time.sleep(1)
        assert client.run(os.getpid) == before  # still the same workers, not restarted ones
        client.cluster.close()
    # Enough chunks that the job is still running when the interrupt comes, even on a fast machine.
    src = _images(tmp_path / "in.npy", n=20000, size=32)
    proc = subprocess.Popen([sys.executable, "-m", "microvae", "label", str(src), "-o", str(tmp_path / "l.csv"),
                             "--processes", "2", "--batch-size", "2"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            # A test run started in the background by a non-interactive shell ignores
                            # SIGINT, and a child would inherit that: give the command the default.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = ""
    while not re.search(r" [1-9]\d*/20000", err):  # chunks are coming back: the workers are at work
        err += proc.stderr.read(1) or pytest.fail(f"label ended early: {err}")
    os.killpg(proc.pid, signal.SIGINT)
    err += proc.stderr.read()
    assert proc.wait(60) == 130
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("label:")]
    assert lines == ["microvae: interrupted"], err
