"""Per-image descriptors of an image set, computed once for any number of comparisons.

:func:`describe` computes, for every image of a set, the curves of :data:`CURVES` (S2 from
:mod:`microvae.correlations`, the lineal path, chord lengths and cluster function of
:mod:`microvae.morphology`), the scalars of :data:`SCALARS` and the frequencies of local pixel
configurations, and holds them in a :class:`Descriptors`.

Conventions: binary images, 1 = pore; lengths in pixels; densities per pixel.
"""
import numpy as np
from numpy.typing import ArrayLike

from .. import morphology as _m
from .._validate import as_binary_batch

__all__ = ["Descriptors", "describe", "CURVES", "SCALARS"]

# Curve name -> (label of the x axis, description).
CURVES = {
    "s2": ("r", "two-point function S2(r), radial, periodic"),
    "lineal_path_pore": ("r", "lineal path L(r) of the pore phase, along the axes"),
    "lineal_path_solid": ("r", "lineal path L(r) of the solid phase, along the axes"),
    "chord_pore": ("chord length", "chord-length probability of the pore phase (interior chords)"),
    "chord_solid": ("chord length", "chord-length probability of the solid phase (interior chords)"),
    "cluster": ("r", "two-point cluster function C2(r) of the pore phase, along the axes"),
}
SCALARS = {
    "specific_surface": "interface per pixel, pixel-face count (morphology.specific_surface 'count')",
    "specific_surface_s2": "interface per pixel from S2'(0) (morphology.specific_surface 's2')",
    "euler_density": "Euler characteristic of the pore phase per pixel",
    "perimeter_density": "pore perimeter per pixel (Crofton; surface area per voxel in 3D)",
    "cluster_density": "pore clusters per pixel",
    "largest_cluster_fraction": "largest pore cluster / pore pixels",
    "percolation_fraction": "fraction of the axes along which a pore cluster spans the image",
    "mean_chord_pore": "mean interior chord length of the pore phase, pixels",
    "mean_chord_solid": "mean interior chord length of the solid phase, pixels",
    "pore_solidity": "pore convexity: area-weighted mean solidity (area / convex hull) of the pore clusters of at "
                     "least 10 px (morphology.pore_solidity; 2D only, NaN for volumes)",
}


class Descriptors:
    """Per-image descriptors of one image set (from :func:`describe`).

    Attributes
    ----------
    images : ndarray of uint8
        The validated batch ``(N,) + spatial``.
    ndim, r_max, connectivity : int
        Settings the descriptors were computed with.
    porosity : ndarray, shape ``(N,)``
    curves : dict of ndarray
        :data:`CURVES` name -> ``(N, len(x))``; the x values in :attr:`x`.
    scalars : dict of ndarray
        :data:`SCALARS` name -> ``(N,)``.
    patterns : ndarray
        ``(N, K)``: frequencies of the binary configurations of 3x3 windows (2D) or 2x2x2
        windows (3D) per image (:func:`microvae.morphology.pattern_histogram`).
    """

    def __init__(self, images: np.ndarray, ndim: int, r_max: int, connectivity: int, porosity: np.ndarray,
                 curves: dict[str, np.ndarray], scalars: dict[str, np.ndarray], patterns: np.ndarray):
        self.images, self.ndim, self.r_max, self.connectivity = images, ndim, r_max, connectivity
        self.porosity, self.curves, self.scalars, self.patterns = porosity, curves, scalars, patterns

    def __len__(self):
        return len(self.images)

    @property
    def x(self) -> dict[str, np.ndarray]:
        """x values of each curve: ``r = 0..r_max``, chord lengths ``1..max side``."""
        lengths = np.arange(1, max(self.images.shape[1:]) + 1)
        return {k: (lengths if k.startswith("chord") else np.arange(self.r_max + 1)) for k in CURVES}

    def subset(self, index: ArrayLike) -> "Descriptors":
        """The descriptors of ``images[index]``."""
        idx = np.asarray(index)
        return Descriptors(self.images[idx], self.ndim, self.r_max, self.connectivity, self.porosity[idx],
                           {k: v[idx] for k, v in self.curves.items()},
                           {k: v[idx] for k, v in self.scalars.items()}, self.patterns[idx])

    def __repr__(self):
        return (f"Descriptors(n={len(self)}, shape={self.images.shape[1:]}, r_max={self.r_max}, "
                f"connectivity={self.connectivity})")


def describe(images: ArrayLike, *, r_max: int | None = None, connectivity: int | None = None, ndim: int | None = None,
             name: str = "images") -> Descriptors:
    """Per-image descriptors of an image set, computed once for any number of comparisons.

    Parameters
    ----------
    images : array_like
        Binary ``(N, H, W)`` or ``(N, D, H, W)`` (``ndim=3`` for one volume), 1 = pore.
    r_max : int, optional
        Largest distance of the S2, L and C2 curves, pixels (default: half the smallest side).
    connectivity : int, optional
        Pore connectivity for C2, the cluster statistics and the Euler characteristic: 4
        (default) or 8 in 2D, 6 (default) or 26 in 3D.
    ndim : {None, 2, 3}
    name : str
        Name of the set in error messages.

    Returns
    -------
    Descriptors
    """
    from ..correlations import s2

    batch, nd = as_binary_batch(images, ndim=ndim, name=name)
    shape = batch.shape[1:]
    r_max = _m.check_r_max(shape, r_max)
    if r_max > min(shape) // 2:
        raise ValueError(f"r_max must be at most {min(shape) // 2} (half the smallest side; S2 is periodic) "
                         f"for {name} of shape {shape}, got {r_max}")
    connectivity = _m.check_connectivity(nd, connectivity)
    found = _m.descriptors(batch, r_max, connectivity=connectivity, ndim=nd)
    curves = {"s2": s2(batch, r_max=r_max, ndim=nd)}
    curves.update((k, found[k]) for k in ("lineal_path_pore", "chord_pore", "lineal_path_solid", "chord_solid",
                                          "cluster"))
    scalars = {k: found[k] for k in SCALARS}
    porosity = batch.reshape(len(batch), -1).mean(axis=1)
    return Descriptors(batch, nd, r_max, connectivity, porosity, curves, scalars, _m.pattern_histogram(batch, ndim=nd))
