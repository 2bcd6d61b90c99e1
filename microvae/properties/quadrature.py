"""Three-point parameters by direct quadrature of the triple integrals over S2 and S3.

This is the slow, independent path: it evaluates the defining integrals (docs/physics.md §2) of

- d = 2: ``zeta2 = 4/(pi phi1 phi2) I[cos 2θ]``, ``eta2 = 16/(pi phi1 phi2) I[cos 4θ]``;
- d = 3: ``zeta2 = 9/(2 phi1 phi2) I[P2]``, ``eta2 = 5 zeta2/21 + 150/(7 phi1 phi2) I[P4]``,

with ``I[w] = ∫ dr/r ∫ ds/s ∫ w B`` (``dθ`` over [0, π] in 2D, ``d(cos θ)`` over [-1, 1] in 3D),
``B = S3(r, s, t) - S2(r) S2(s) / phi2`` and ``t² = r² + s² - 2 r s cos θ``. By default the
exact local-integrand rewrite is used: ``φ2 χ(t)`` (``χ = S2 - φ2²``) is subtracted inside the
integral and its closed-form value added back, so the integrand vanishes as soon as one point
is far from the other two and the truncation at ``r_max`` converges quickly.

Two entry points:

- :func:`parameters_from_functions` for correlation functions known in closed form
  (e.g. :func:`microvae.synthetic.disks_s3`), by composite Gauss-Legendre quadrature;
- :func:`parameters_from_samples` for S3 tabulated on an (r, s, θ) grid, e.g. by the Monte
  Carlo estimator :func:`microvae.correlations.s3`; :func:`three_point_quadrature` does that
  for a batch of images.
"""
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .._validate import Seed, as_binary_batch, check_d, check_porosity, check_positive

__all__ = ["parameters_from_functions", "parameters_from_samples", "three_point_quadrature"]


def _angular_weights(d, theta):
    """The two angular weights per dθ: cos 2θ, cos 4θ (d = 2) or sin θ P2, sin θ P4 (d = 3)."""
    if d == 2:
        return np.cos(2 * theta), np.cos(4 * theta)
    u = np.cos(theta)
    sin = np.sin(theta)
    return sin * (3 * u * u - 1) / 2, sin * (35 * u ** 4 - 30 * u * u + 3) / 8


def _combine(d, phi, j_zeta, j_eta, local):
    """Parameters from the two angular integrals (prefactors and the rewrite's closed-form terms)."""
    phi1 = 1 - phi
    if d == 2:
        zeta = 4 / (np.pi * phi1 * phi) * j_zeta
        eta = 16 / (np.pi * phi1 * phi) * j_eta
        if local:
            zeta, eta = zeta + phi, eta + phi
        return zeta, eta
    zeta = 9 / (2 * phi1 * phi) * j_zeta + (phi if local else 0.0)
    eta = 5 * zeta / 21 + 150 / (7 * phi1 * phi) * j_eta + (16 * phi / 21 if local else 0.0)
    return zeta, eta


def _panels(edges, order):
    """Composite Gauss-Legendre nodes and weights over consecutive ``edges``."""
    x, w = np.polynomial.legendre.leggauss(order)
    a, b = np.asarray(edges[:-1]), np.asarray(edges[1:])
    half = (b - a)[:, None] / 2
    return ((a + b)[:, None] / 2 + half * x).ravel(), (half * w).ravel()


def _graded_edges(lo, hi, breakpoints, n_panels, grade_lo, grade_hi, levels):
    """Panel edges on [lo, hi]: uniform panels plus the breakpoints, refined geometrically
    (halving ``levels`` times) towards the ends flagged by ``grade_lo``/``grade_hi``."""
    edges = set(np.linspace(lo, hi, n_panels + 1).tolist())
    edges.update(b for b in breakpoints if lo < b < hi)
    width = (hi - lo) / n_panels
    for k in range(1, levels + 1):
        if grade_lo:
            edges.add(lo + width * 0.5 ** k)
        if grade_hi:
            edges.add(hi - width * 0.5 ** k)
    return np.array(sorted(edges))


def parameters_from_functions(s2: Callable[[np.ndarray], np.ndarray],
                              s3: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], porosity: float,
                              d: int = 3, *, r_max: float, breakpoints: Sequence[float] = (), local: bool = True,
                              n_panels: int = 16, n_theta_panels: int = 12, order: int = 6, grading: int = 8,
                              chunk: int = 2 ** 21) -> tuple[float, float]:
    """ζ2 and η2 of the phase described by closed-form ``s2``, ``s3``, by quadrature.

    The integral over ``0 < s <= r <= r_max`` is doubled (the integrand is symmetric in r and
    s); each variable uses composite Gauss-Legendre panels, graded geometrically towards the
    singular points of the integrand (r, s → 0; s → r and θ → 0, where t → 0).

    Parameters
    ----------
    s2 : callable
        ``s2(r)``: two-point correlation of the phase at distances ``r`` (array in, array out).
    s3 : callable
        ``s3(r, s, t)``: three-point correlation for triangles with sides r, s, t (arrays of
        equal shape).
    porosity : float
        Volume fraction φ2 of the phase (``s2(0)``).
    d : {2, 3}
        Dimension of the medium (selects the angular weights and prefactors).
    r_max : float
        Upper limit of the r and s integrals, in the units of ``s2``/``s3``. For media with a
        finite correlation range (e.g. overlapping particles of radius R with ``local=True``:
        ``r_max = 4R`` is exact) the integrand vanishes beyond it.
    breakpoints : sequence of float
        Distances where the correlation functions have kinks (e.g. ``2R``); panels end there.
    local : bool
        Use the local-integrand rewrite (default). ``False`` integrates ``B`` as defined.
    n_panels, n_theta_panels, order, grading : int
        Uniform panels for r and s, for θ, Gauss-Legendre points per panel, and halvings of
        the graded end panels. Halve the panel widths to check convergence.
    chunk : int
        Integrand evaluations per call of ``s3``.

    Returns
    -------
    (float, float)
        ζ2 and η2 of the phase.
    """
    check_d(d)
    phi = float(check_porosity(porosity))
    r_max = check_positive(r_max, "r_max")
    breaks = sorted(float(b) for b in breakpoints)
    r, wr = _panels(_graded_edges(0.0, r_max, breaks, n_panels, True, False, grading), order)
    theta, wt = _panels(_graded_edges(0.0, np.pi, (), n_theta_panels, True, False, grading), order)
    w_zeta, w_eta = (w * wt for w in _angular_weights(d, theta))
    cos = np.cos(theta)
    # For each r, nodes in s over (0, r], graded towards 0 and towards the diagonal s = r.
    rows, cols, ws = [], [], []
    for i, ri in enumerate(r):
        sk, wsk = _panels(_graded_edges(0.0, ri, breaks, max(2, int(np.ceil(n_panels * ri / r_max))), True, True,
                                        grading), order)
        rows.append(np.full(sk.size, i))
        cols.append(sk)
        ws.append(wsk)
    ri_idx, s_all, ws_all = np.concatenate(rows), np.concatenate(cols), np.concatenate(ws)
    r_all = r[ri_idx]
    pair_w = 2 * wr[ri_idx] * ws_all / (r_all * s_all)
    s2_r, s2_s = s2(r_all), s2(s_all)
    j_zeta = j_eta = 0.0
    per = max(1, chunk // theta.size)
    for start in range(0, r_all.size, per):
        sl = slice(start, start + per)
        rr, ss = r_all[sl, None], s_all[sl, None]
        t = np.sqrt(np.maximum(rr * rr + ss * ss - 2 * rr * ss * cos, 0.0))
        rr, ss, t = np.broadcast_arrays(rr, ss, t)
        integrand = s3(rr, ss, t) - (s2_r[sl] * s2_s[sl] / phi)[:, None]
        if local:
            integrand = integrand - phi * (s2(t) - phi * phi)
        weighted = integrand * pair_w[sl, None]
        j_zeta += float(np.sum(weighted @ w_zeta))
        j_eta += float(np.sum(weighted @ w_eta))
    zeta, eta = _combine(d, phi, j_zeta, j_eta, local)
    return float(zeta), float(eta)


def _trapezoid_weights(x):
    """Trapezoid weights of the nodes ``x`` (sorted, any spacing)."""
    w = np.zeros_like(x)
    dx = np.diff(x)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def parameters_from_samples(r: ArrayLike, s: ArrayLike, theta: ArrayLike, s3_values: ArrayLike, s2_r: ArrayLike,
                            s2_values: ArrayLike, porosity: ArrayLike, d: int = 3, *,
                            local: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """ζ2 and η2 from S3 tabulated on an (r, s, θ) grid and a radial S2, by the trapezoid rule.

    The r and s grids start at the first positive distance. ``B`` vanishes linearly as r or
    s → 0, so the radial integrand ``B / r`` tends to a finite limit: the cell ``[0, r[0]]``
    is added with that integrand held at its value at ``r[0]``. The angular weights are
    corrected to integrate constants to exactly zero on the given θ nodes, as the exact
    weights do; otherwise the O(1) part of the integrand at small r
    would leak into the integral through the discrete θ rule.

    Parameters
    ----------
    r, s : 1-D array_like
        Increasing positive distances of the grid.
    theta : 1-D array_like
        Increasing angles in [0, π] (e.g. bin centres; the integrand is held constant from
        the first and last node out to 0 and π).
    s3_values : array_like, shape ``(..., len(r), len(s), len(theta))``
        S3 of the phase; leading axes (e.g. images) are kept.
    s2_r, s2_values : array_like
        Radial S2 of the phase: distances (increasing, from 0) and values, shape
        ``(..., len(s2_r))``; interpolated linearly at r, s and t.
    porosity : float or array_like
        Volume fraction of the phase, broadcast against the leading axes.
    d : {2, 3}
    local : bool
        Local-integrand rewrite (default) or the plain integrand.

    Returns
    -------
    (ndarray, ndarray)
        ζ2 and η2 with the leading shape of ``s3_values``.
    """
    check_d(d)
    r, s, theta = (np.asarray(v, dtype=np.float64) for v in (r, s, theta))
    s3_values = np.asarray(s3_values, dtype=np.float64)
    s2_r = np.asarray(s2_r, dtype=np.float64)
    s2_values = np.asarray(s2_values, dtype=np.float64)
    for name, v in (("r", r), ("s", s), ("theta", theta), ("s2_r", s2_r)):
        if v.ndim != 1 or v.size < 2 or np.any(np.diff(v) <= 0):
            raise ValueError(f"{name} must be an increasing 1-D grid with at least two points")
    if theta[0] < 0 or theta[-1] > np.pi:
        raise ValueError("theta must lie in [0, π]")
    if r[0] <= 0 or s[0] <= 0:
        raise ValueError("r and s grids must start above 0 (the r = 0 limit is handled analytically)")
    if s3_values.shape[-3:] != (r.size, s.size, theta.size):
        raise ValueError(f"s3_values must end with shape {(r.size, s.size, theta.size)}, got {s3_values.shape}")
    if s2_values.shape[-1] != s2_r.size:
        raise ValueError("s2_values must have len(s2_r) values on its last axis")
    if max(r[-1], s[-1]) + max(r[-1], s[-1]) > s2_r[-1] + 1e-9:
        # t reaches r + s; beyond the tabulated S2 the extrapolation would be a guess.
        raise ValueError(f"s2_r must reach r_max + s_max = {r[-1] + s[-1]}, the largest third side")
    lead = s3_values.shape[:-3]
    phi = np.broadcast_to(check_porosity(porosity), lead)
    s2_values = np.broadcast_to(s2_values, lead + s2_r.shape)

    def interp(x):
        flat = s2_values.reshape(-1, s2_r.size)
        out = np.stack([np.interp(x.ravel(), s2_r, row) for row in flat])
        return out.reshape(lead + x.shape)

    wr, ws = _trapezoid_weights(r), _trapezoid_weights(s)
    wr[0] += r[0]
    ws[0] += s[0]
    wr, ws = wr / r, ws / s
    # Trapezoid rule over the nodes, held constant out to 0 and π when they are not nodes.
    wt = _trapezoid_weights(theta)
    wt[0] += theta[0]
    wt[-1] += np.pi - theta[-1]
    weights = []
    for w in _angular_weights(d, theta):
        w = w * wt
        weights.append(w - wt * w.sum() / wt.sum())
    t = np.sqrt(np.maximum(r[:, None, None] ** 2 + s[None, :, None] ** 2
                           - 2 * r[:, None, None] * s[None, :, None] * np.cos(theta), 0.0))
    b = s3_values - (interp(r)[..., :, None, None] * interp(s)[..., None, :, None]) / phi[..., None, None, None]
    if local:
        b = b - phi[..., None, None, None] * (interp(t) - phi[..., None, None, None] ** 2)
    radial = wr[:, None, None] * ws[None, :, None]
    j = [np.sum(b * radial * w, axis=(-3, -2, -1)) for w in weights]
    return _combine(d, phi, j[0], j[1], local)


def three_point_quadrature(images: ArrayLike, d: int = 3, *, r_max: float | None = None, n_r: int | None = None,
                           n_theta: int = 19, n_samples: int = 100_000, seed: Seed = None, periodic: bool = True,
                           ndim: int | None = None, local: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """ζ2 and η2 of the pore phase the way the paper computes them: Monte Carlo S3 on an
    (r, s, θ) grid, then the triple integral.

    S3 is sampled with :func:`microvae.correlations.s3` (triangles of random position and
    orientation, vertices rounded to pixels), S2 with :func:`microvae.correlations.s2`, and
    the integral taken by :func:`parameters_from_samples`. Kept to reproduce the paper's
    estimator and to measure what the FFT harmonic method saves; it is not a precision tool:

    - the ``1/(r s)`` weights amplify the Monte Carlo noise of the short-distance cells
      (about ±0.05 on ζ2 with 4·10^3 triangles per cell; the default 10^5 gives ~±0.01);
    - at distances of a few pixels, rounding vertices to pixels and the coarse grid bias the
      integrand; the exact references are the analytic quadrature
      (:func:`parameters_from_functions`) and the FFT method.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``/``(N, H, W)`` or volumes ``(N, D, H, W)``, 1 = pore.
    d : {2, 3}
    r_max : float, optional
        Largest r and s in pixels (default and maximum: a quarter of the smallest side, so
        that the third side stays within the radial S2).
    n_r : int, optional
        Number of r (and s) nodes, evenly spaced on ``(0, r_max]`` (default: one per pixel).
    n_theta : int
        Angles on [0, π], both ends included.
    n_samples : int
        Triangles per grid cell.
    seed : int or numpy Generator, optional
    periodic : bool
        Boundary handling of both estimators.
    local : bool
        Local-integrand rewrite.

    Returns
    -------
    (ndarray, ndarray)
        ζ2 and η2 per image, shape ``(N,)``.
    """
    from ..correlations import s2, s3

    batch, nd = as_binary_batch(images, ndim=ndim)
    side = min(batch.shape[1:])
    r_max = side // 4 if r_max is None else float(r_max)
    if not 1 <= r_max <= side // 4:
        raise ValueError(f"r_max must be in [1, {side // 4}] for images of side {side}, got {r_max}")
    n_r = int(r_max) if n_r is None else int(n_r)
    grid = np.linspace(r_max / n_r, r_max, n_r)
    theta = np.linspace(0.0, np.pi, int(n_theta))
    phi = batch.reshape(len(batch), -1).mean(axis=1)
    if np.any((phi <= 0) | (phi >= 1)):
        raise ValueError("three-point parameters need both phases present in every image")
    est = s3(batch, grid, grid, theta, n_samples=n_samples, periodic=periodic, seed=seed, ndim=nd).estimate
    s2_max = int(np.ceil(2 * r_max))
    curves = s2(batch, periodic=periodic, r_max=s2_max, ndim=nd)
    return parameters_from_samples(grid, grid, theta, est, np.arange(s2_max + 1.0), curves, phi, d, local=local)
