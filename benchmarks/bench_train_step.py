"""One full VAE training step (forward, all loss terms, backward, Adam) on the CPU, for the
``quick`` and ``paper`` presets, with the speed options of :class:`microvae.vae.TrainConfig`:

- ``default``: float32, compiled fused losses (``backend="auto"``), authentic Grams cached;
- ``eager_losses``: the same with the pure-torch losses (``backend="torch"``);
- ``channels_last``: NHWC memory format for the VAE and the style network;
- ``bf16``: bfloat16 autocast of the style network's forward (Grams still in float32).

    python -m pytest benchmarks/bench_train_step.py --benchmark-only -o addopts="" \\
        --benchmark-group-by=param:preset --benchmark-columns=min,mean,stddev,rounds

Where the time goes (torch profiler, top operators of a few steps):

    python benchmarks/bench_train_step.py quick
"""
import sys

import pytest
import torch

from microvae.bench.training import train_session as session

VARIANTS = {"default": {}, "eager_losses": {"backend": "torch"}, "channels_last": {"channels_last": True},
            "bf16": {"bf16": True}}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_train_step(benchmark, preset, variant):
    if variant == "bf16" and preset == "paper" and not (torch.cpu._is_avx512_bf16_supported()
                                                        or torch.cpu._is_amx_tile_supported()):
        pytest.skip("no native bfloat16 on this CPU: emulated, minutes per paper-size step")
    s = session(preset, **VARIANTS[variant])
    s.step()  # warm-up: allocator, oneDNN primitive caches
    terms = benchmark.pedantic(s.step, rounds=5 if preset == "quick" else 3)
    assert torch.isfinite(terms["loss"])


def profile(preset, steps=3):
    s = session(preset)
    s.step()
    with torch.profiler.profile() as prof:
        for _ in range(steps):
            s.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    profile(sys.argv[1] if len(sys.argv) > 1 else "quick")
