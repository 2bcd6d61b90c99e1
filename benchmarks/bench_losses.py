"""Style + mode-collapse loss, forward and backward, for a batch of 20 over the feature shapes of
the four VGG16 blocks (relu1_2, relu2_2, relu3_3, relu4_3) at 64^2 and 128^2 input.

Compared in one run (setup and implementations in :mod:`microvae.bench.training`, shared with
``microvae bench``):
- ``eager``: what a user writes with the references, ``style_loss(..., backend="torch")`` plus
  ``mode_collapse_loss(..., backend="torch")`` (each computes its own Grams; autograd
  differentiates both ``bmm`` operands);
- ``shared``: the best pure-torch version, ``style_and_mode_collapse(..., backend="torch")`` (one
  Gram per layer for both losses, one backward);
- ``fused``: ``style_and_mode_collapse(..., backend="auto")``, the compiled ops (one Gram GEMM per
  layer shared by both losses, one GEMM in the backward).

    python -m pytest benchmarks/bench_losses.py --benchmark-only -o addopts="" \\
        --benchmark-group-by=param:size,param:device --benchmark-columns=min,mean,stddev,rounds

or, without pytest-benchmark, a Markdown table with the speed-ups (median of interleaved rounds):

    python benchmarks/bench_losses.py [--rounds 10]
"""
import argparse
import statistics
import time

import pytest
import torch

from microvae import ops
from microvae.bench.training import fused, loss_features, loss_step, naive_eager, shared_torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and ops.cuda_kernels_available() else [])
IMPLS = {"eager": naive_eager, "shared": shared_torch, "fused": fused}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("size", [64, 128])
def test_style_and_mode_collapse_fwd_bwd(benchmark, size, impl, device):
    gen = [f.requires_grad_() for f in loss_features(size, device, 0)]
    ref = loss_features(size, device, 1)
    st, mc = benchmark.pedantic(loss_step(IMPLS[impl], gen, ref, device), rounds=8 if device == "cpu" else 50,
                                warmup_rounds=1)
    # All implementations compute the same losses; the check keeps the comparison honest.
    st_ref, mc_ref = naive_eager(gen, ref)
    assert st == pytest.approx(st_ref.item(), rel=1e-4) and mc == pytest.approx(mc_ref.item(), rel=1e-4)


def main(argv=None):
    p = argparse.ArgumentParser(description="naive eager vs shared-Gram torch vs fused style + mode-collapse loss, "
                                            "forward + backward")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if "cuda" in DEVICES else ""))
    print("| device | input | naive eager (ms) | shared-Gram torch (ms) | fused (ms) | fused vs eager | "
          "fused vs shared |\n|---|---|---|---|---|---|---|")
    for device in DEVICES:
        for size in (64, 128):
            gen = [f.requires_grad_() for f in loss_features(size, device, 0)]
            ref = loss_features(size, device, 1)
            runs = {name: loss_step(impl, gen, ref, device) for name, impl in IMPLS.items()}
            times = {name: [] for name in runs}
            for run in runs.values():
                run()  # warm-up
            for _ in range(args.rounds):  # interleaved, so all see the same machine load
                for name, run in runs.items():
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
            e, s, f = (1e3 * statistics.median(times[k]) for k in IMPLS)
            print(f"| {device} | {size}x{size} | {e:.1f} | {s:.1f} | {f:.1f} | {e / f:.2f}x | {s / f:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
