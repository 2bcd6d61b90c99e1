"""Figures written by the CLI and the study (matplotlib, atomic PNG writes).

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot: no backend is
selected and no global figure state is touched, so an interactive session that imports
microvae keeps its backend and its open figures.
"""
import io as _io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .io import atomic_write

__all__ = ["plot_s2", "save_figure", "mosaic", "subplots"]

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: "Figure", path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 120) -> Path:
    """Render ``fig`` to PNG in memory (the Agg renderer of this figure only), then write it atomically."""
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()), overwrite=overwrite)


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             **kwargs: Any) -> tuple["Figure", Any]:
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot's global state.

    The figure is not registered with pyplot (no backend is selected, no figure is left
    open); write it with :func:`save_figure`. ``kwargs`` go to :meth:`Figure.subplots
    <matplotlib.figure.Figure.subplots>` (``squeeze``, ``sharex``, ...).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def plot_s2(path: str | os.PathLike, r: ArrayLike, curves: ArrayLike | list, labels: list[str] | None = None, *,
            overwrite: bool = False) -> Path:
    """Mean radial S2 with a ±1 std band, one line per curve set.

    ``curves`` is ``(N, R)`` or a list of such arrays (one per ``labels`` entry).
    """
    sets = curves if isinstance(curves, (list, tuple)) else [curves]
    labels = labels or [f"mean of {len(c)} images" for c in sets]
    fig, ax = subplots(figsize=(5, 3.5))
    for c, lab in zip(sets, labels):
        c = np.asarray(c)
        mean, std = c.mean(axis=0), c.std(axis=0)
        ax.plot(r, mean, label=lab)
        ax.fill_between(r, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("r (pixels × voxel size)")
    ax.set_ylabel("S2(r)")
    ax.legend()
    return save_figure(fig, path, overwrite=overwrite)


def mosaic(path: str | os.PathLike, images: ArrayLike, *, ncols: int = 8, title: str | None = None,
           overwrite: bool = False) -> Path:
    """Grid of binary (or [0, 1] grayscale) images, pore = black."""
    images = np.asarray(images)
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(1.2 * ncols, 1.2 * nrows + (0.3 if title else 0)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, im in zip(axes.ravel(), images):
        ax.imshow(1 - im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, overwrite=overwrite)
