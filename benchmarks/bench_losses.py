"""Style + mode-collapse loss, forward and backward, for a batch of 20 over the feature shapes of
the four VGG16 blocks (relu1_2, relu2_2, relu3_3, relu4_3) at 64^2 and 128^2 input.

Compared in one run:
- ``eager``: what a user writes with the references, ``style_loss(..., backend="torch")`` plus
  ``mode_collapse_loss(..., backend="torch")`` (each computes its own Grams; autograd
  differentiates both ``bmm`` operands);
- ``fused``: ``style_and_mode_collapse(..., backend="auto")``, the compiled ops (one Gram GEMM per
  layer shared by both losses, one GEMM in the backward).

    python -m pytest benchmarks/bench_losses.py --benchmark-only -o addopts="" \\
        --benchmark-group-by=param:size,param:device --benchmark-columns=min,mean,stddev,rounds

or, without pytest-benchmark, a Markdown table with the speed-up (median of interleaved rounds):

    python benchmarks/bench_losses.py [--rounds 10]
"""
import argparse
import statistics
import time

import pytest
import torch

from microvae import ops
from microvae.nn import losses

BLOCKS = ((64, 1), (128, 2), (256, 4), (512, 8))  # (channels, downsampling) of relu1_2 .. relu4_3
BATCH = 20
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and ops.cuda_kernels_available() else [])


def feature_set(size, device, seed):
    gen = torch.Generator().manual_seed(seed)
    # ReLU features are non-negative; their Grams are then nearly parallel, as in a real style net.
    return [torch.rand(BATCH, c, size // d, size // d, generator=gen).to(device) for c, d in BLOCKS]


def make_run(impl, gen, ref, device):
    def run():
        for f in gen:
            f.grad = None
        st, mc = impl(gen, ref)
        (st + mc).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return st.item(), mc.item()

    return run


def eager(gen, ref):
    return (losses.style_loss(gen, ref, backend="torch"), losses.mode_collapse_loss(gen, backend="torch"))


def fused(gen, ref):
    return losses.style_and_mode_collapse(gen, ref, backend="auto")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", [eager, fused], ids=["eager", "fused"])
@pytest.mark.parametrize("size", [64, 128])
def test_style_and_mode_collapse_fwd_bwd(benchmark, size, impl, device):
    gen = [f.requires_grad_() for f in feature_set(size, device, 0)]
    ref = feature_set(size, device, 1)
    st, mc = benchmark.pedantic(make_run(impl, gen, ref, device), rounds=8 if device == "cpu" else 50,
                                warmup_rounds=1)
    # Both implementations compute the same losses; the check keeps the comparison honest.
    st_ref, mc_ref = eager(gen, ref)
    assert st == pytest.approx(st_ref.item(), rel=1e-4) and mc == pytest.approx(mc_ref.item(), rel=1e-4)


def main(argv=None):
    p = argparse.ArgumentParser(description="fused vs eager style + mode-collapse loss, forward + backward")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if "cuda" in DEVICES else ""))
    print("| device | input | eager (ms) | fused (ms) | speed-up |\n|---|---|---|---|---|")
    for device in DEVICES:
        for size in (64, 128):
            gen = [f.requires_grad_() for f in feature_set(size, device, 0)]
            ref = feature_set(size, device, 1)
            runs = {name: make_run(impl, gen, ref, device) for name, impl in (("eager", eager), ("fused", fused))}
            times = {name: [] for name in runs}
            for name, run in runs.items():
                run()  # warm-up
            for _ in range(args.rounds):  # interleaved, so both see the same machine load
                for name, run in runs.items():
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
            e, f = (1e3 * statistics.median(times[k]) for k in ("eager", "fused"))
            print(f"| {device} | {size}x{size} | {e:.1f} | {f:.1f} | {e / f:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
