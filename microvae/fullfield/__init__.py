"""Full-field reference solvers for the labelled properties (1 = pore, rock K1 = 4.3, G1 = 3.8,
non-diffusing rock, lengths in pixels): effective diffusivity (taufactor), elastic moduli
(FFT-preconditioned CG, periodic) and permeability (staggered-grid Stokes, CG with FFT
projection), in 2D and 3D, NumPy or torch input, CPU or CUDA. How far the strong-contrast
labels are from these: docs/labels_vs_fullfield/report.md.
"""
from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from .diffusion import solve_diffusivity
from .elasticity import isotropic_projection, solve_elastic_moduli
from .permeability import fluid_faces, percolates, solve_permeability

__all__ = ["fullfield_labels", "FULLFIELD_KEYS", "FULLFIELD_INVALID_FLAGS", "solve_diffusivity",
           "solve_elastic_moduli", "isotropic_projection", "solve_permeability", "percolates", "fluid_faces"]

#: Keys of :func:`fullfield_labels`: the columns of :func:`microvae.label` (ζ2, η2 are NaN:
#: a full-field solve has no three-point parameters), then per-axis values and solver records.
FULLFIELD_KEYS = ("porosity", "zeta2", "eta2", "K", "G", "E", "D", "k", "valid", "invalid",
                  "D_0", "D_1", "D_2", "k_0", "k_1", "k_2", "percolates", "iterations_D", "iterations_E",
                  "iterations_k", "residual_E", "residual_k", "seconds")

#: Bits of the ``invalid`` column of :func:`fullfield_labels`.
FULLFIELD_INVALID_FLAGS = {1: "diffusion solve not converged", 2: "elastic solve not converged",
                           4: "Stokes solve not converged"}


def fullfield_labels(images: ArrayLike | torch.Tensor, K1: float = 4.3, G1: float = 3.8, voxel_size: float = 1.0, *,
                     d: int | None = None, periodic: bool = False, ndim: int | None = None,
                     tol_elastic: float = 1e-2, tol_flow: float = 1e-2, penalty: float = 1e4,
                     device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                     progress: bool = False) -> dict[str, np.ndarray]:
    """Full-field De/D2, elastic moduli and permeability of each image or volume.

    Parameters
    ----------
    images : array_like
        ``(H, W)``, ``(N, H, W)`` 2D images (a genuinely 2D medium: 2D moduli, plane strain)
        or ``(N, D, H, W)`` volumes; binary, 1 = pore.
    K1, G1 : float
        Rock bulk and shear moduli (2D: in-plane moduli, as ``label(d=2)``).
    voxel_size : float
        Pixel length; k in its square.
    d : {None, 2, 3}
        Dimension of the medium; must match the images' (2D images: 2, volumes: 3). A
        full-field solve cannot give 3D properties from a 2D section.
    periodic : bool
        False (default; crops of real samples): the Stokes solve mirrors the image along the
        flow axis. The elastic solve is always periodic; the diffusion solve always has
        reservoir faces (taufactor).
    ndim : {None, 2, 3}
        Pass 3 for one volume ``(D, H, W)``.
    tol_elastic, tol_flow : float
        CG tolerances (relative preconditioned residual). On Berea crops 1e-2 changes E by
        3e-4 relative against 1e-4 (48³) and k by 6e-5 against 1e-3 (docs/properties.md §10).
    penalty : float
        Stokes no-slip penalty (k error ~ 1/penalty).
    device : str, optional
        torch device (``"cuda"`` for a GPU).
    dtype : torch dtype, optional
        Precision of the FFT solvers (default float64; float32 is ~1.6x faster on a CPU and
        changed E and k of Berea subvolumes by < 1e-5 relative).
    progress : bool
        Progress bar over images.

    Returns
    -------
    dict of str -> ndarray
        Keys :data:`FULLFIELD_KEYS`: ``E`` = E/E1, ``D`` = De/D2 (mean over axes), ``k`` (mean
        over axes), per-axis ``D_i``, ``k_i`` (NaN beyond the image's dimension),
        ``percolates`` (pore path joining opposite faces along every axis; D = 0, and with
        ``periodic=False`` k = 0, along an axis without one: an answer, not a failure),
        ``valid`` (every solve converged), ``invalid`` (bits of
        :data:`FULLFIELD_INVALID_FLAGS`), ``iterations_D`` (taufactor's, the most over the
        axes), ``iterations_E``, ``iterations_k`` (CG), ``residual_E``, ``residual_k`` (the
        largest final relative preconditioned CG residual over the load cases or axes; compare
        with ``tol_elastic``, ``tol_flow``) and the seconds per image.
    """
    import time

    from .._validate import as_binary_batch

    if isinstance(images, torch.Tensor):
        device = device or images.device
        images = images.detach().cpu().numpy()
    batch, nd = as_binary_batch(images, ndim=ndim)
    if d is not None and d != nd:
        raise ValueError(f"full-field labels of {nd}D images describe a {nd}D medium; got d={d} "
                         f"(2D images need d=2, volumes d=3)")
    dev = device or "cpu"
    dtype = dtype or torch.float64
    rows = {key: [] for key in FULLFIELD_KEYS}
    it = range(len(batch))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="full-field", unit="img")
    for i in it:
        t0 = time.perf_counter()
        img = batch[i]
        dif = solve_diffusivity(img, device=str(dev))
        ela = solve_elastic_moduli(torch.as_tensor(img, device=dev), K1, G1, tol=tol_elastic, dtype=dtype)
        flow = solve_permeability(torch.as_tensor(img, device=dev), periodic=periodic, penalty=penalty, tol=tol_flow,
                            voxel_size=voxel_size, dtype=dtype)
        rows["porosity"].append(float(img.mean()))
        rows["zeta2"].append(np.nan)
        rows["eta2"].append(np.nan)
        rows["K"].append(ela["K"])
        rows["G"].append(ela["G"])
        rows["E"].append(ela["E_rel"])
        rows["D"].append(float(dif["D"].mean()))
        rows["k"].append(float(flow["k"].mean()))
        bits = (0 if dif["converged"].all() else 1) | (0 if ela["converged"] else 2) | (0 if flow["converged"] else 4)
        rows["valid"].append(bits == 0)
        rows["invalid"].append(bits)
        for a in range(3):
            rows[f"D_{a}"].append(float(dif["D"][a]) if a < nd else np.nan)
            rows[f"k_{a}"].append(float(flow["k"][a]) if a < nd else np.nan)
        rows["percolates"].append(bool(dif["percolates"].all()))
        rows["iterations_D"].append(int(dif["iterations"].max()))
        rows["iterations_E"].append(ela["iterations"])
        rows["iterations_k"].append(flow["iterations"])
        rows["residual_E"].append(ela["residual"])
        rows["residual_k"].append(flow["residual"])
        rows["seconds"].append(time.perf_counter() - t0)
    return {key: np.asarray(val) for key, val in rows.items()}
