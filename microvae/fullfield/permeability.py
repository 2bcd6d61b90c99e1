"""Permeability per axis: periodic Stokes flow on the voxel grid (staggered finite
differences), solved by conjugate gradients on divergence-free fields with FFT projection.

Discretization (the MAC grid of digital-rock Stokes solvers): velocity component j lives on
the voxel faces normal to axis j; a face between two pore voxels is fluid, any other face is
no-slip (held at zero by a penalty α). The tangential no-slip wall lies half-way between a
fluid face and its solid neighbour (mirror ghost value −u), which adds 1 to the diagonal per
solid tangential neighbour. With unit viscosity and a unit body force (pressure gradient)
along axis i, the velocity minimizes ½ uᴴ(L + c)u − fᵀu over fields with zero discrete
divergence, L the (2d+1)-point Laplacian and c the diagonal wall term (α on solid faces).
The staggered divergence has the symbol ``1 − e^{−iξ_j}``, so the Leray projector P is exact
and diagonal per frequency, and CG runs on ``P(L + c)P`` with the projected Jacobi
preconditioner ``P (2d + c)⁻¹ P`` (the pore space is narrow, so the local diagonal, not the
Laplacian's long-wave part, sets the conditioning). The Darcy velocity is the mean over all
faces of the fluid-face velocity: ``k_ii = <u_i>`` in pixel², times ``voxel_size²``.

Resolution (exact for the discrete slit, tested): a slit h voxels wide gives
``k = φ (h²/12 + 1/6)``, i.e. +2/h² relative to the continuum; a one-voxel throat conducts
(``φ/4`` per voxel instead of ``φ/12``). The penalty leaks a flux of order 1/α through solid
faces (not counted in k).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._validate import check_positive
from ._spectral import as_tensor, half_spectrum_weights, pcg

__all__ = ["solve_permeability", "fluid_faces", "percolates"]


def fluid_faces(pore: torch.Tensor) -> torch.Tensor:
    """``(d,) + shape`` mask of faces between two pore voxels (face j of voxel n: between n and
    n + e_j, periodic)."""
    return torch.stack([pore * torch.roll(pore, -1, dims=j) for j in range(pore.ndim)])


def percolates(image: ArrayLike | torch.Tensor, axis: int) -> bool:
    """Whether the pore space (1 = pore, face-connected) links the two faces normal to ``axis``."""
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(image) > 0)
    first = np.unique(np.take(labels, 0, axis=axis))
    last = np.unique(np.take(labels, -1, axis=axis))
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


def solve_permeability(image: ArrayLike | torch.Tensor, *, axes: Sequence[int] | None = None, periodic: bool = True,
                       penalty: float = 1e4, tol: float = 1e-3, max_iter: int = 3000, voxel_size: float = 1.0,
                       device: str | torch.device | None = None, dtype: torch.dtype = torch.float64,
                       progress: bool = False) -> dict:
    """Permeability of a periodic binary image (1 = pore) along each axis.

    Parameters
    ----------
    image : array_like or Tensor
        ``(H, W)`` or ``(D, H, W)``, 1 = pore, 0 = solid; periodic in every axis.
    axes : sequence of int, optional
        Flow directions (default: all).
    periodic : bool
        True: the image is one period of a periodic medium. False (crops of a larger sample):
        the image is mirrored along the flow axis, so the inlet and outlet faces meet their own
        reflection instead of the opposite face (which would open or close paths that the
        sample does not have); the transverse axes stay periodic. Costs twice the voxels and
        one solve per axis.
    penalty : float
        α holding the solid faces at zero velocity (leak ~ 1/α).
    tol : float
        Relative preconditioned residual at which CG stops (every axis).
    max_iter : int
    voxel_size : float
        Pixel length; k is reported in its square.
    device, dtype, progress :
        As :func:`~microvae.fullfield.solve_elastic_moduli`.

    Returns
    -------
    dict
        ``k`` (array, one value per axis in ``axes``, (pixel × voxel_size)²), ``axes``,
        ``percolates`` (per axis: a face-connected pore path joins the two faces normal to it
        inside the image), ``iterations``, ``residual``, ``converged``, ``seconds``. With
        ``periodic=False`` an axis without such a path has k = 0 (what the solve finds there is
        the penalty leak, or a path made by the periodic wrap of the transverse axes, which a
        crop does not have); with ``periodic=True`` paths through the periodic boundary count
        and k is the solve's value (~1/α leak where there is none).
    """
    t0 = time.perf_counter()
    img = as_tensor(image, device=device, dtype=dtype)
    d = img.ndim
    check_positive(penalty, "penalty")
    check_positive(voxel_size, "voxel_size")
    axes = tuple(range(d)) if axes is None else tuple(int(a) for a in axes)
    if not axes or any(a < 0 or a >= d for a in axes):
        raise ValueError(f"axes must lie in 0..{d - 1}, got {axes}")
    if periodic:
        out = _solve(img, axes, penalty, tol, max_iter, progress, sealed=False)
    else:
        runs = [_solve(torch.cat([img, torch.flip(img, dims=(a,))], dim=a), (a,), penalty, tol, max_iter, progress,
                       sealed=True) for a in axes]
        out = {"k": np.concatenate([r["k"] for r in runs]),
               "percolates": np.concatenate([r["percolates"] for r in runs]),
               "iterations": max(r["iterations"] for r in runs), "residual": max(r["residual"] for r in runs),
               "converged": all(r["converged"] for r in runs)}
    out["k"] = out["k"] * voxel_size ** 2
    return {"axes": axes, **out, "seconds": time.perf_counter() - t0}


def _solve(img, axes, penalty, tol, max_iter, progress, sealed):
    d, dtype = img.ndim, img.dtype
    shape = tuple(img.shape)
    dev = img.device
    dims = tuple(range(-d, 0))
    fluid = fluid_faces(img)
    # Wall term: α on solid faces; +1 per solid tangential neighbour on fluid faces.
    wall = torch.zeros_like(fluid)
    for j in range(d):
        for m in range(d):
            if m != j:
                for step in (1, -1):
                    wall[j] += 1 - torch.roll(fluid[j], step, dims=m)
    c = torch.where(fluid > 0, wall, torch.full_like(wall, penalty))
    jacobi = 1 / (2 * d + c)
    freqs = [(torch.fft.rfftfreq(n, device=dev, dtype=dtype) if a == d - 1 else
              torch.fft.fftfreq(n, device=dev, dtype=dtype)).reshape([-1 if b == a else 1 for b in range(d)])
             for a, n in enumerate(shape)]
    k = torch.stack(torch.broadcast_tensors(*[1 - torch.exp(-2j * torch.pi * f) for f in freqs]))
    lap = (k.abs() ** 2).sum(0)
    kn = torch.where(lap > 1e-12, k / torch.where(lap > 1e-12, lap, 1).sqrt(), 0)
    w = half_spectrum_weights(shape, device=dev, dtype=dtype)

    def project(v):  # Leray projection: remove the component along conj(k)
        return v - kn.conj() * (kn * v).sum(1, keepdim=True)

    def real_space(v, factor):
        return torch.fft.rfftn(factor * torch.fft.irfftn(v, s=shape, dim=dims), dim=dims)

    def apply(v):
        return project(lap * v + real_space(v, c))

    def precondition(r):
        return project(real_space(r, jacobi))

    spans = [percolates(img.cpu().numpy(), a) for a in axes]
    n = len(axes)
    force = torch.zeros((n, d, *shape), dtype=dtype, device=dev)
    for b, a in enumerate(axes):
        force[b, a] = 1.0
    rhs = project(torch.fft.rfftn(force, dim=dims))
    v_hat, info = pcg(apply, precondition, rhs, w, tol=tol, max_iter=max_iter, progress=progress,
                       desc="Stokes CG")
    u = torch.fft.irfftn(v_hat, s=shape, dim=dims)
    k_axes = np.array([float((fluid[a] * u[b, a]).mean()) if ok or not sealed else 0.0
                       for b, (a, ok) in enumerate(zip(axes, spans))])
    return {"k": k_axes, "percolates": np.array(spans), **info}
