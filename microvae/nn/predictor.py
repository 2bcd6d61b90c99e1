"""The structure-property CNN of the paper (§3.1, Fig. 4b): binary image in, properties out.

Four 3×3 convolutions, each followed by ReLU and a 2×2 max-pool of stride 2, then a fully
connected head. Targets are standardized with the training set's mean and std (the paper
"normalized for training"); the loss is the MSE of the standardized targets, optimized with
Adam (learning rate 1e-3) and stopped early on the validation loss, keeping the best epoch's
weights. :class:`PropertyPredictor` trains either **one multi-output network** for all
properties (``joint=True``, the loss is the mean over properties) or, as in the paper,
**one network per property** (``joint=False``).

Training is seeded and deterministic on CPU for a fixed number of torch threads (parallel
float reductions may round differently with another thread count).
"""
import copy
import io as _io
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from .._validate import as_binary_batch, as_generator, check_int, check_positive
from ..io import atomic_write
from .safe_load import load_torch_file

__all__ = ["PropertyCNN", "PredictorConfig", "PropertyPredictor", "r2_score", "rmse"]


class PropertyCNN(nn.Module):
    """Four conv(3×3) + ReLU + max-pool(2, stride 2) blocks and a fully connected head.

    Parameters
    ----------
    image_size : int
        Side of the square input images; must be divisible by 16 (four halvings).
    n_outputs : int
        Number of predicted (standardized) properties.
    channels : sequence of 4 ints
        Output channels of the four convolutions.
    hidden : int
        Width of the hidden fully connected layer (0: a single linear layer).
    dropout : float
        Dropout probability before the hidden layer.
    """

    def __init__(self, image_size: int, n_outputs: int = 1, channels: Sequence[int] = (16, 32, 64, 64),
                 hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be 4 positive ints, got {channels}")
        if image_size < 16 or image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (four 2x poolings), got {image_size}")
        layers, c_in = [], 1
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        flat = c_in * (image_size // 16) ** 2
        head: list[nn.Module] = [nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        if hidden:
            head += [nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs)]
        else:
            head.append(nn.Linear(flat, n_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized properties ``(B, n_outputs)`` of images ``x`` of shape ``(B, 1, S, S)``."""
        return self.head(self.features(x))


@dataclass
class PredictorConfig:
    """Hyper-parameters of the property CNN and its training.

    ``max_epochs`` bounds training; it stops earlier once the validation loss has not improved
    by more than ``min_delta`` (standardized MSE) for ``patience`` epochs.
    """

    channels: tuple = (16, 32, 64, 64)
    hidden: int = 64
    dropout: float = 0.0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 20
    min_delta: float = 0.0
    joint: bool = True

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        for name in ("batch_size", "max_epochs", "patience"):
            check_int(getattr(self, name), name)
        check_positive(self.lr, "lr")
        if not 0 <= self.dropout < 1 or self.weight_decay < 0 or self.min_delta < 0:
            raise ValueError("need 0 <= dropout < 1, weight_decay >= 0, min_delta >= 0")


def r2_score(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Coefficient of determination per column, ``1 - SSE / SST`` (can be negative)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    sst = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((y_true - y_pred) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - sse / sst


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Root mean squared error per column."""
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return np.sqrt((diff ** 2).mean(axis=0))


def _as_targets(targets, n, names):
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n:
        raise ValueError(f"targets must have shape ({n},) or ({n}, n_properties), got {np.shape(targets)}")
    if names is not None and y.shape[1] != len(names):
        raise ValueError(f"targets have {y.shape[1]} columns but the predictor has names {list(names)}")
    if not np.isfinite(y).all():
        raise ValueError("targets contain NaN or inf; drop those images (e.g. labels flagged invalid) first")
    return y


def _as_input(images, image_size=None, name="images"):
    batch, nd = as_binary_batch(images, name=name)
    if nd != 2 or batch.shape[1] != batch.shape[2]:
        raise ValueError(f"{name} must be square 2D images (N, H, H), got shape {batch.shape}")
    if image_size is not None and batch.shape[1] != image_size:
        raise ValueError(f"{name} are {batch.shape[1]} px but the predictor was built for {image_size} px")
    return torch.from_numpy(batch).to(torch.float32).unsqueeze(1)


class PropertyPredictor:
    """Train and apply the property CNN on binary images (1 = pore).

    Parameters
    ----------
    config : PredictorConfig or dict, optional
    names : sequence of str, optional
        Property names, one per target column (default ``y0, y1, ...``).
    seed : int
        Seeds weight initialization, batch order and dropout. Training does not touch the
        global torch or NumPy random state.
    device : str or torch.device, optional
        Where the networks train and predict (default CPU; results are bit-reproducible there).

    Attributes
    ----------
    history : list of dict
        Per network: ``epochs`` run, ``best_epoch``, ``best_val_loss``, ``train_loss`` and
        ``val_loss`` curves (standardized MSE).
    """

    def __init__(self, config: PredictorConfig | dict | None = None, *, names: Sequence[str] | None = None,
                 seed: int = 0, device: str | torch.device | None = None):
        if config is None:
            config = PredictorConfig()
        elif isinstance(config, dict):
            config = PredictorConfig(**config)
        self.config = config
        self.names: tuple[str, ...] | None = tuple(names) if names is not None else None
        self.seed = int(seed)
        self.device = torch.device(device or "cpu")
        self.models: list[tuple[list[int], PropertyCNN]] = []
        self.image_size: int | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ training
    def fit(self, images: ArrayLike, targets: ArrayLike, val_images: ArrayLike,
            val_targets: ArrayLike) -> "PropertyPredictor":
        """Train on ``(images, targets)``, early-stopping on ``(val_images, val_targets)``.

        ``targets`` is ``(N,)`` or ``(N, n_properties)`` in physical units; they are
        standardized with the training mean and std (a constant column is an error: there is
        nothing to learn).
        """
        x = _as_input(images)
        self.image_size = int(x.shape[-1])
        xv = _as_input(val_images, self.image_size, "val_images")
        y = _as_targets(targets, len(x), self.names)
        yv = _as_targets(val_targets, len(xv), None)
        if yv.shape[1] != y.shape[1]:
            raise ValueError(f"val_targets have {yv.shape[1]} columns, targets have {y.shape[1]}")
        names = self.names if self.names is not None else tuple(f"y{j}" for j in range(y.shape[1]))
        self.names = names
        self.mean, self.std = y.mean(axis=0), y.std(axis=0)
        if (self.std == 0).any():
            const = [n for n, s in zip(names, self.std) if s == 0]
            raise ValueError(f"training targets {const} are constant; nothing to learn")
        ys = torch.from_numpy((y - self.mean) / self.std).to(torch.float32)
        yvs = torch.from_numpy((yv - self.mean) / self.std).to(torch.float32)
        groups = [list(range(y.shape[1]))] if self.config.joint else [[j] for j in range(y.shape[1])]
        self.models, self.history = [], []
        for k, cols in enumerate(groups):
            model, hist = self._train_one(x, ys[:, cols], xv, yvs[:, cols], self.seed + 7919 * k)
            self.models.append((cols, model))
            self.history.append(hist)
        return self

    def _train_one(self, x, y, xv, yv, seed):
        cfg = self.config
        rng = as_generator(seed)
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            model = PropertyCNN(int(x.shape[-1]), y.shape[1], cfg.channels, cfg.hidden, cfg.dropout).to(self.device)
            x, y, yv = x.to(self.device), y.to(self.device), yv.to(self.device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            best, best_loss, best_epoch, since = None, np.inf, 0, 0
            train_curve, val_curve = [], []
            for epoch in range(1, cfg.max_epochs + 1):
                model.train()
                order = torch.from_numpy(rng.permutation(len(x)))
                total = 0.0
                for start in range(0, len(x), cfg.batch_size):
                    idx = order[start:start + cfg.batch_size]
                    opt.zero_grad(set_to_none=True)
                    loss = ((model(x[idx]) - y[idx]) ** 2).mean()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                train_curve.append(total / len(x))
                val_loss = float(((self._forward(model, xv, self.device) - yv) ** 2).mean())
                val_curve.append(val_loss)
                if val_loss < best_loss - cfg.min_delta:
                    best, best_loss, best_epoch, since = copy.deepcopy(model.state_dict()), val_loss, epoch, 0
                else:
                    since += 1
                    if since >= cfg.patience:
                        break
            if best is None:
                raise ValueError("the validation loss was never finite (NaN targets or a diverging fit); "
                                 "nothing to keep")
            model.load_state_dict(best)
            model.eval()
        return model, {"epochs": epoch, "best_epoch": best_epoch, "best_val_loss": best_loss,
                       "train_loss": train_curve, "val_loss": val_curve}

    @staticmethod
    def _forward(model, x, device, batch=256):
        model.eval()
        with torch.no_grad():
            return torch.cat([model(x[i:i + batch].to(device)) for i in range(0, len(x), batch)])

    # ------------------------------------------------------------------ inference
    def _fitted(self) -> tuple[tuple[str, ...], int, np.ndarray, np.ndarray]:
        """Names, image size and target scaling of a trained predictor; RuntimeError before."""
        if not self.models or self.names is None or self.image_size is None or self.mean is None or self.std is None:
            raise RuntimeError("the predictor is not trained; call fit() or load() first")
        return self.names, self.image_size, self.mean, self.std

    def predict(self, images: ArrayLike) -> np.ndarray:
        """Predicted properties, shape ``(N, n_properties)``, in the units of the targets."""
        names, image_size, mean, std = self._fitted()
        x = _as_input(images, image_size)
        out = np.empty((len(x), len(names)))
        for cols, model in self.models:
            out[:, cols] = self._forward(model, x, self.device).cpu().numpy().astype(np.float64)
        return out * std + mean

    def score(self, images: ArrayLike, targets: ArrayLike) -> dict[str, dict[str, float]]:
        """Test metrics: ``{"r2": {name: value}, "rmse": {name: value}}``."""
        pred = self.predict(images)
        names = self._fitted()[0]
        y = _as_targets(targets, len(pred), names)
        return {"r2": dict(zip(names, map(float, r2_score(y, pred)))),
                "rmse": dict(zip(names, map(float, rmse(y, pred))))}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write config, names, target scaling and weights to a torch file (atomically)."""
        names, image_size, mean, std = self._fitted()
        state = {"config": asdict(self.config), "names": list(names), "seed": self.seed,
                 "image_size": image_size, "mean": mean.tolist(), "std": std.tolist(),
                 "models": [(cols, {k: v.cpu() for k, v in m.state_dict().items()}) for cols, m in self.models],
                 "history": self.history}
        buf = _io.BytesIO()
        torch.save(state, buf)
        return atomic_write(path, lambda fh: fh.write(buf.getvalue()), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> "PropertyPredictor":
        """Rebuild a trained predictor written by :meth:`save` (on ``device``, default CPU)."""
        state = load_torch_file(path, "predictor")
        needed = {"config", "names", "seed", "image_size", "mean", "std", "models", "history"}
        if not isinstance(state, dict) or needed - set(state):
            raise ValueError(f"predictor {path}: not a file written by PropertyPredictor.save")
        self = cls(PredictorConfig(**state["config"]), names=state["names"], seed=state["seed"], device=device)
        self.image_size = int(state["image_size"])
        self.mean, self.std = np.asarray(state["mean"]), np.asarray(state["std"])
        self.history = state["history"]
        cfg = self.config
        for cols, sd in state["models"]:
            model = PropertyCNN(self.image_size, len(cols), cfg.channels, cfg.hidden, cfg.dropout)
            model.load_state_dict(sd)
            model.to(self.device).eval()
            self.models.append((list(cols), model))
        return self
