"""Classifier two-sample test (C2ST): can a small CNN tell a set of images from authentic ones?

:func:`c2st` trains a small convolutional network to separate a set of images from authentic
images and reports its accuracy on images it never saw: about 0.5 when the two sets cannot be
told apart, up to 1 when every image gives its set away (Lopez-Paz and Oquab 2017). It sees
what descriptors averaged over a set miss: pixel-scale specks, rounded instead of cusped pores,
checkerboard textures, images that are each plausible on average but wrong in detail.

Protocol, per classifier seed: both sets are cut to the same size ``n`` (at most
``max_per_class``, a seeded random choice), and each class is split into training, validation
and test images (``fractions``). The network (``channels``: four blocks of 3x3 convolution,
batch normalization, ReLU and 2x2 max-pool, then the spatial mean of the last block's features
and a linear layer) trains with Adam on the binary cross-entropy, each training image seen
under a random one of the 8 rotations and reflections of the square every epoch, so that an
orientation cannot give a set away. Training stops when the validation accuracy has not
risen for ``patience`` epochs (or after ``max_epochs``) and keeps the weights of the best
epoch. The test accuracy averages the network's logits over the 8 orientations of each test
image. The result averages the accuracies of several seeds (each its own split, initialization
and batch order).

Judge against authentic images the generator never saw (held-out images), so that what it
learned from is not what it is measured against. The test cannot see copying: a generator that
returns its training images scores about 0.5 against held-out images of the same material
(:func:`microvae.compare.nearest_correlation` sees that). :func:`c2st_halves` gives the noise
floor: the same test between two disjoint random halves of the authentic images.

Training is seeded and does not touch the global random state; on a CPU the result is
bit-reproducible for a fixed number of torch threads.
"""
import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from ._validate import as_binary_batch, check_int, check_positive
from .augment import dihedral

__all__ = ["C2ST_DEFAULTS", "C2STNet", "c2st", "c2st_halves"]

#: Default settings of :func:`c2st` (docs/vae.md, "Realism", says how they were chosen).
C2ST_DEFAULTS: dict[str, Any] = dict(seeds=3, max_per_class=600, fractions=(0.5, 0.2, 0.3), channels=(8, 16, 32, 32),
                     batch_size=32, lr=2e-3, max_epochs=100, patience=20)


class C2STNet(nn.Module):
    """The classifier: conv(3x3) + batch norm + ReLU + max-pool(2) blocks, spatial mean, linear.

    Any image size divisible by ``2 ** len(channels)``; input 0/1, output one logit per image
    (positive: the first class).
    """

    def __init__(self, channels: Sequence[int] = C2ST_DEFAULTS["channels"]):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial mean of the last block's features, ``(B, channels[-1])``."""
        return self.features(x * 2 - 1).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image of ``x`` ``(B, 1, S, S)``, 0/1 valued."""
        return self.head(self.embed(x)).squeeze(1)


def _logits(model, x, orientations, batch=256):
    """Logits of ``x`` averaged over the first ``orientations`` of the 8 symmetries of the square."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            out.append(torch.stack([model(dihedral(xb, torch.full((len(xb),), t))) for t in range(orientations)])
                       .mean(0))
    return torch.cat(out)


def _accuracy(model, x, y, orientations):
    return float(((_logits(model, x, orientations) > 0).float() == y).float().mean())


def _one_seed(a, b, seed, n, fractions, channels, batch_size, lr, max_epochs, patience):
    """Test accuracy and training record of one classifier seed."""
    rng = np.random.default_rng(seed)
    picks = (rng.permutation(len(a))[:n], rng.permutation(len(b))[:n])
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    parts = []
    for lo, hi in ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, n)):
        both = np.concatenate([a[picks[0][lo:hi]], b[picks[1][lo:hi]]])
        parts.append((torch.from_numpy(both).float().unsqueeze(1),
                      torch.cat([torch.ones(hi - lo), torch.zeros(hi - lo)])))
    (x, y), (xv, yv), (xt, yt) = parts
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = C2STNet(channels)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        best, best_acc, best_epoch, since = None, -1.0, 0, 0
        for epoch in range(1, max_epochs + 1):
            model.train()
            order = torch.from_numpy(rng.permutation(len(x)))
            xa = dihedral(x, torch.from_numpy(rng.integers(0, 8, len(x))))
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:  # batch norm needs two images
                    continue
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xa[idx]), y[idx]).backward()
                opt.step()
            val = _accuracy(model, xv, yv, 1)
            if val > best_acc:
                best, best_acc, best_epoch, since = copy.deepcopy(model.state_dict()), val, epoch, 0
            else:
                since += 1
                if since >= patience:
                    break
        assert best is not None  # the first epoch always improves on -1
        model.load_state_dict(best)
        test = _accuracy(model, xt, yt, 8)
    return {"accuracy": test, "val_accuracy": best_acc, "best_epoch": best_epoch, "epochs": epoch}


def c2st(images: ArrayLike, authentic: ArrayLike, *, seeds: int | Sequence[int] = C2ST_DEFAULTS["seeds"],
         max_per_class: int = C2ST_DEFAULTS["max_per_class"],
         fractions: Sequence[float] = C2ST_DEFAULTS["fractions"],
         channels: Sequence[int] = C2ST_DEFAULTS["channels"], batch_size: int = C2ST_DEFAULTS["batch_size"],
         lr: float = C2ST_DEFAULTS["lr"], max_epochs: int = C2ST_DEFAULTS["max_epochs"],
         patience: int = C2ST_DEFAULTS["patience"], name: str = "images") -> dict:
    """Held-out accuracy of a small CNN trained to tell ``images`` from ``authentic`` images.

    Parameters
    ----------
    images : array_like
        ``(N, S, S)`` binary square images, 1 = pore (e.g. a generator's samples).
    authentic : array_like
        ``(M, S, S)`` authentic images of the same size that the generator never saw (held-out
        images).
    seeds : int or sequence of int
        Classifier seeds (an int ``k``: seeds ``0 .. k-1``). Each has its own split,
        initialization and batch order.
    max_per_class : int
        Images per class at most; both classes get ``n = min(N, M, max_per_class)``.
    fractions : (float, float, float)
        Shares of each class for training, validation (early stopping) and test; they sum to 1.
    channels : sequence of int
        Widths of the network's blocks; ``S`` must be divisible by ``2 ** len(channels)``.
    batch_size, lr : int, float
        Adam's mini-batch and learning rate.
    max_epochs, patience : int
        Training stops after ``patience`` epochs without a higher validation accuracy, or after
        ``max_epochs``.
    name : str
        Name of ``images`` in error messages.

    Returns
    -------
    dict
        ``accuracy``: the mean test accuracy over seeds (0.5: indistinguishable; 1: every test
        image classified right); ``ci``: its 95 % confidence interval, ``accuracy ± t s / √k``
        over the ``k`` seeds with Student's ``t`` (``k - 1`` degrees of freedom), where ``s``
        is the larger of the seeds' standard deviation and the binomial standard deviation of
        one seed's test accuracy, ``√(p (1 - p) / n_test)`` (a few seeds can agree by chance;
        one seed gets the normal interval of that binomial), clipped to [0, 1]; ``std``: the seeds' standard
        deviation; ``accuracies``, ``epochs`` (epochs trained), ``best_epochs`` per seed;
        ``n_per_class``, ``n_train``, ``n_val``, ``n_test`` (images per split, both classes);
        ``seconds`` (wall clock); ``settings``.
    """
    from scipy import stats

    a, _ = as_binary_batch(images, ndim=2, name=name)
    b, _ = as_binary_batch(authentic, ndim=2, name="authentic")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{name} ({a.shape[1]}x{a.shape[2]} px) and authentic images "
                         f"({b.shape[1]}x{b.shape[2]} px) differ in size")
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"{name} are {a.shape[1]}x{a.shape[2]} px; the test needs square images (it shows "
                         "them under the 8 symmetries of the square)")
    channels = tuple(check_int(c, "every entry of channels") for c in channels)
    if not channels:
        raise ValueError("channels must name at least one block width")
    side = 2 ** len(channels)
    if a.shape[1] % side or a.shape[2] % side:
        raise ValueError(f"{a.shape[1]}x{a.shape[2]} px images do not divide into {len(channels)} halvings "
                         f"(sides must be multiples of {side}); pass fewer channels")
    seeds = list(range(check_int(seeds, "seeds"))) if isinstance(seeds, (int, np.integer)) else [
        check_int(s, "every seed", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one classifier seed")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive shares (train, validation, test) summing to 1, "
                         f"got {fractions}")
    max_per_class = check_int(max_per_class, "max_per_class")
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    lr = check_positive(lr, "lr")
    max_epochs, patience = check_int(max_epochs, "max_epochs"), check_int(patience, "patience")
    n = min(len(a), len(b), max_per_class)
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    n_split = (n_train, n_val, n - n_train - n_val)
    if min(n_split) < 2:
        raise ValueError(f"{n} images per class (the smaller of {name}: {len(a)}, authentic: {len(b)}) leave "
                         f"fewer than 2 per class for training, validation or test ({n_split}); the test needs "
                         "more images")
    t0 = time.perf_counter()
    runs = [_one_seed(a, b, s, n, fractions, channels, batch_size, lr, max_epochs, patience) for s in seeds]
    acc = np.array([r["accuracy"] for r in runs])
    k, mean = len(acc), float(acc.mean())
    n_test = 2 * n_split[2]
    sd = float(acc.std(ddof=1)) if k > 1 else math.nan
    spread = max(0.0 if k == 1 else sd, math.sqrt(mean * (1 - mean) / n_test))
    half = (float(stats.t.ppf(0.975, k - 1)) if k > 1 else 1.959964) * spread / math.sqrt(k)
    return {"accuracy": mean, "ci": [max(0.0, mean - half), min(1.0, mean + half)], "std": sd,
            "accuracies": acc.tolist(),
            "epochs": [r["epochs"] for r in runs], "best_epochs": [r["best_epoch"] for r in runs],
            "n_per_class": n, "n_train": 2 * n_split[0], "n_val": 2 * n_split[1], "n_test": n_test,
            "seconds": time.perf_counter() - t0,
            "settings": {"seeds": seeds, "max_per_class": max_per_class, "fractions": list(fractions),
                         "channels": list(channels), "batch_size": batch_size, "lr": lr, "max_epochs": max_epochs,
                         "patience": patience}}


def c2st_halves(authentic: ArrayLike, *, split_seed: int = 0, **options) -> dict:
    """The noise floor of :func:`c2st`: the test between two disjoint random halves of ``authentic``.

    ``split_seed`` seeds the split; ``options`` are those of :func:`c2st`. Each class holds at
    most half of the authentic images, so the floor's test has fewer images per class than a
    test of a generated set against all of them (its interval is wider).
    """
    b, _ = as_binary_batch(authentic, ndim=2, name="authentic")
    order = np.random.default_rng(check_int(split_seed, "split_seed", minimum=0)).permutation(len(b))
    half = len(b) // 2
    out = c2st(b[np.sort(order[half:2 * half])], b[np.sort(order[:half])], name="authentic half", **options)
    out["split_seed"] = split_seed
    return out
