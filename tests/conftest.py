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
