"""The PoreSpy / PyMKS drop-ins against the libraries themselves, in one run, on 128² images
(the options of `make bench`):

    .venv/bin/python -m pytest benchmarks/bench_compat.py --benchmark-only -p no:cacheprovider \\
        -o addopts="" --benchmark-columns=min,mean,stddev,rounds

Each pair times the same call on the same images (the peer first, then ours) and records
images/s and the ratio in the throughput table printed at the end (benchmarks/conftest.py).
Both libraries come with the test extra; a missing one skips its pair.
"""
import warnings

import dask
import numpy as np
import pytest

from microvae.compat import porespy as ps_compat
from microvae.compat import pymks as pymks_compat
from microvae.synthetic import gaussian_random_field

from .conftest import measure

N_IMAGES = 200
N_PORESPY = 40  # PoreSpy takes one image at a time


@pytest.fixture(scope="module")
def images():
    return gaussian_random_field((128, 128), 4.0, 0.3, n=N_IMAGES, seed=0).astype(bool)


@pytest.fixture(scope="module")
def porespy():
    return pytest.importorskip("porespy", reason="install the test extra")


@pytest.fixture(scope="module")
def pymks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources
        return pytest.importorskip("pymks", reason="install the test extra")


def record(throughput, name, rate, peer, ratio):
    """Store ``rate`` under ``name`` and, when ``peer`` was measured earlier in this run,
    ``rate / peer`` under ``ratio``."""
    throughput[name] = rate
    if peer in throughput:
        throughput[ratio] = rate / throughput[peer]


@pytest.fixture(autouse=True)
def _synchronous_dask():
    # PyMKS computes through Dask; its threaded scheduler would compete with the FFT threads.
    with dask.config.set(scheduler="synchronous"):
        yield


def test_porespy_two_point_correlation(benchmark, images, porespy, throughput):
    subset = images[:N_PORESPY]
    np.testing.assert_allclose(ps_compat.two_point_correlation(subset[0]).pdf,
                               porespy.metrics.two_point_correlation(subset[0]).pdf, atol=1e-10)
    throughput["PoreSpy 3.2 two_point_correlation (128², images/s)"] = measure(
        benchmark, lambda: [porespy.metrics.two_point_correlation(im) for im in subset], N_PORESPY, rounds=2)


def test_compat_porespy_one_at_a_time(benchmark, images, throughput):
    subset = images[:N_PORESPY]
    record(throughput, "compat.porespy two_point_correlation, one at a time (images/s)",
           measure(benchmark, lambda: [ps_compat.two_point_correlation(im) for im in subset], N_PORESPY),
           "PoreSpy 3.2 two_point_correlation (128², images/s)", "ratio compat.porespy / PoreSpy, one at a time")


def test_compat_porespy_batch(benchmark, images, throughput):
    record(throughput, "compat.porespy two_point_correlation_batch (images/s)",
           measure(benchmark, lambda: ps_compat.two_point_correlation_batch(images), N_IMAGES),
           "PoreSpy 3.2 two_point_correlation (128², images/s)", "ratio compat.porespy batch / PoreSpy")


@pytest.fixture(scope="module")
def chord_images(images):
    return [ps_compat.apply_chords(im) for im in images[:N_PORESPY]]


def test_porespy_apply_chords(benchmark, images, porespy, throughput):
    subset = images[:N_PORESPY]
    np.testing.assert_array_equal(ps_compat.apply_chords(subset[0]), porespy.filters.apply_chords(subset[0]))
    throughput["PoreSpy 3.2 apply_chords (images/s)"] = measure(
        benchmark, lambda: [porespy.filters.apply_chords(im) for im in subset], N_PORESPY, rounds=2)


def test_compat_porespy_apply_chords(benchmark, images, throughput):
    subset = images[:N_PORESPY]
    record(throughput, "compat.porespy apply_chords (images/s)",
           measure(benchmark, lambda: [ps_compat.apply_chords(im) for im in subset], N_PORESPY),
           "PoreSpy 3.2 apply_chords (images/s)", "ratio compat.porespy / PoreSpy apply_chords")


@pytest.mark.filterwarnings("ignore:.*filled_area:FutureWarning")  # PoreSpy reads a deprecated regionprops name
def test_porespy_chord_length_distribution(benchmark, chord_images, porespy, throughput):
    np.testing.assert_allclose(ps_compat.chord_length_distribution(chord_images[0]).pdf,
                               porespy.metrics.chord_length_distribution(chord_images[0]).pdf, atol=1e-10)
    throughput["PoreSpy 3.2 chord_length_distribution (images/s)"] = measure(
        benchmark, lambda: [porespy.metrics.chord_length_distribution(c) for c in chord_images], N_PORESPY,
        rounds=2)


def test_compat_porespy_chord_length_distribution(benchmark, chord_images, throughput):
    record(throughput, "compat.porespy chord_length_distribution (images/s)",
           measure(benchmark, lambda: [ps_compat.chord_length_distribution(c) for c in chord_images], N_PORESPY),
           "PoreSpy 3.2 chord_length_distribution (images/s)",
           "ratio compat.porespy / PoreSpy chord_length_distribution")


PAIRS = [(0, 0), (0, 1), (1, 1)]


@pytest.fixture(scope="module")
def fields(images):
    return images.astype(np.float64)


@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "nonperiodic"])
def test_pymks_two_point_stats(benchmark, fields, pymks, periodic, throughput):
    np.testing.assert_allclose(pymks_compat.two_point_stats(fields[:4], fields[:4], periodic_boundary=periodic),
                               pymks.two_point_stats(fields[:4], fields[:4], periodic_boundary=periodic), atol=1e-10)
    throughput[f"PyMKS 0.4.1 two_point_stats, periodic={periodic} (images/s)"] = measure(
        benchmark, lambda: pymks.two_point_stats(fields, fields, periodic_boundary=periodic), N_IMAGES)


@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "nonperiodic"])
def test_compat_pymks_two_point_stats(benchmark, fields, periodic, throughput):
    record(throughput, f"compat.pymks two_point_stats, periodic={periodic} (images/s)",
           measure(benchmark, lambda: pymks_compat.two_point_stats(fields, fields, periodic_boundary=periodic),
                   N_IMAGES),
           f"PyMKS 0.4.1 two_point_stats, periodic={periodic} (images/s)",
           f"ratio compat.pymks / PyMKS two_point_stats, periodic={periodic}")


def test_pymks_transformer(benchmark, fields, pymks, throughput):
    data = np.stack([fields, 1 - fields], axis=-1)
    throughput["PyMKS 0.4.1 TwoPointCorrelation, 3 pairs (images/s)"] = measure(
        benchmark, lambda: pymks.TwoPointCorrelation(correlations=PAIRS).transform(data), N_IMAGES)


def test_compat_pymks_transformer(benchmark, fields, throughput):
    data = np.stack([fields, 1 - fields], axis=-1)
    record(throughput, "compat.pymks TwoPointCorrelation, 3 pairs (images/s)",
           measure(benchmark, lambda: pymks_compat.TwoPointCorrelation(correlations=PAIRS).transform(data), N_IMAGES),
           "PyMKS 0.4.1 TwoPointCorrelation, 3 pairs (images/s)", "ratio compat.pymks / PyMKS TwoPointCorrelation")
