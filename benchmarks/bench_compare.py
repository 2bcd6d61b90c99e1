"""Fidelity comparison throughput: the per-image descriptors of microvae.compare on 1000 images
of 64², the size the VAE ablations compare many times.

Target (2-core machine): describing a set runs at >= 300 images/s, so that
``compare_sets(authentic, generated)`` on 1000 + 1000 images takes a few seconds and, with the
authentic descriptors computed once (:func:`microvae.compare.describe`), each further generated
set of 1000 images takes under ~3 s. The C2 part is reported on its own (the largest share).
"""
import pytest

from microvae import morphology
from microvae.compare import compare_sets, describe
from microvae.synthetic import gaussian_random_field

from .conftest import measure

N_IMAGES = 1000


@pytest.fixture(scope="module")
def sets():
    return (gaussian_random_field((64, 64), 4.0, 0.3, n=N_IMAGES, seed=0),
            gaussian_random_field((64, 64), 3.0, 0.25, n=N_IMAGES, seed=1))


def test_describe(benchmark, sets, throughput):
    rate = measure(benchmark, lambda: describe(sets[0]), N_IMAGES)
    throughput["describe, all descriptors (64², images/s; target >= 300)"] = rate
    assert rate >= 300


def test_compare_against_precomputed_authentic(benchmark, sets, throughput):
    auth = describe(sets[0])
    rate = measure(benchmark, lambda: compare_sets(auth, {"generated": sets[1]}), N_IMAGES)
    throughput["compare_sets, authentic described once (64², generated images/s)"] = rate


def test_cluster_function(benchmark, sets, throughput):
    throughput["cluster_function C2 (64², images/s)"] = measure(
        benchmark, lambda: morphology.cluster_function(sets[0]), N_IMAGES)
