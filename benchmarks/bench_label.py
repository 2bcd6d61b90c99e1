"""Property labels: throughput against PoreSpy's S2 alone, the FFT harmonic method against the
paper's quadrature over Monte Carlo S3, and a 128³ volume (time and peak memory).

Run: .venv/bin/python -m pytest benchmarks/bench_label.py --benchmark-only -o addopts="" -s
Ratios are measured within one test, on the same images, so they hold on a loaded machine.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from microvae import synthetic
from microvae.properties import label, three_point_parameters, three_point_quadrature

N_IMAGES = 2000


@pytest.fixture(scope="module")
def slices128():
    return synthetic.grains((128, 128), 8, 0.2, n=N_IMAGES, seed=0)


def test_labels_vs_porespy_two_point_correlation(benchmark, slices128):
    """All labels (d = 3 from 128² slices) against PoreSpy computing S2 only; target >= 3x."""
    porespy = pytest.importorskip("porespy")
    label(slices128[:8])  # JIT and FFT plans
    porespy.metrics.two_point_correlation(slices128[0].astype(bool))
    result = benchmark.pedantic(label, args=(slices128,), rounds=1, iterations=1)
    ours = benchmark.stats.stats.mean
    start = time.perf_counter()
    for image in slices128.astype(bool):
        porespy.metrics.two_point_correlation(image)
    theirs = time.perf_counter() - start
    benchmark.extra_info.update({"images": N_IMAGES, "microvae_label_s": ours, "porespy_s2_s": theirs,
                                 "microvae_images_per_s": N_IMAGES / ours, "porespy_images_per_s": N_IMAGES / theirs,
                                 "speedup": theirs / ours})
    print(f"\nlabels {N_IMAGES / ours:.0f} img/s, PoreSpy S2 {N_IMAGES / theirs:.0f} img/s, ratio {theirs / ours:.1f}")
    assert result["valid"].all()
    assert theirs / ours >= 3


def test_fft_harmonic_method_vs_quadrature_path(benchmark, slices128):
    """ζ2, η2 by the FFT harmonic method against the paper's approach (Monte Carlo S3 on a
    32 x 32 x 19 (r, s, θ) grid, 10^4 triangles per cell, then the triple integral)."""
    batch = slices128[:64]
    three_point_parameters(batch)
    benchmark.pedantic(three_point_parameters, args=(batch,), rounds=3, iterations=1)
    fft = benchmark.stats.stats.mean / len(batch)
    start = time.perf_counter()
    three_point_quadrature(slices128[:2], r_max=32, n_samples=10_000, seed=0)
    quad = (time.perf_counter() - start) / 2
    benchmark.extra_info.update({"fft_s_per_image": fft, "quadrature_s_per_image": quad, "speedup": quad / fft})
    print(f"\nFFT {fft * 1e3:.2f} ms/img, quadrature {quad:.1f} s/img, speed-up {quad / fft:.0f}")


def test_label_kernel_against_the_scipy_path(benchmark, slices128):
    """label(d=3, periodic=False) on the compiled kernel >= 3x the SciPy array operations of
    before (issue 19), medians of interleaved rounds in one process; periodic reported."""
    from microvae.bench import Context, interleaved
    from microvae.properties._engines import NumpyOps
    from microvae.properties.label import label_batch

    batch = slices128[:128]

    def before(periodic):
        return lambda: label_batch(batch, 2, 3, 4.3, 3.8, 1.0, periodic, None, True, None, None,
                                    ops=NumpyOps(None))
    funcs = {"kernel, non-periodic": (lambda: label(batch, periodic=False), "cpu"),
             "before, non-periodic": (before(False), "cpu"),
             "kernel, periodic": (lambda: label(batch), "cpu"),
             "before, periodic": (before(True), "cpu")}
    seconds = benchmark.pedantic(lambda: interleaved(funcs, Context(rounds=5)), rounds=1, iterations=1)
    rate = {name: len(batch) / np.median(secs) for name, secs in seconds.items()}
    ratios = {p: rate[f"kernel, {p}"] / rate[f"before, {p}"] for p in ("non-periodic", "periodic")}
    benchmark.extra_info.update({**rate, **{f"speed-up {p}": r for p, r in ratios.items()}})
    print(f"\nlabel 128², images/s: {rate}; speed-up over the SciPy path: {ratios}")
    assert ratios["non-periodic"] >= 3


_VOLUME_SCRIPT = """
import json, resource, time
from microvae import synthetic
from microvae.properties import label
vol = synthetic.overlapping_spheres((128, 128, 128), 8, 0.2, n=1, seed=0)
label(synthetic.overlapping_spheres((16, 16, 16), 3, 0.3, n=1, seed=0))  # imports, JIT
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = label(vol)
first = time.perf_counter() - start
start = time.perf_counter()
label(vol)
again = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"first_s": first, "cached_s": again, "peak_rss_mib": peak / 1024,
                  "rss_increase_mib": (peak - base) / 1024, "zeta2": float(out["zeta2"][0])}))
"""


def test_volume_128_labels(benchmark):
    """One 128³ volume: time (first call builds the cached spherical-harmonic multipliers)
    and peak memory, in a fresh process."""
    def run():
        proc = subprocess.run([sys.executable, "-c", _VOLUME_SCRIPT], capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    info = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)
    print(f"\n128^3 volume: {info['first_s']:.1f} s first call, {info['cached_s']:.1f} s cached, "
          f"peak RSS {info['peak_rss_mib']:.0f} MiB (+{info['rss_increase_mib']:.0f} MiB for labeling)")
