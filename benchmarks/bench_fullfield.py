"""Full-field solvers: seconds per volume for De/D2 (taufactor), the elastic moduli (FFT CG) and
k (Stokes, mirrored crops), against the strong-contrast labels of the same volume, plus the
solvers' convergence with resolution (the same medium rendered at 2x finer voxels).

Run: .venv/bin/python -m pytest benchmarks/bench_fullfield.py --benchmark-only -o addopts="" -s
Each test prints volumes/s; the label-vs-solver ratio is measured in one run on the same volume.
The Berea comparison (64³ subvolumes, the report) is benchmarks/labels_vs_fullfield.py.
"""
import math

import numpy as np
import pytest
import torch

from microvae import synthetic
from microvae.fullfield import percolates, solve_diffusivity, solve_elastic_moduli, solve_permeability
from microvae.properties import label

from .conftest import measure


@pytest.fixture(scope="module")
def volume():
    # A Berea-like porosity whose pore space spans every axis (at 0.2 this field does not, and
    # the diffusion solve would be skipped); 32³ keeps a round under a minute on one core.
    vol = synthetic.gaussian_random_field((32, 32, 32), 3.0, 0.25, seed=0)[0]
    assert all(percolates(vol, a) for a in range(3))
    return vol


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_diffusivity_taufactor(benchmark, volume, throughput):
    throughput["full-field De/D2, 3 axes (32³ volumes/s)"] = measure(
        benchmark, lambda: solve_diffusivity(volume), 1, 2)


def test_elastic_moduli(benchmark, volume, throughput):
    throughput["full-field elasticity, 6 load cases (32³ volumes/s)"] = measure(
        benchmark, lambda: solve_elastic_moduli(volume, tol=1e-2, dtype=torch.float32), 1, 2)


def test_permeability(benchmark, volume, throughput):
    throughput["full-field Stokes k, 3 axes mirrored (32³ volumes/s)"] = measure(
        benchmark, lambda: solve_permeability(volume, periodic=False, tol=1e-2, dtype=torch.float32), 1, 2)


def test_strong_contrast_labels_same_volume(benchmark, volume, throughput):
    rate = measure(benchmark, lambda: label(volume[None], d=3, periodic=False), 1, 2)
    throughput["strong-contrast labels, 3D statistics (32³ volumes/s)"] = rate


def test_convergence_with_resolution(benchmark):
    """The same periodic sphere array rendered at 4, 8 and 16 voxels per radius: moduli and k
    change less at each refinement (printed), the k error against Sangani & Acrivos falls."""
    rows = []

    def run():
        rows.clear()
        for radius, n in ((4, 16), (8, 32), (16, 64)):
            x = np.indices((n,) * 3) - (n - 1) / 2
            solid = np.sqrt((x ** 2).sum(0)) < radius  # c = 4π/3 · (1/4)³ ≈ 0.065
            img = (~solid).astype(np.uint8)
            c = 1 - img.mean()
            k = solve_permeability(img, axes=(0,), tol=1e-4, dtype=torch.float32)["k"][0] / n ** 2
            a = (3 * c / (4 * math.pi)) ** (1 / 3)
            inv_K = 1 - 1.7601 * c ** (1 / 3) + c - 1.5593 * c ** 2 + 3.9799 * c ** (8 / 3) - 3.0734 * c ** (10 / 3)
            pores = solid.astype(np.uint8)  # the same geometry as spherical voids in rock
            e = solve_elastic_moduli(pores, tol=1e-4, dtype=torch.float32)["E_rel"]
            rows.append((radius, c, k, inv_K / (6 * math.pi * a), e))

    benchmark.pedantic(run, rounds=1, iterations=1)
    for radius, c, k, k_sa, e in rows:
        print(f"R = {radius:2d} px: c = {c:.4f}, k/L² = {k:.5f} (Sangani-Acrivos {k_sa:.5f}, "
              f"{k / k_sa - 1:+.3f}), E/E1 of the void array = {e:.4f}")
    errors = [abs(k / k_sa - 1) for _, _, k, k_sa, _ in rows]
    assert errors[-1] < errors[0]
