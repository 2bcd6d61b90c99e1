"""The morphology (style) network: the first conv blocks of VGG16, frozen.

The layers are defined here with torchvision's indexing (``features.N`` of
``torchvision.models.vgg16``), so torchvision state dicts load directly. Three sources of
weights:

- ``"random"`` (the default, works offline): a seeded He-normal initialization. Gram statistics
  of random multi-scale CNN features are a known texture descriptor (Ustyuzhaninov et al., 2017);
  the paper used ImageNet weights, which we cannot assume are available.
- ``"imagenet"``: torchvision's ``VGG16_Weights.IMAGENET1K_V1``, downloaded (or taken from the
  torch hub cache) by torchvision; without a network this is an error that says so.
- a path to a local torchvision-format file (a ``vgg16`` state dict, or one of its ``features``).

Input: one-channel images in [0, 1] (1 = pore), repeated to three channels and normalized with
the ImageNet channel mean and standard deviation, for every kind of weights.
"""
import hashlib
from pathlib import Path

import torch
from torch import nn

__all__ = ["VGGStyleNet", "LAYER_INDEX", "DEFAULT_LAYERS", "StyleWeightsUnavailable"]

# torchvision's VGG16 "D" configuration; "M" is a 2x2 max-pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# Index of each ReLU output in torchvision's vgg16().features.
LAYER_INDEX = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13,
               "relu3_3": 15, "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27,
               "relu5_3": 29}
# The output of each of the first four conv blocks (before its pooling).
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
_MEAN = (0.485, 0.456, 0.406)


class StyleWeightsUnavailable(RuntimeError):
    """The ImageNet weights could not be obtained (no network and not cached)."""


_STD = (0.229, 0.224, 0.225)


class VGGStyleNet(nn.Module):
    """Frozen VGG16 feature extractor returning the activations of chosen layers.

    Parameters
    ----------
    layers : sequence of str
        Names from :data:`LAYER_INDEX`, e.g. ``("relu1_2", "relu2_2", "relu3_3", "relu4_3")``.
    weights : {"random", "imagenet"} or path
        See the module docstring.
    width : float
        Channel multiplier (``0.25`` gives 16-32-64-128 channels): a cheaper network for CPU
        presets. Only with ``weights="random"``.
    seed : int
        Seed of the random initialization.
    """

    def __init__(self, layers=DEFAULT_LAYERS, weights="random", width=1.0, seed=0):
        super().__init__()
        layers = tuple(layers)
        unknown = [n for n in layers if n not in LAYER_INDEX]
        if not layers or unknown:
            raise ValueError(f"unknown style layers {unknown or layers}; choose from {list(LAYER_INDEX)}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        if width != 1.0 and weights != "random":
            raise ValueError("a width multiplier other than 1 needs weights='random' (pretrained VGG16 is full width)")
        self.layers, self.weights_source, self.width, self.seed = layers, str(weights), float(width), int(seed)
        self._index = [LAYER_INDEX[n] for n in layers]
        self.features = _vgg_features(max(self._index), width)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        if weights == "random":
            self._init_random(seed)
        elif weights == "imagenet":
            self._load(_imagenet_state_dict(), "torchvision IMAGENET1K_V1")
        else:
            self._load(_read_state_dict(weights), str(weights))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):
        # Frozen: never switch to training behaviour, whatever the enclosing module does.
        return super().train(False)

    def _init_random(self, seed):
        gen = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                with torch.no_grad():
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                    m.bias.zero_()

    def _load(self, state, source):
        own = self.features.state_dict()
        for key, value in own.items():
            full = f"features.{key}"
            if full not in state:
                raise ValueError(f"{source}: weights lack {full!r} (not a torchvision VGG16 state dict?)")
            if tuple(state[full].shape) != tuple(value.shape):
                raise ValueError(f"{source}: {full} has shape {tuple(state[full].shape)}, expected {tuple(value.shape)}")
            own[key] = state[full]
        self.features.load_state_dict(own)

    def forward(self, x):
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

    def fingerprint(self):
        """SHA-256 of the weights, to check that a resumed run uses the same style network."""
        digest = hashlib.sha256()
        for key, value in sorted(self.features.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def config(self):
        return {"layers": list(self.layers), "weights": self.weights_source, "width": self.width, "seed": self.seed}


def _vgg_features(last, width):
    modules, c_in = [], 3
    for v in _VGG16:
        if len(modules) > last:
            break
        if v == "M":
            modules.append(nn.MaxPool2d(2, 2))
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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for corrupt files
        raise ValueError(f"style weights {path}: cannot read ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"style weights {path}: expected a state dict of tensors")
    if not any(k.startswith("features.") for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    return state
