"""Benchmark cases behind ``microvae bench``: a registry of functions, each returning rows of
throughputs measured in this process, peers and baselines side by side so that ratios compare
like with like on whatever machine runs them.

A case is registered with :func:`case` and called with a :class:`Context`; it returns a list of
:func:`row` dicts. Rows naming a ``baseline`` (another row of the same case) get its speed-up.
Timings are the best of several rounds after one warm-up call (:func:`timed`); the pytest
benchmarks in ``benchmarks/`` hold the speed targets, this is the quick look on one machine.
"""
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

__all__ = ["Context", "case", "CASES", "row", "timed", "run", "environment", "format_table", "numpy_s2_radial"]


@dataclass
class Context:
    """What a case may use: ``quick`` sizes, the torch ``devices`` to cover ("cpu", "cuda"),
    and the time budget of one measurement."""
    quick: bool = True
    devices: tuple = ("cpu",)
    min_time: float = 0.3
    max_rounds: int = 3
    notes: list = field(default_factory=list)


@dataclass
class Case:
    name: str
    description: str
    func: object


CASES = {}


def case(name, description):
    """Register ``func(ctx) -> list of rows`` as benchmark case ``name``."""
    def register(func):
        CASES[name] = Case(name, description, func)
        return func
    return register


def row(name, items, seconds, unit="images/s", baseline=None, **extra):
    """One measurement: ``items`` processed in ``seconds`` (rate = items / seconds)."""
    return {"name": name, "items": items, "seconds": seconds, "rate": items / seconds, "unit": unit,
            "baseline": baseline, **extra}


def _sync(device):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(func, ctx, device="cpu"):
    """Seconds per call of ``func()``: one warm-up call (JIT, FFT plans, caches), then the best
    of up to ``ctx.max_rounds`` rounds, stopping once ``ctx.min_time`` has been spent."""
    func()
    _sync(device)
    best, spent, rounds = np.inf, 0.0, 0
    while rounds < ctx.max_rounds and (rounds == 0 or spent < ctx.min_time):
        start = time.perf_counter()
        func()
        _sync(device)
        elapsed = time.perf_counter() - start
        best, spent, rounds = min(best, elapsed), spent + elapsed, rounds + 1
    return best


def _installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _torch_images(images, device, dtype):
    import torch

    return torch.as_tensor(images, device=device).to(dtype)


# ---------------------------------------------------------------------------- cases

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
    from .synthetic import gaussian_random_field

    return gaussian_random_field((size, size), 4.0, 0.3, n=n, seed=seed)


@case("s2", "S2 at 128²: periodic vs plain NumPy, non-periodic, torch float32/float64 on each device")
def bench_s2(ctx):
    from .correlations import s2

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
    from .compat import porespy as ps_compat
    from .compat import pymks as pymks_compat

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
    from .properties import label

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
    from .mrf import MRF

    train = _grf(40 if ctx.quick else 200, seed=2)
    start = time.perf_counter()
    model = MRF(S=5).fit(train, seed=0)
    fit = time.perf_counter() - start
    n = 8 if ctx.quick else 64
    rows = [row(f"MRF fit (S = 5, {len(train)} training images)", len(train), fit)]
    compiled = row("MRF sample, compiled", n, timed(lambda: model.sample(n, 128, seed=1), ctx))
    if not ctx.quick:
        from .mrf.reference import sample_reference

        start = time.perf_counter()
        sample_reference(model, 1, 128, 1)
        rows.append(row("MRF sample, Python loop over predict_proba", 1, time.perf_counter() - start))
        compiled["baseline"] = rows[-1]["name"]
    return rows + [compiled]


# ---------------------------------------------------------------------------- running

def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(devices=("cpu",)):
    """Where the numbers come from: CPU and GPU, thread counts, library versions."""
    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    env = {"cpu": _cpu_model(), "cpus_total": os.cpu_count(), "cpus_available": cpus,
           "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "load_average_1min": os.getloadavg()[0], "platform": platform.platform(),
           "python": platform.python_version(), "devices": list(devices),
           "gpu": torch.cuda.get_device_name() if "cuda" in devices else None,
           "versions": {d: _version(d) for d in ("microvae", "numpy", "scipy", "torch", "numba", "scikit-learn",
                                                 "porespy", "pymks")}}
    return env


def run(names=None, *, quick=True, devices=None, progress=None):
    """Run the cases ``names`` (default: all registered) and return the report dict.

    ``devices``: torch devices for the tensor cases (default: "cpu", plus "cuda" when available).
    ``progress``: called with a line of text before each case.
    """
    import torch

    names = list(CASES) if names is None else list(names)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; available: {sorted(CASES)}")
    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    if "cuda" in devices and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible to torch")
    ctx = Context(quick=quick, devices=tuple(devices), min_time=0.3 if quick else 2.0, max_rounds=3 if quick else 10)
    started = time.time()
    rows = []
    for name in names:
        if progress:
            progress(f"bench {name}: {CASES[name].description}")
        case_start = time.perf_counter()
        found = CASES[name].func(ctx)
        rates = {r["name"]: r["rate"] for r in found}
        for r in found:
            r["case"] = name
            base = r.get("baseline")
            if base is not None and base not in rates:
                raise RuntimeError(f"benchmark case {name}: row {r['name']!r} names a missing baseline {base!r}")
            r["speedup"] = r["rate"] / rates[base] if base is not None else None
        rows += found
        if progress:
            progress(f"bench {name}: {time.perf_counter() - case_start:.1f} s")
    return {"quick": quick, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": time.time() - started, "environment": environment(devices), "rows": rows,
            "notes": ctx.notes}


def format_table(report):
    """The report as one text table (case, benchmark, rate, speed-up over its baseline)."""
    lines = []
    header = f"{'case':8s} {'benchmark':58s} {'rate':>14s}  {'unit':9s} speed-up (over)"
    lines += [header, "-" * len(header)]
    for r in report["rows"]:
        speed = f"{r['speedup']:.2f}x ({r['baseline']})" if r["speedup"] is not None else ""
        lines.append(f"{r['case']:8s} {r['name'][:58]:58s} {r['rate']:14.1f}  {r['unit']:9s} {speed}")
    env = report["environment"]
    lines.append("")
    lines.append(f"{env['cpu']}; {env['cpus_available']} of {env['cpus_total']} CPUs available, torch threads "
                 f"{env['torch_threads']}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, load {env['load_average_1min']:.2f}"
                 + (f"; GPU {env['gpu']}" if env["gpu"] else "; no GPU"))
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    lines += [f"note: {n}" for n in report["notes"]]
    lines.append(f"{'quick' if report['quick'] else 'full'} run, {report['seconds']:.0f} s")
    return "\n".join(lines)


from . import bench_torch  # noqa: E402,F401  (registers the losses, train_step and concurrent cases)
