"""Effective elastic moduli of rock with empty pores: FFT-preconditioned conjugate gradients
on the periodic cell (Fourier–Galerkin; Zeman et al. 2010, de Geus et al. 2017).

Unknown: the periodic displacement fluctuation u on the voxel corners; strain at the voxel
centres by the rotated-grid gradient (:mod:`._spectral`). For each macroscopic strain E of a
Mandel basis, CG solves ``Bᴴ C (E + B u) = 0`` with the rock's homogeneous stiffness
``(Bᴴ C_rock B)^{-1}`` (one d×d block per frequency) as preconditioner; the average stress
gives a column of the homogenized stiffness. Void voxels have zero stiffness: the system is
then only positive semi-definite (corners surrounded by void carry no energy), but the
right-hand side lies in its range and CG converges on it; ``void_stiffness`` can add a small
regularizing stiffness (a fraction of the rock's) if ever needed. Plain Moulinec–Suquet
fixed-point iteration would not converge with voids.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._validate import check_positive
from ._spectral import as_tensor, half_spectrum_weights, pcg, rotated_gradient

__all__ = ["solve_elastic_moduli", "isotropic_projection"]


def _mandel_pairs(d):
    normal = [(i, i) for i in range(d)]
    shear = [(1, 2), (0, 2), (0, 1)] if d == 3 else [(0, 1)]
    return normal + shear


def isotropic_projection(C: ArrayLike, d: int) -> tuple[float, float]:
    """Bulk and shear moduli ``(K, G)`` of the isotropic part of a Mandel stiffness matrix.

    ``K = C_iijj / d²`` and ``G = (C_ijij − C_iijj/d) / (d(d+1) − 2)``: the projection on the
    isotropic tensors in the Frobenius inner product (3D: ``/10``; 2D: ``/4``).
    """
    C = np.asarray(C, dtype=float)
    ii_jj = C[:d, :d].sum()
    ij_ij = np.trace(C)
    return ii_jj / d ** 2, (ij_ij - ii_jj / d) / (d * (d + 1) - 2)


def _youngs(K, G, d):
    return 9 * K * G / (3 * K + G) if d == 3 else 4 * K * G / (K + G)


def solve_elastic_moduli(image: ArrayLike | torch.Tensor, K1: float = 4.3, G1: float = 3.8, *,
                         void_stiffness: float = 0.0, tol: float = 1e-5, max_iter: int = 2000,
                         device: str | torch.device | None = None, dtype: torch.dtype = torch.float64,
                         progress: bool = False) -> dict:
    """Homogenized stiffness of a binary image (1 = pore, empty) under periodic boundaries.

    Parameters
    ----------
    image : array_like or Tensor
        ``(H, W)`` or ``(D, H, W)``, 1 = pore (void), 0 = rock. Periodic in every axis.
    K1, G1 : float
        Rock bulk and shear moduli (GPa). In 2D these are the in-plane (plane-strain) moduli,
        as in :func:`microvae.label` with ``d=2``: the 2D problem is plane strain of a 3D rock
        with bulk modulus ``K1 - G1/3`` and shear modulus ``G1``.
    void_stiffness : float
        Stiffness of the pore phase as a fraction of the rock's (default 0: true voids).
    tol : float
        Relative preconditioned residual at which CG stops (every load case).
    max_iter : int
        CG iteration limit; ``converged`` is False if it is reached.
    device : str or torch.device, optional
        Default: the tensor's device, else CPU.
    dtype : torch.float64 or torch.float32
    progress : bool
        tqdm bar over CG iterations.

    Returns
    -------
    dict
        ``C`` (Mandel stiffness matrix, units of K1), ``K``, ``G`` and ``E`` of its isotropic
        projection, ``E_rel`` (E/E1, E1 the rock's in the same dimension), ``iterations``,
        ``residual``, ``converged``, ``seconds``.
    """
    t0 = time.perf_counter()
    img = as_tensor(image, device=device, dtype=dtype)
    d = img.ndim
    check_positive(K1, "K1")
    check_positive(G1, "G1")
    shape = tuple(img.shape)
    dev = img.device
    pairs = _mandel_pairs(d)
    m = len(pairs)
    lam1, mu1 = (K1 - 2 * G1 / 3, G1) if d == 3 else (K1 - G1, G1)
    scale = 1 - (1 - void_stiffness) * img  # 1 in rock, void_stiffness in pores
    lam, mu = lam1 * scale, mu1 * scale

    k = rotated_gradient(shape, device=dev, dtype=dtype)
    root2 = math.sqrt(2.0)
    # B: displacement (d) -> Mandel strain (m), per frequency; (m, d, ...).
    B = torch.zeros((m, d) + k.shape[1:], dtype=k.dtype, device=dev)
    for a, (i, j) in enumerate(pairs):
        if i == j:
            B[a, i] = k[i]
        else:
            B[a, i] = k[j] / root2
            B[a, j] = k[i] / root2
    Bh = B.conj()
    w = half_spectrum_weights(shape, device=dev, dtype=dtype)
    dims = tuple(range(-d, 0))
    trace_rows = torch.zeros(m, dtype=dtype, device=dev)
    trace_rows[:d] = 1

    def stress(strain):  # (n, m, *shape) real Mandel strain -> stress
        tr = strain[:, :d].sum(1, keepdim=True)
        return lam * tr * trace_rows.reshape(1, m, *[1] * d) + 2 * mu * strain

    def strain_of(u_hat):  # (n, d, *spec) -> (n, m, *shape)
        return torch.fft.irfftn(torch.einsum("ad...,nd...->na...", B, u_hat), s=shape, dim=dims)

    def forces(sig):  # (n, m, *shape) -> (n, d, *spec)
        return torch.einsum("ad...,na...->nd...", Bh, torch.fft.rfftn(sig, dim=dims))

    # Preconditioner: inverse of the rock's homogeneous operator, zero on its null modes
    # (the mean and the rotated scheme's hourglass frequencies, where k = 0).
    c0 = torch.zeros((m, m), dtype=dtype, device=dev)
    c0[:d, :d] = lam1
    c0 += 2 * mu1 * torch.eye(m, dtype=dtype, device=dev)
    K0 = torch.einsum("ad...,ab,be...->...de", Bh, c0.to(k.dtype), B)
    null = (k.abs() ** 2).sum(0) < 1e-12
    K0[null] = torch.eye(d, dtype=k.dtype, device=dev)
    M = torch.linalg.inv(K0)
    M[null] = 0

    def precondition(r):
        return torch.einsum("...de,ne...->nd...", M, r)

    def apply(u_hat):
        return forces(stress(strain_of(u_hat)))

    E = torch.eye(m, dtype=dtype, device=dev).reshape(m, m, *[1] * d).expand(m, m, *shape)
    rhs = -forces(stress(E))
    u_hat, info = pcg(apply, precondition, rhs, w, tol=tol, max_iter=max_iter, progress=progress,
                       desc="elasticity CG")
    sig = stress(E + strain_of(u_hat)).mean(dim=dims)  # (load case, component)
    C = sig.T.cpu().numpy()
    C = (C + C.T) / 2
    K, G = isotropic_projection(C, d)
    E_eff = _youngs(K, G, d)
    return {"C": C, "K": float(K), "G": float(G), "E": float(E_eff), "E_rel": float(E_eff / _youngs(K1, G1, d)),
            **info, "seconds": time.perf_counter() - t0}
