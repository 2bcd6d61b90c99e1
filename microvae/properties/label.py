"""``label``: porosity, three-point parameters and strong-contrast properties of image sets."""
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .._tensor import as_binary_tensor, is_tensor
from .._validate import as_binary_batch, check_d, check_int, check_positive
from .strong_contrast import diffusivity, elastic_moduli, permeability, validity_flags, youngs_modulus
from .harmonic import three_point_parameters

if TYPE_CHECKING:
    import torch

__all__ = ["label", "LABEL_KEYS"]

#: Keys of the mapping returned by :func:`label`, in column order.
LABEL_KEYS = ("porosity", "zeta2", "eta2", "K", "G", "E", "D", "k", "valid", "invalid")

_BATCH_PIXELS = 2 ** 22


def _batches(images, ndim, batch_size):
    """Yield ``(uint8 batch, spatial ndim, number of images)`` in batches of bounded size.

    Zarr/HDF5 arrays and other stores (anything with ``shape`` and slicing that is not a
    NumPy array) are read one batch at a time, never whole.
    """
    stored = (not isinstance(images, np.ndarray) and not is_tensor(images) and hasattr(images, "shape")
              and hasattr(images, "__getitem__"))
    if stored:
        shape = tuple(images.shape)
        nd = len(shape) - 1
        if nd not in (2, 3) or (ndim is not None and nd != ndim):
            raise ValueError(f"a stored array must have shape (N, H, W) or (N, D, H, W); got {shape}")
        count, spatial = shape[0], shape[1:]

        def get(i, j):
            return as_binary_batch(np.asarray(images[i:j]), ndim=nd)[0]
    else:
        batch, nd = as_binary_tensor(images, ndim) if is_tensor(images) else as_binary_batch(images, ndim=ndim)
        count, spatial = len(batch), tuple(batch.shape[1:])

        def get(i, j):
            return batch[i:j]
    step = batch_size or max(1, _BATCH_PIXELS // int(np.prod(spatial)))
    for start in range(0, count, step):
        yield get(start, start + step), nd, count


def label(images: "ArrayLike | torch.Tensor", d: int = 3, K1: float = 4.3, G1: float = 3.8, voxel_size: float = 1.0,
          *, periodic: bool = True, margin: int | None = None, extrapolate: bool = True, harmonics: int | None = None,
          ndim: int | None = None, batch_size: int | None = None, workers: int | None = None, progress: bool = False,
          method: str = "strong_contrast") -> dict[str, Any]:
    """Physics-based labels of binary microstructures (1 = pore), one value per image.

    For each image: porosity φ2; the pore phase's three-point parameters ζ2, η2 (exact FFT
    harmonic method, :func:`~microvae.properties.three_point_parameters`); effective bulk and
    shear moduli of the rock with empty pores (third-order strong contrast); Young's modulus
    and diffusivity rescaled by the rock's and the pore's; and the two-point void bound on the
    permeability. Formulas and the corrections to the paper: PHYSICS.md and
    :mod:`microvae.properties.strong_contrast`.

    Parameters
    ----------
    images : array_like
        ``(H, W)``, ``(N, H, W)`` 2D images or ``(N, D, H, W)`` volumes; binary, 1 = pore. Zarr
        or HDF5 arrays (anything with ``shape`` and slicing) are read batch by batch. A torch
        tensor (any device): the image work, porosity, S2, ζ2 and η2, runs with ``torch.fft`` on
        its device (float32 tensors in float32). The strong-contrast formulas (moduli, E, D, k
        and the validity flags) then run in NumPy on the host, on small per-image arrays: φ2,
        ζ2, η2 and the radial S2 curve of each batch are copied to the host as float64, and the
        labels are copied back as tensors on the tensor's device (float64, ``valid`` bool,
        ``invalid`` int64).
    d : {3, 2}
        Dimension of the medium the formulas describe. ``3`` (default): 2D images are planar
        sections of an isotropic 3D material (the paper's setting; S2 and S3 of a section are
        the 3D functions), volumes are 3D. ``2``: a genuinely two-dimensional medium.
    K1, G1 : float
        Bulk and shear moduli of the rock (default 4.3 and 3.8 GPa).
    voxel_size : float
        Pixel length; the permeability is reported in its square.
    periodic, margin, extrapolate, harmonics :
        Estimator options of :func:`~microvae.properties.three_point_parameters`;
        ``periodic`` also selects the S2 estimator of the permeability. Use
        ``periodic=False`` for crops of larger samples.
    ndim : {None, 2, 3}
        Spatial dimension; pass 3 for a single volume ``(D, H, W)``.
    batch_size : int, optional
        Images per batch (default: about 4 million pixels per batch).
    workers : int
        FFT threads (default: :func:`microvae.get_threads`; ``-1``: all cores).
    progress : bool
        Show a progress bar (tqdm).
    method : {"strong_contrast", "fullfield"}
        ``"fullfield"``: solve for De/D2, the moduli and k on each image instead
        (:func:`microvae.fullfield.fullfield_labels`; minutes per 64³ volume on one CPU core;
        how far the two are apart: docs/labels_vs_fullfield/report.md). 2D images are then a
        2D medium (``d=2``), volumes 3D (``d=3``); ``periodic=False`` mirrors crops for the
        Stokes solve; ``margin``, ``extrapolate``, ``harmonics``, ``workers`` do not apply.
        Returns :data:`~microvae.fullfield.FULLFIELD_KEYS` (ζ2, η2 NaN; per-axis D and k).

    Returns
    -------
    dict of str -> ndarray
        Equal-length arrays, in the order of :data:`LABEL_KEYS`:

        - ``porosity``: φ2;
        - ``zeta2``, ``eta2``: three-point parameters of the pore phase;
        - ``K``, ``G``: effective bulk and shear moduli, units of ``K1`` (2D moduli for d = 2);
        - ``E``: Young's modulus over the rock's, E/E1;
        - ``D``: diffusivity over the pore's, De/D2 (non-conducting rock);
        - ``k``: permeability bound, (pixel × ``voxel_size``)²; the S2 integral is cut at half
          the smallest side;
        - ``valid``: False where a formula leaves its range (a single phase, ζ2 or η2 outside
          [0, 1], or for d = 2 a connected pore phase, ``ζ2 >= 1/2`` or ``ζ2 + η2 >= 1``,
          where the moduli are reported as 0; ``k <= 0``, or S2 at φ2² within the first pixel,
          where k is unresolved). Never a silent negative modulus or permeability;
        - ``invalid``: why, as bits of
          :data:`~microvae.properties.strong_contrast.INVALID_FLAGS` (0 when valid; text by
          :func:`~microvae.properties.strong_contrast.invalid_reasons`).
    """
    check_d(d)
    check_positive(voxel_size, "voxel_size")
    if method == "fullfield":
        from ..fullfield import fullfield_labels

        return fullfield_labels(images, K1, G1, voxel_size, d=d, periodic=periodic, ndim=ndim, progress=progress)
    if method != "strong_contrast":
        raise ValueError(f"method must be 'strong_contrast' or 'fullfield', got {method!r}")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size")
    parts = {key: [] for key in LABEL_KEYS}
    bar = None
    for batch, nd, count in _batches(images, ndim, batch_size):
        if progress and bar is None:
            from tqdm import tqdm

            bar = tqdm(total=count, desc="label", unit="img")
        out = _label_batch(batch, nd, d, K1, G1, voxel_size, periodic, margin, extrapolate, harmonics, workers)
        for key in LABEL_KEYS:
            parts[key].append(out[key])
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    out = {key: np.concatenate(parts[key]) for key in LABEL_KEYS}
    if is_tensor(images):
        import torch

        return {key: torch.as_tensor(value, device=images.device) for key, value in out.items()}
    return out


def _host(values):
    """Per-image results of the torch path as NumPy: the image work (S2, ζ2, η2) ran on the
    tensor's device; the closed-form formulas need only these few numbers per image."""
    return values.detach().cpu().double().numpy() if is_tensor(values) else values


def _label_batch(batch, nd, d, K1, G1, voxel_size, periodic, margin, extrapolate, harmonics, workers):
    from ..correlations import s2

    phi = batch.reshape(len(batch), -1).mean(axis=1)
    zeta, eta = three_point_parameters(batch, d, periodic=periodic, margin=margin, extrapolate=extrapolate,
                                       harmonics=harmonics, ndim=nd, workers=workers)
    phi, zeta, eta = _host(phi), _host(zeta), _host(eta)
    k_eff, g_eff = elastic_moduli(phi, zeta, eta, d, K1, G1)
    curves = _host(s2(batch, periodic=periodic, ndim=nd, workers=workers))
    k = permeability(curves, phi, voxel_size=voxel_size)
    flags = validity_flags(phi, zeta, eta, d, s2=curves, k=k)
    return {"porosity": phi, "zeta2": zeta, "eta2": eta, "K": k_eff, "G": g_eff,
            "E": youngs_modulus(phi, zeta, eta, d, K1, G1), "D": diffusivity(phi, zeta, d),
            "k": k, "valid": flags == 0, "invalid": flags}
