"""Benchmark cases of the torch side for ``microvae bench`` (registered in
:mod:`microvae.bench.registry`), and their setup, shared with the pytest benchmarks ``benchmarks/bench_losses.py`` and
``benchmarks/bench_train_step.py``:

- ``losses``: style + mode-collapse loss, forward and backward, three ways: the naive eager
  composition (separate losses, each computing its own Grams), the best pure-torch version a
  user could write (Grams shared by both losses, one backward; in a full run also under
  ``torch.compile``), and the fused compiled ops;
- ``train_step``: one full VAE training step (quick preset) with the fused and the eager losses;
- ``concurrent``: throughput of two training jobs running at once against one alone, with the
  libraries' default threading and with microvae's (:mod:`microvae.threads`).
"""
import json
import os
import subprocess
import sys
import time

from .registry import case, row, timed

# (channels, downsampling) of VGG16's relu1_2 .. relu4_3, the layers the style network uses.
VGG_BLOCKS = ((64, 1), (128, 2), (256, 4), (512, 8))
LOSS_BATCH = 20


def loss_features(size, device="cpu", seed=0, batch=LOSS_BATCH, blocks=VGG_BLOCKS):
    """Style-network-like features of a batch at input size ``size``: one ``(B, C, H, W)`` per
    block. ReLU features are non-negative, so their Grams are nearly parallel, as in a real style
    network (the regime where the mode-collapse loss matters)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, c, size // d, size // d, generator=gen).to(device) for c, d in blocks]


def naive_eager(gen, ref):
    """Separate losses as a user composes them: each computes its own Grams (pure torch)."""
    from ..nn import losses

    return losses.style_loss(gen, ref, backend="torch"), losses.mode_collapse_loss(gen, backend="torch")


def shared_torch(gen, ref):
    """The best pure-torch version: one Gram per layer shared by both losses, one backward."""
    from ..nn import losses

    return losses.style_and_mode_collapse(gen, ref, backend="torch")


def fused(gen, ref):
    """The compiled ops: one GEMM per layer forward, one backward GEMM for both losses."""
    from ..nn import losses

    return losses.style_and_mode_collapse(gen, ref, backend="auto")


LOSS_IMPLS = {"naive eager (separate losses)": naive_eager, "pure torch, shared Grams": shared_torch,
              "fused compiled ops": fused}


def loss_step(impl, gen, ref, device="cpu"):
    """A callable running forward + backward of ``impl`` once; returns the two loss values."""
    def run():
        for f in gen:
            f.grad = None
        st, mc = impl(gen, ref)
        (st + mc).backward()
        if device == "cuda":
            import torch

            torch.cuda.synchronize()
        return st.item(), mc.item()

    return run


def train_session(preset="quick", device="cpu", **overrides):
    """A ready :class:`microvae.vae.Trainer` on 40 Gaussian random fields of the preset's size."""
    import torch

    from ..synthetic import gaussian_random_field
    from ..vae import Trainer, load_config

    config = load_config(preset, **overrides)
    images = gaussian_random_field((config.image_size,) * 2, corr_length=3.0, porosity=0.2, n=40, seed=0)
    return Trainer(images, config, seed=0, device=torch.device(device))


@case("losses", "style + mode-collapse loss fwd+bwd, batch 20, VGG16 layer shapes: naive eager, shared-Gram "
                "torch, fused ops")
def bench_losses(ctx):
    import torch

    from ..nn import losses

    rows = []
    impls = dict(LOSS_IMPLS)
    if not ctx.quick:
        impls["pure torch, shared Grams, torch.compile"] = torch.compile(shared_torch)
    for device in ctx.devices:
        for size in (64,) if ctx.quick else (64, 128):
            gen = [f.requires_grad_() for f in loss_features(size, device, 0)]
            # Authentic Grams are fixed during training and cached, as the trainer does.
            ref = [g.detach() for g in losses.gram_matrices(loss_features(size, device, 1), backend="torch")]
            values, base = {}, f"naive eager (separate losses), {device} {size}²"
            for name, impl in impls.items():
                run = loss_step(impl, gen, ref, device)
                values[name] = run()
                rows.append(row(f"{name}, {device} {size}²", LOSS_BATCH, timed(run, ctx, device),
                                baseline=None if name.startswith("naive") else base))
            ref_st, ref_mc = values["naive eager (separate losses)"]
            for name, (st, mc) in values.items():  # all compute the same losses
                if abs(st - ref_st) > 1e-4 * abs(ref_st) or abs(mc - ref_mc) > 1e-4 * abs(ref_mc):
                    raise RuntimeError(f"bench losses: {name} gives ({st}, {mc}), naive eager ({ref_st}, {ref_mc})")
    return rows


@case("train_step", "one VAE training step (CPU; quick preset, and paper in a full run): fused vs eager losses")
def bench_train_step(ctx):
    rows = []
    for preset in ("quick",) if ctx.quick else ("quick", "paper"):
        base = f"train step {preset}, eager losses (backend=torch)"
        for name, overrides in ((base, {"backend": "torch"}), (f"train step {preset}, fused losses (default)", {})):
            session = train_session(preset, **overrides)
            rows.append(row(name, 1, timed(session.step, ctx), unit="steps/s",
                            baseline=None if name == base else base))
    return rows


# ---------------------------------------------------------------------------- concurrent jobs

# One job of the ``concurrent`` case. With the library defaults torch (and its OpenMP runtime) is
# loaded before microvae, so none of microvae's thread settings reach it.
_JOB = {c: f"import sys, {first}; from microvae.bench.training import _job; _job(float(sys.argv[1]), {mine})"
        for c, first, mine in (("library defaults", "torch", False), ("microvae defaults", "microvae", True))}
_THREAD_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MICROVAE_NUM_THREADS")


def _start_job(threading, seconds):
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}  # as a fresh shell would
    return subprocess.Popen([sys.executable, "-c", _JOB[threading], str(seconds)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def _release(procs):
    """Let warm jobs train at the same time; returns total steps/s and the slowest s/step."""
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.stdout.readline()) for p in procs]
    return sum(r["steps"] / r["seconds"] for r in results), max(r["seconds"] / r["steps"] for r in results)


@case("concurrent", "two VAE training jobs at once vs one alone (quick preset, CPU), library vs microvae threading")
def bench_concurrent(ctx):
    seconds = 5 if ctx.quick else 20
    configs = ("library defaults", "microvae defaults")
    # All jobs warm up together (that is the slow part) and then wait, idle, for their turn: each
    # configuration alone and in pairs, in the order ABCD then DCBA, so that a load from anything
    # else on the machine that drifts during the run weighs on every configuration alike.
    jobs = {(c, n): [_start_job(c, seconds) for _ in range(n)] for c in configs for n in (1, 2)}
    order = sorted(jobs, key=lambda key: key[1])
    try:
        for procs in jobs.values():
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"bench concurrent: a training job failed to start (exit {p.wait()})")
        windows = [(key, _release(jobs[key])) for key in order + order[::-1]]
    finally:
        for procs in jobs.values():
            for p in procs:
                p.stdin.close()
                p.wait()
    measured = {key: [sum(w[i] for k, w in windows if k == key) / 2 for i in (0, 1)] for key in jobs}
    rows = []
    for c in configs:
        (one, alone), (two, paired) = measured[(c, 1)], measured[(c, 2)]
        base = f"1 job, {c}"
        rows.append(row(base, one, 1.0, unit="steps/s", s_per_step=alone,
                        baseline=None if c == configs[0] else f"1 job, {configs[0]}"))
        rows.append(row(f"2 jobs at once (total), {c}", two, 1.0, unit="steps/s", s_per_step=paired, baseline=base))
    return rows


def _job(seconds, microvae_threads):
    """One job of the ``concurrent`` case: warm up, say ``ready``, then for each ``go`` line train
    for ``seconds`` and print the step count as JSON."""
    if microvae_threads:
        from .. import threads

        threads.set_threads()
    session = train_session("quick")
    session.step()
    print("ready", flush=True)
    for _ in sys.stdin:  # one window per "go" line, until the parent closes stdin
        steps, start = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - start < seconds:
            session.step()
            steps += 1
        print(json.dumps({"steps": steps, "seconds": time.perf_counter() - start}), flush=True)
