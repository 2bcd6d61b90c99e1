"""Benchmark cases of the array kernels for ``microvae bench``: S2 against plain NumPy, the
PoreSpy / PyMKS drop-ins against the libraries themselves, ``label()``, MRF sampling."""
import time

import numpy as np

from .registry import case, row, timed

__all__ = ["numpy_s2_radial"]


def _installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _torch_images(images, device, dtype):
    import torch

    return torch.as_tensor(images, device=device).to(dtype)


def numpy_s2_radial(images, r_max):
    """What a user writes with NumPy: batched rfft2, |F|², irfft2, radial bincount per image."""
    f = np.fft.rfft2(images.astype(np.float64))
    corr = np.fft.irfft2(f.real ** 2 + f.imag ** 2, s=images.shape[1:]) / np.prod(images.shape[1:])
    h, w = images.shape[1:]
    dy, dx = np.meshgrid(np.fft.fftfreq(h, 1 / h), np.fft.fftfreq(w, 1 / w), indexing="ij")
    bins = np.floor(np.hypot(dy, dx) + 0.5).astype(int).ravel()
    keep = bins <= r_max
    counts = np.bincount(bins[keep])
    return np.stack([np.bincount(bins[keep], weights=c.ravel()[keep]) / counts for c in corr])


def _grf(n, size=128, seed=0):
    from ..synthetic import gaussian_random_field

    return gaussian_random_field((size, size), 4.0, 0.3, n=n, seed=seed)


@case("s2", "S2 at 128²: periodic vs plain NumPy, non-periodic, torch float32/float64 on each device")
def bench_s2(ctx):
    from ..correlations import s2

    n = 200 if ctx.quick else 1000
    images = _grf(n)
    rows = [row("plain NumPy rfft2 + bincount, periodic", n, timed(lambda: numpy_s2_radial(images, 64), ctx)),
            row("microvae s2, periodic (NumPy)", n, timed(lambda: s2(images), ctx),
                baseline="plain NumPy rfft2 + bincount, periodic"),
            row("microvae s2, non-periodic (NumPy)", n, timed(lambda: s2(images, periodic=False), ctx))]
    import torch

    for device in ctx.devices:
        for dtype in (torch.float32, torch.float64):
            t = _torch_images(images, device, dtype)
            rows.append(row(f"microvae s2, periodic (torch {device}, {str(dtype)[6:]})", n,
                            timed(lambda: s2(t), ctx, device), baseline="microvae s2, periodic (NumPy)"))
    return rows


@case("compat", "Drop-in PoreSpy / PyMKS entry points against the libraries themselves (when installed)")
def bench_compat(ctx):
    from ..compat import porespy as ps_compat
    from ..compat import pymks as pymks_compat

    rows = []
    images = _grf(100 if ctx.quick else 400).astype(bool)
    if _installed("porespy"):
        import porespy

        k = 5 if ctx.quick else 40  # PoreSpy takes one image at a time, ~0.1 s each
        rows.append(row("PoreSpy 3.2 two_point_correlation, 128²", k,
                        timed(lambda: [porespy.metrics.two_point_correlation(im) for im in images[:k]], ctx)))
        rows.append(row("compat.porespy two_point_correlation (one at a time)", k,
                        timed(lambda: [ps_compat.two_point_correlation(im) for im in images[:k]], ctx),
                        baseline="PoreSpy 3.2 two_point_correlation, 128²"))
    else:
        ctx.notes.append("PoreSpy not installed: compat.porespy timed without its peer")
    rows.append(row("compat.porespy two_point_correlation_batch", len(images),
                    timed(lambda: ps_compat.two_point_correlation_batch(images), ctx),
                    baseline="PoreSpy 3.2 two_point_correlation, 128²" if rows else None))
    fields = images.astype(np.float64)
    data = np.stack([fields, 1 - fields], axis=-1)
    pairs = [(0, 0), (0, 1), (1, 1)]
    if _installed("pymks"):
        import warnings

        import dask

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyMKS imports pkg_resources
            import pymks
        with dask.config.set(scheduler="synchronous"):
            for periodic in (True, False):
                label = "periodic" if periodic else "non-periodic"
                rows.append(row(f"PyMKS 0.4.1 two_point_stats, {label}", len(fields), timed(
                    lambda: pymks.two_point_stats(fields, fields, periodic_boundary=periodic), ctx)))
            rows.append(row("PyMKS 0.4.1 TwoPointCorrelation, 3 pairs", len(fields), timed(
                lambda: pymks.TwoPointCorrelation(correlations=pairs).transform(data), ctx)))
    else:
        ctx.notes.append("PyMKS not installed: compat.pymks timed without its peer")
    for periodic in (True, False):
        label = "periodic" if periodic else "non-periodic"
        rows.append(row(f"compat.pymks two_point_stats, {label}", len(fields),
                        timed(lambda: pymks_compat.two_point_stats(fields, fields, periodic_boundary=periodic), ctx),
                        baseline=f"PyMKS 0.4.1 two_point_stats, {label}" if _installed("pymks") else None))
    rows.append(row("compat.pymks TwoPointCorrelation, 3 pairs", len(fields),
                    timed(lambda: pymks_compat.TwoPointCorrelation(correlations=pairs).transform(data), ctx),
                    baseline="PyMKS 0.4.1 TwoPointCorrelation, 3 pairs" if _installed("pymks") else None))
    return rows


@case("labels", "label(): porosity, ζ2, η2 (d = 3 slices, extrapolated), moduli, D, k at 128²; NumPy and torch")
def bench_labels(ctx):
    from ..properties import label

    n = 64 if ctx.quick else 500
    images = _grf(n, seed=1)
    rows = [row("label() (NumPy)", n, timed(lambda: label(images), ctx))]
    import torch

    for device in ctx.devices:
        for dtype in (torch.float32, torch.float64):
            t = _torch_images(images, device, dtype)
            rows.append(row(f"label() (torch {device}, {str(dtype)[6:]})", n, timed(lambda: label(t), ctx, device),
                            baseline="label() (NumPy)"))
    return rows


@case("mrf", "MRF raster-scan sampling of 128² images (compiled), and the per-pixel Python loop (full run only)")
def bench_mrf(ctx):
    from ..mrf import MRF

    train = _grf(40 if ctx.quick else 200, seed=2)
    start = time.perf_counter()
    model = MRF(S=5).fit(train, seed=0)
    fit = time.perf_counter() - start
    n = 8 if ctx.quick else 64
    rows = [row(f"MRF fit (S = 5, {len(train)} training images)", len(train), fit)]
    compiled = row("MRF sample, compiled", n, timed(lambda: model.sample(n, 128, seed=1), ctx))
    if not ctx.quick:
        from ..mrf.reference import sample_reference

        start = time.perf_counter()
        sample_reference(model, 1, 128, 1)
        rows.append(row("MRF sample, Python loop over predict_proba", 1, time.perf_counter() - start))
        compiled["baseline"] = rows[-1]["name"]
    return rows + [compiled]
