"""The registry and runner of ``microvae bench``: cases register here, :func:`run` times them.

A case is registered with :func:`case` and called with a :class:`Context`; it returns a list of
:func:`row` dicts. Rows naming a ``baseline`` (another row of the same case) get its speed-up.
Timings are the best of several rounds after one warm-up call (:func:`timed`). This module
imports no case module; the cases live beside it and import it.
"""
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

__all__ = ["Context", "case", "CASES", "row", "timed", "run", "environment", "format_table"]


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

