import os
from pathlib import Path

import numpy as np
import pytest

# Real data lives beside the project (never inside it); tests that need it skip without it.
SHARED_DATA = Path(os.environ.get("MICROVAE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def shared_file(name):
    """Path to a file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {name} not found under {SHARED_DATA.resolve()}")
    return path


@pytest.fixture(scope="session")
def berea_volume():
    """The Berea sandstone micro-CT volume (400^3, 1 = pore), loaded once per session."""
    from microvae.io import load

    return load(shared_file("berea.zip"), pore_value=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures(...)``):
    small networks train faster on one thread than on several of a busy 2-core machine. The
    previous count is restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def write_images(path, n=6, size=16, seed=0):
    """Save ``n`` random binary ``size``² images (40 % pore) as ``.npy`` at ``path``; returns ``path``."""
    rng = np.random.default_rng(seed)
    np.save(path, (rng.random((n, size, size)) < 0.4).astype(np.uint8))
    return path
