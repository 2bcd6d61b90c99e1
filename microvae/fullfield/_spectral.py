"""Shared pieces of the FFT solvers: the rotated-grid gradient symbol, Fourier-space inner
products and a batched preconditioned conjugate-gradient loop.

Both the elasticity and the Stokes solver put the unknown field (displacement, velocity) on
the voxel corners (nodes) and evaluate its gradient at the voxel centres by averaging the
differences over the voxel's edges (Willot 2015, "rotated" scheme; the trilinear hexahedral
element with one-point integration). In Fourier space this gradient is the symbol

    k_j(ξ) = (e^{iξ_j} - 1) Π_{m≠j} (1 + e^{iξ_m}) / 2,

so the operators stay diagonal per frequency (FFT-preconditioned CG as in Zeman et al. 2010,
de Geus et al. 2017), while a void or solid voxel acts locally, without the Gibbs ringing of
the continuous symbol iξ at pixelated interfaces.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

__all__ = ["as_tensor", "rotated_gradient", "half_spectrum_weights", "pcg"]


def as_tensor(image: ArrayLike | torch.Tensor, device: str | torch.device | None = None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A 2D or 3D binary image (NumPy or torch, 1 = pore) as a torch tensor of ``dtype`` on
    ``device`` (default: the tensor's, else CPU); ``ValueError`` for another shape or values."""
    if isinstance(image, torch.Tensor):
        device = image.device if device is None else device
        img = image.to(device=device, dtype=dtype)
    else:
        img = torch.as_tensor(np.asarray(image), dtype=dtype, device=device)
    if img.ndim not in (2, 3) or img.numel() == 0:
        raise ValueError(f"image must be a non-empty 2D or 3D array, got shape {tuple(img.shape)}")
    if not bool(((img == 0) | (img == 1)).all()):
        raise ValueError("image must be binary with 1 = pore and 0 = solid")
    return img


def rotated_gradient(shape: Sequence[int], device: str | torch.device | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Symbols ``k_j`` of the rotated-grid gradient on the ``rfftn`` half spectrum.

    Returns a complex tensor ``(d,) + rfft shape``; node field -> voxel-centre derivative.
    """
    d = len(shape)
    ctype = torch.complex128 if dtype == torch.float64 else torch.complex64
    axes = []
    for a, n in enumerate(shape):
        freq = torch.fft.rfftfreq(n, device=device, dtype=dtype) if a == d - 1 else \
            torch.fft.fftfreq(n, device=device, dtype=dtype)
        view = [1] * d
        view[a] = -1
        axes.append(torch.exp(2j * math.pi * freq.to(ctype)).reshape(view))
    spectrum = [n // 2 + 1 if a == d - 1 else n for a, n in enumerate(shape)]
    out = torch.empty((d, *spectrum), dtype=ctype, device=device)
    for j in range(d):
        sym = axes[j] - 1
        for m in range(d):
            if m != j:
                sym = sym * (1 + axes[m]) / 2
        out[j] = sym.expand(spectrum)
    return out


def half_spectrum_weights(shape: Sequence[int], device: str | torch.device | None = None,
                          dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Weights making ``sum(w * conj(a) * b).real`` proportional to the real-space inner
    product of two real fields from their ``rfftn`` half spectra (the columns other than 0 and
    Nyquist stand for two conjugate frequencies each)."""
    n = shape[-1]
    w = torch.full((n // 2 + 1,), 2.0, device=device, dtype=dtype)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def _dot(a, b, w):
    """Batched real inner products over all but the first axis."""
    return (w * (a.conj() * b).real).flatten(1).sum(1)


def pcg(apply: Callable[[torch.Tensor], torch.Tensor], precondition: Callable[[torch.Tensor], torch.Tensor],
        rhs: torch.Tensor, weights: torch.Tensor, *, tol: float, max_iter: int, progress: bool = False,
        desc: str = "CG") -> tuple[torch.Tensor, dict]:
    """Batched preconditioned conjugate gradients in Fourier space.

    Parameters
    ----------
    apply, precondition : callable
        ``(B, ...) complex -> (B, ...) complex``; symmetric positive (semi-)definite.
    rhs : Tensor ``(B, ...)``
    weights : Tensor
        Half-spectrum weights (broadcast against the last axis).
    tol : float
        Stop when every right-hand side has ``sqrt(rᴴMr / bᴴMb) < tol`` (preconditioned
        residual norm, relative).
    max_iter : int
    progress : bool
        tqdm bar over the iterations, titled ``desc``.

    Returns
    -------
    x : Tensor
    info : dict
        ``iterations``, ``residual`` (largest relative preconditioned residual) and
        ``converged``.
    """
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=desc, unit="it", total=max_iter, leave=False)
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = precondition(r)
    p = z.clone()
    rz = _dot(r, z, weights)
    norm0 = rz.clamp_min(torch.finfo(rz.dtype).tiny)
    shape = (-1,) + (1,) * (rhs.ndim - 1)
    residual = float(torch.sqrt(rz / norm0).max())
    it = 0
    while it < max_iter and residual >= tol:
        q = apply(p)
        pq = _dot(p, q, weights)
        active = rz / norm0 >= tol ** 2
        alpha = torch.where(active & (pq > 0), rz / torch.where(pq > 0, pq, 1), 0)
        x = x + alpha.reshape(shape) * p
        r = r - alpha.reshape(shape) * q
        z = precondition(r)
        rz_new = _dot(r, z, weights)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1), 0)
        p = z + beta.reshape(shape) * p
        rz = rz_new
        it += 1
        residual = float(torch.sqrt(rz.clamp_min(0) / norm0).max())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return x, {"iterations": it, "residual": residual, "converged": residual < tol}
