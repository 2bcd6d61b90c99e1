"""Train, resume and sample on the real Berea volume through the CLI (skipped without ../shared/data)."""
import numpy as np
import pytest

from microvae import vae as T
from microvae.cli import main

from conftest import shared_file

pytestmark = pytest.mark.data


def test_berea_cli_train_resume_sample(tmp_path, capsys):
    berea = str(shared_file("berea.zip"))
    run = tmp_path / "run"
    common = ["--pore-value", "0", "--volume", "--slices", "24", "-o", str(run), "--no-progress", "--batch-size", "4",
              "--sample-every", "0"]
    assert main(["train", berea, *common, "--steps", "2"]) == 0
    assert main(["train", berea, *common, "--steps", "3", "--resume"]) == 0
    ckpt = T.load_checkpoint(run)
    assert ckpt["step"] == 3 and ckpt["data"]["n"] == 24 and ckpt["data"]["shape"] == [64, 64]
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "6", "-o", str(tmp_path / "gen.npy"), "--binarize", "bernoulli"]) == 0
    gen = np.load(tmp_path / "gen.npy")
    assert gen.shape == (6, 64, 64) and set(np.unique(gen)) <= {0, 1}
    # Bernoulli draws from an (even barely trained) pore probability give a porosity in (0, 1).
    assert 0 < gen.mean() < 1


def test_berea_volume_needs_slices(tmp_path, capsys):
    berea = str(shared_file("berea.zip"))
    assert main(["train", berea, "--pore-value", "0", "--volume", "-o", str(tmp_path / "r")]) == 2
    assert "needs --slices" in capsys.readouterr().err
    # Without --volume a 3D file is a stack of 2D images (never guessed): here 400 images of 400^2.
    assert main(["train", berea, "--pore-value", "0", "-o", str(tmp_path / "r")]) == 2
    assert "images are 400x400 but --image-size 64" in capsys.readouterr().err
