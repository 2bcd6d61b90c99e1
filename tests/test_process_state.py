"""No process-wide side effects: importing microvae and writing files leave the umask alone,
plotting leaves the user's matplotlib backend alone (and never imports pyplot). Each runs in a
fresh interpreter."""
import subprocess
import sys


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
