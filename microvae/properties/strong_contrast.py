"""Effective properties from microstructural parameters: third-order strong-contrast
approximations for the elastic moduli and the diffusivity, and the two-point void bound on the
permeability (docs/physics.md §3-5, with the corrections to the paper's formulas).

Conventions: rock = phase 1 (bulk and shear moduli ``K1``, ``G1``), pore = phase 2 (porosity
``φ2``, empty: ``K2 = G2 = 0``, diffusivity ``D2``). ``zeta2`` and ``eta2`` are the
three-point parameters of the pore phase. All functions take scalars or arrays (broadcast
together) and return float64.
"""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_d, check_moduli, check_voxel_size

__all__ = ["elastic_moduli", "youngs_modulus", "diffusivity", "permeability", "rock_youngs_modulus",
           "validity", "validity_flags", "INVALID_FLAGS", "invalid_reasons"]

#: Bits of :func:`validity_flags` (the ``invalid`` label): why a value is outside the formulas'
#: validity. 0 means valid.
INVALID_FLAGS = {
    1: "a single phase (porosity 0 or 1, or not finite)",
    2: "zeta2 or eta2 outside [0, 1]",
    4: "d = 2 and the rock phase no longer carries load (zeta2 >= 1/2 or zeta2 + eta2 >= 1)",
    8: "permeability k <= 0",
    16: "S2 falls to porosity² before r = 1 pixel: structure below the pixel size, k unresolved",
}


def _arrays(*values):
    return np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))


def rock_youngs_modulus(K1: float = 4.3, G1: float = 3.8, d: int = 3) -> float:
    """Young's modulus of the rock: ``9KG/(3K+G)`` (d = 3) or ``4KG/(K+G)`` (d = 2)."""
    check_d(d)
    K1, G1 = check_moduli(K1, G1)
    return 9 * K1 * G1 / (3 * K1 + G1) if d == 3 else 4 * K1 * G1 / (K1 + G1)


def elastic_moduli(porosity: ArrayLike, zeta2: ArrayLike, eta2: ArrayLike, d: int = 3, K1: float = 4.3,
                   G1: float = 3.8) -> tuple[np.ndarray, np.ndarray]:
    """Effective bulk and shear moduli of rock with empty pores, third-order strong contrast.

    Rock (phase 1) is the reference phase; the pores (phase 2) have zero moduli.

    - d = 3: ``κe1 = φ2 κ21 / (1 - aK)``, ``μe1 = φ2 μ21 / (1 - aG)`` with
      ``κ21 = -3K1/(4G1)``, ``μ21 = -6(K1+2G1)/(9K1+8G1)``, ``aK = 15 K1 φ1 ζ2/(9K1+8G1)``,
      ``aG = 3φ1[(30G1² + 28G1K1 + 9K1²) ζ2 + 2(G1+3K1)² η2]/(9K1+8G1)²``; then
      ``Ke = (K1 + 4G1 κe1/3)/(1 - κe1)``, ``Ge = (G1 + H1 μe1)/(1 - μe1)``,
      ``H1 = G1(9K1+8G1)/(6(K1+2G1))``.
    - d = 2 (2D moduli): ``Ke = K1 φ1 (1 - 2ζ2)/(1 - 2φ1ζ2 + φ2 K1/G1)``,
      ``Ge = G1 φ1 (1 - ζ2 - η2)/(1 - φ1(ζ2+η2) + φ2 (K1+2G1)/K1)``. These reach zero at
      ``ζ2 >= 1/2`` or ``ζ2 + η2 >= 1`` (a connected pore phase cuts the rock): the moduli are
      then reported as 0 and :func:`validity` flags the image.

    Parameters
    ----------
    porosity, zeta2, eta2 : float or array_like
        Pore fraction φ2 and the pore phase's three-point parameters.
    d : {3, 2}
    K1, G1 : float
        Rock bulk and shear moduli (default 4.3 and 3.8 GPa); results are in the same units.

    Returns
    -------
    (ndarray, ndarray)
        Effective bulk modulus ``Ke`` and shear modulus ``Ge``.
    """
    check_d(d)
    K1, G1 = check_moduli(K1, G1)
    phi2, z, e = _arrays(porosity, zeta2, eta2)
    phi1 = 1 - phi2
    with np.errstate(invalid="ignore", divide="ignore"):
        if d == 3:
            kappa21 = -3 * K1 / (4 * G1)
            mu21 = -6 * (K1 + 2 * G1) / (9 * K1 + 8 * G1)
            a_k = 15 * K1 * phi1 * z / (9 * K1 + 8 * G1)
            a_g = 3 * phi1 * ((30 * G1 ** 2 + 28 * G1 * K1 + 9 * K1 ** 2) * z
                              + 2 * (G1 + 3 * K1) ** 2 * e) / (9 * K1 + 8 * G1) ** 2
            kappa_e = phi2 * kappa21 / (1 - a_k)
            mu_e = phi2 * mu21 / (1 - a_g)
            h1 = G1 * (9 * K1 + 8 * G1) / (6 * (K1 + 2 * G1))
            k_eff = (K1 + 4 * G1 * kappa_e / 3) / (1 - kappa_e)
            g_eff = (G1 + h1 * mu_e) / (1 - mu_e)
        else:
            k_num, k_den = K1 * phi1 * (1 - 2 * z), 1 - 2 * phi1 * z + phi2 * K1 / G1
            g_num, g_den = G1 * phi1 * (1 - z - e), 1 - phi1 * (z + e) + phi2 * (K1 + 2 * G1) / K1
            # Past ζ2 = 1/2 (ζ2 + η2 = 1) the rock no longer carries load; the denominators can
            # change sign further on, which must not resurrect a positive modulus.
            k_eff = np.where((k_num > 0) & (k_den > 0), k_num / k_den, 0.0)
            g_eff = np.where((g_num > 0) & (g_den > 0), g_num / g_den, 0.0)
    # A formula outside its range would give a negative modulus; report loss of rigidity.
    return np.where(k_eff < 0, 0.0, k_eff), np.where(g_eff < 0, 0.0, g_eff)


def youngs_modulus(porosity: ArrayLike, zeta2: ArrayLike, eta2: ArrayLike, d: int = 3, K1: float = 4.3,
                   G1: float = 3.8, *, relative: bool = True) -> np.ndarray:
    """Effective Young's modulus of rock with empty pores, rescaled by the rock's (E/E1).

    ``E = 9 Ke Ge/(3Ke + Ge)`` (d = 3) or ``4 Ke Ge/(Ke + Ge)`` (d = 2) with ``Ke``, ``Ge`` from
    :func:`elastic_moduli`; ``E1`` is the same expression for the rock. ``relative=False``
    returns E in the units of ``K1``, ``G1``.
    """
    k_eff, g_eff = elastic_moduli(porosity, zeta2, eta2, d, K1, G1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if d == 3:
            e_eff = 9 * k_eff * g_eff / (3 * k_eff + g_eff)
        else:
            e_eff = 4 * k_eff * g_eff / (k_eff + g_eff)
    # K = G = 0 (no rigidity at all) is E = 0, not 0/0.
    e_eff = np.where((k_eff == 0) & (g_eff == 0), 0.0, e_eff)
    return e_eff / rock_youngs_modulus(K1, G1, d) if relative else e_eff


def diffusivity(porosity: ArrayLike, zeta2: ArrayLike, d: int = 3, D_ratio: float = 0.0) -> np.ndarray:
    """Effective diffusivity (or conductivity) rescaled by the pore's, De/D2, third order.

    Strong-contrast expansion with the pore phase as reference (q = 2, p = 1), which is the
    one that stays finite for a non-diffusing rock::

        De/D2 = [1 + (d-1) φ1 β12 - (d-1) φ2 ζ1 β12²] / [1 - φ1 β12 - (d-1) φ2 ζ1 β12²],

    ``β12 = (D1 - D2)/(D1 + (d-1) D2)``, ``ζ1 = 1 - ζ2``. For ``D1 = 0``:
    ``φ2(1 + ζ2)/(1 + 2φ1 + φ2 ζ2)`` (d = 3), ``φ2 ζ2/(2φ1 + φ2 ζ2)`` (d = 2). (The paper's
    ``β12 = (D2 - D1)/(D2 + 2D1)`` is ``β21``; with it the formula diverges.)

    Parameters
    ----------
    porosity, zeta2 : float or array_like
    d : {3, 2}
    D_ratio : float
        Rock-to-pore diffusivity ratio D1/D2 (default 0: the rock does not conduct).
    """
    check_d(d)
    if not (np.isfinite(D_ratio) and D_ratio >= 0):
        raise ValueError(f"D_ratio must be finite and >= 0, got {D_ratio}")
    phi2, z = _arrays(porosity, zeta2)
    phi1 = 1 - phi2
    beta = (D_ratio - 1) / (D_ratio + d - 1)
    third = (d - 1) * phi2 * (1 - z) * beta ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1 + (d - 1) * phi1 * beta - third) / (1 - phi1 * beta - third)


def permeability(s2: ArrayLike, porosity: ArrayLike, *, r: ArrayLike | None = None, voxel_size: float = 1.0,
                 cutoff: str | float | None = "zero") -> np.ndarray:
    """Two-point void bound on the permeability (Prager; Berryman and Milton), 3D.

    ``k = 2/(3 φ1²) ∫_0^∞ [S2(r) - φ2²] r dr``, by the trapezoid rule over the tabulated
    radii.

    The weight ``r`` makes the integral sensitive to the tail, where an S2 estimated from a
    finite image is biased: with the image's own porosity, ``S2(r) - φ̂2²`` is low by
    ``Var(φ̂2)`` at every r, which integrates to ``-Var(φ̂2) R²/2`` over a range R (about -3
    pixels² at R = 64 for 128² sandstone crops, as large as k itself). By default the integral
    therefore stops where ``S2`` first falls to ``φ2²`` (linear interpolation of the crossing),
    the usual truncation for a monotonically decaying ``χ = S2 - φ2²``; this drops the small
    negative lobe that packed grains show beyond it.

    Parameters
    ----------
    s2 : array_like, shape ``(R,)`` or ``(N, R)``
        Radial two-point correlation of the pore phase (e.g. from
        :func:`microvae.correlations.s2`), at the distances ``r``.
    porosity : float or array_like, shape ``(N,)``
        φ2, passed explicitly so that any estimator of S2 can be used.
    r : array_like, optional
        Increasing distances in pixels, starting at 0 (default ``0, 1, ..., R-1``).
    voxel_size : float
        Length of a pixel; k is returned in its square (pixels² by default).
    cutoff : "zero", float or None
        ``"zero"`` (default): up to the first zero of ``χ``; a number: up to that distance
        (pixels); ``None``: the whole tabulated range.

    Returns
    -------
    float or ndarray
        k, shape ``()`` or ``(N,)``.
    """
    s2 = np.asarray(s2, dtype=np.float64)
    if s2.ndim not in (1, 2) or s2.shape[-1] < 2:
        raise ValueError(f"s2 must have shape (R,) or (N, R) with R >= 2, got {s2.shape}")
    r = np.arange(s2.shape[-1], dtype=np.float64) if r is None else np.asarray(r, dtype=np.float64)
    if r.shape != s2.shape[-1:] or np.any(np.diff(r) <= 0) or r[0] != 0:
        raise ValueError("r must be increasing, start at 0 and match the last axis of s2")
    voxel_size = check_voxel_size(voxel_size)
    phi2 = np.asarray(porosity, dtype=np.float64)
    if s2.ndim == 2 and phi2.ndim == 1 and phi2.shape[0] != s2.shape[0]:
        raise ValueError("porosity must have one value per S2 curve")
    chi = np.atleast_2d(s2 - (phi2[..., None] if phi2.ndim else phi2) ** 2)
    if cutoff is None:
        end = np.full(len(chi), r[-1])
    elif isinstance(cutoff, str):
        if cutoff != "zero":
            raise ValueError(f"cutoff must be 'zero', a distance or None, got {cutoff!r}")
        # First radius after 0 where χ <= 0; the crossing lies in the interval before it.
        below = chi[:, 1:] <= 0
        first = np.where(below.any(axis=1), below.argmax(axis=1) + 1, len(r) - 1)
        lo, hi = np.maximum(first - 1, 0), first
        c_lo = chi[np.arange(len(chi)), lo]
        c_hi = chi[np.arange(len(chi)), hi]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(below.any(axis=1), np.clip(c_lo / (c_lo - c_hi), 0.0, 1.0), 1.0)
        end = r[lo] + frac * (r[hi] - r[lo])
    else:
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise ValueError(f"cutoff must be a positive distance, got {cutoff}")
        end = np.full(len(chi), min(float(cutoff), r[-1]))
    # Trapezoid rule of χ r on [0, end]: whole intervals, then the part of the last one.
    f = chi * r
    seg = 0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(r)
    whole = r[1:] <= end[:, None]
    integral = np.sum(np.where(whole, seg, 0.0), axis=1)
    k_last = np.minimum(whole.sum(axis=1), len(r) - 2)
    rows = np.arange(len(chi))
    r0, r1 = r[k_last], r[k_last + 1]
    part = np.clip(end - r0, 0.0, None) * (end < r1)
    f_end = f[rows, k_last] + (f[rows, k_last + 1] - f[rows, k_last]) * part / (r1 - r0)
    integral += 0.5 * (f[rows, k_last] + f_end) * part
    with np.errstate(invalid="ignore", divide="ignore"):
        k = 2 / (3 * (1 - phi2) ** 2) * integral.reshape(np.shape(s2)[:-1]) * voxel_size ** 2
    return k


def validity(porosity: ArrayLike, zeta2: ArrayLike, eta2: ArrayLike, d: int = 3) -> np.ndarray:
    """Where the third-order formulas apply: both phases present, ``0 <= ζ2, η2 <= 1`` (the
    bounds of the parameters), and in 2D a rock phase that still carries load
    (``ζ2 < 1/2`` and ``ζ2 + η2 < 1``)."""
    return validity_flags(porosity, zeta2, eta2, d) == 0


def validity_flags(porosity: ArrayLike, zeta2: ArrayLike, eta2: ArrayLike, d: int = 3, *, s2: ArrayLike | None = None,
                   k: ArrayLike | None = None) -> np.ndarray:
    """Why each value is outside the formulas' validity, as bits of :data:`INVALID_FLAGS` (0: valid).

    The moduli and diffusivity need both phases and ``0 <= ζ2, η2 <= 1`` (in 2D also a
    load-bearing rock). The permeability bound also needs ``k > 0`` (given ``k``) and a
    correlation ``χ = S2 - φ2²`` still positive at r = 1 pixel (given the radial ``s2``): when
    it falls to zero within the first pixel the integral is an interpolation below the
    resolution (the case of uncorrelated noise), and its sign is chance.
    """
    check_d(d)
    phi2, z, e = _arrays(porosity, zeta2, eta2)
    flags = np.zeros(phi2.shape, dtype=np.int64)
    flags |= np.where(np.isfinite(phi2) & (phi2 > 0) & (phi2 < 1), 0, 1)
    flags |= np.where(np.isfinite(z) & np.isfinite(e) & (z >= 0) & (z <= 1) & (e >= 0) & (e <= 1), 0, 2)
    if d == 2:
        flags |= np.where((z < 0.5) & (z + e < 1), 0, 4)
    if k is not None:
        flags |= np.where(np.asarray(k) > 0, 0, 8)
    if s2 is not None:
        s2 = np.asarray(s2, dtype=np.float64)
        chi1 = s2[..., 1] - phi2 ** 2 if s2.shape[-1] > 1 else np.full(phi2.shape, np.nan)
        flags |= np.where(chi1 > 0, 0, 16)
    # A single phase is the whole story: every other formula is undefined for it.
    return np.where(flags & 1, 1, flags)


def invalid_reasons(flags: int) -> list[str]:
    """The reasons of one :func:`validity_flags` value, as text (empty for a valid one)."""
    return [text for bit, text in INVALID_FLAGS.items() if int(flags) & bit]
