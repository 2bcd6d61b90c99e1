"""MRF sampling speed: the compiled raster scan vs a per-pixel Python loop over scikit-learn's
``predict_proba`` (the way public re-implementations of Bostanabad et al. sample), and the fit.

Run: .venv/bin/python -m pytest benchmarks/bench_mrf.py --benchmark-only -o addopts=""

The model is fitted on 200 Berea 128^2 slices when ../shared/data is present (otherwise on 200
Gaussian-random-field images of the same size and porosity, noted in the output). Images/s and
the speed-up ratio are recorded in each benchmark's extra_info and printed by the last test,
which times both samplers back to back in one process so the ratio holds on a loaded machine.
"""
import os
import time
from pathlib import Path

import pytest

from microvae.mrf import MRF
from microvae.mrf.reference import sample_reference

DATA = Path(os.environ.get("MICROVAE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
N_FAST = 64


@pytest.fixture(scope="module")
def training():
    if (DATA / "berea.zip").exists():
        from microvae.io import load, slices

        return "berea", slices(load(DATA / "berea.zip", pore_value=0), 128, 200, seed=0)
    from microvae.synthetic import gaussian_random_field

    return "grf", gaussian_random_field((128, 128), 4.0, 0.2, n=200, seed=0)


@pytest.fixture(scope="module")
def model(training):
    m = MRF(S=5).fit(training[1], seed=0)
    m.sample(2, seed=0)  # JIT compilation (or cache load) outside the timings
    m.sample(2, seed=0, gibbs_sweeps=1, porosity=0.2)
    return m


def _info(benchmark, training, n_images):
    benchmark.extra_info.update(data=training[0], images_per_round=n_images,
                                images_per_s=n_images / benchmark.stats.stats.mean, load_avg=os.getloadavg()[0])


def test_sample_compiled(benchmark, model, training):
    out = benchmark(model.sample, N_FAST, 128, 1)
    assert out.shape == (N_FAST, 128, 128)
    _info(benchmark, training, N_FAST)


def test_sample_compiled_gibbs_and_porosity_matching(benchmark, model, training):
    benchmark(model.sample, N_FAST, 128, 1, gibbs_sweeps=1, porosity="train")
    _info(benchmark, training, N_FAST)


def test_sample_python_loop_predict_proba(benchmark, model, training):
    out = benchmark.pedantic(sample_reference, args=(model, 1, 128, 1), rounds=2, iterations=1)
    assert out.shape == (1, 128, 128)
    _info(benchmark, training, 1)


def test_fit_default_with_cross_validation(benchmark, training):
    cpu = time.process_time()
    fitted = benchmark.pedantic(lambda: MRF().fit(training[1], seed=0), rounds=1, iterations=1)
    cpu = time.process_time() - cpu
    benchmark.extra_info.update(data=training[0], S=fitted.S_, cpu_seconds=cpu, load_avg=os.getloadavg()[0])
    print(f"\nMRF default fit on 200 {training[0]} images: S = {fitted.S_}, "
          f"{benchmark.stats.stats.mean:.0f} s wall, {cpu:.0f} s CPU, load {os.getloadavg()[0]:.1f}")


def test_speedup_ratio_in_one_run(benchmark, model, training):
    """Both samplers back to back; the compiled one must be >= 100x faster per image."""
    def ratio():
        t0 = time.perf_counter()
        sample_reference(model, 1, 128, 2)
        slow = time.perf_counter() - t0
        fast = min(_timed(model.sample, N_FAST, 128, 2) for _ in range(3)) / N_FAST
        return slow, fast

    slow, fast = benchmark.pedantic(ratio, rounds=1, iterations=1)
    benchmark.extra_info.update(data=training[0], python_loop_images_per_s=1 / slow, compiled_images_per_s=1 / fast,
                                speedup=slow / fast, load_avg=os.getloadavg()[0])
    print(f"\nMRF sampling, 128^2, S = {model.S_} ({training[0]}): compiled {1 / fast:.0f} img/s, "
          f"python loop {1 / slow:.3f} img/s, speed-up {slow / fast:.0f}x, load {os.getloadavg()[0]:.1f}")
    assert slow / fast >= 100


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0
