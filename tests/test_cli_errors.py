"""Every exception the command line can meet ends in one line without a traceback (unless
--debug): user errors, system errors, memory, and anything unexpected from a peer library."""
import numpy as np
import pytest

from microvae import synthetic
from microvae.cli import main


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
