"""Torch files (style weights, predictors, checkpoints) are read as tensors only, and every
refusal is in microvae's words: never torch's advice to load again with weights_only=False."""
import collections
import os

import pytest
import torch

from microvae.nn.safe_load import load_torch_file
from microvae.nn.style import VGGStyleNet


class _Payload:
    """Would create a file named by ``MARK`` when unpickled, if anything unpickled it."""

    def __reduce__(self):
        return (os.mknod, (os.environ["MARK"],))


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("MARK", str(tmp_path / "executed"))
    real = {f"features.{k}": v for k, v in VGGStyleNet(width=1.0).features.state_dict().items()}
    paths = {}

    def save(name, obj):
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(obj, paths[name])
    save("pickle", {"features.0.weight": _Payload()})
    save("meta", {k: torch.empty_like(v, device="meta") for k, v in real.items()})
    save("ints", {k: v.to(torch.int64) for k, v in real.items()})
    save("nan", {k: v * float("nan") for k, v in real.items()})
    save("foreign", {"fc.weight": torch.zeros(3, 3)})
    save("counter", collections.Counter(a=1))  # plain containers are fine for torch, not weights
    (tmp_path / "garbage.pt").write_bytes(b"definitely not a torch file" * 4)
    paths["garbage"] = tmp_path / "garbage.pt"
    (tmp_path / "cut.pt").write_bytes(paths["meta"].read_bytes()[:300])
    paths["cut"] = tmp_path / "cut.pt"
    return paths


@pytest.mark.parametrize("name, message", [
    ("pickle", "holds pickled Python objects besides tensors and plain containers; microvae never loads those"),
    ("meta", "holds tensors without data (meta tensors"),
    ("ints", "features.0.weight is not finite floating-point weights (dtype torch.int64)"),
    ("nan", "features.0.weight is not finite floating-point weights (dtype torch.float32, NaN or inf values)"),
    ("foreign", "weights lack 'features.0.weight' (not a torchvision vgg16 state dict?)"),
    ("counter", "expected a state dict of tensors"),
    ("garbage", "cannot read it (not a torch file; damaged, cut short or another format?)"),
    ("cut", "cannot read it (PytorchStreamReader failed reading zip archive"),
])
def test_bad_style_weights_are_refused_in_our_words(files, tmp_path, name, message):
    with pytest.raises(ValueError) as info:
        VGGStyleNet(weights=str(files[name]), width=1.0)
    text = str(info.value)
    assert message in text
    assert "weights_only" not in text and "arbitrary code" not in text
    assert not (tmp_path / "executed").exists()


def test_load_torch_file_names_the_missing_file_and_returns_tensors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint .*nothing.pt: no such file"):
        load_torch_file(tmp_path / "nothing.pt", "checkpoint")
    torch.save({"a": [torch.ones(2)], "b": (1, "x")}, tmp_path / "ok.pt")
    got = load_torch_file(tmp_path / "ok.pt", "checkpoint")
    assert torch.equal(got["a"][0], torch.ones(2)) and got["b"] == (1, "x")


def test_a_foreign_file_is_not_a_predictor(files):
    from microvae.nn.predictor import PropertyPredictor

    with pytest.raises(ValueError, match="not a file written by PropertyPredictor.save"):
        PropertyPredictor.load(files["foreign"])
    with pytest.raises(ValueError, match="predictor .*: holds pickled Python objects"):
        PropertyPredictor.load(files["pickle"])
