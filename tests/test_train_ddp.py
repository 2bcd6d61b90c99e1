"""DistributedDataParallel training on CPU: 2 processes, gloo backend (the torchrun code path)."""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from microvae import vae as T

from test_train import TINY, blobs

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _worker(rank, world, tmp):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        result = T.train_vae(blobs(12), out_dir=f"{tmp}/run", seed=7, progress=False, **{**TINY, "steps": 4})
        torch.save([p.detach() for p in result.model.parameters()], f"{tmp}/params{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_gloo(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    p0, p1 = (torch.load(tmp_path / f"params{r}.pt") for r in (0, 1))
    for a, b in zip(p0, p1):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # gradients were averaged: replicas agree
    ckpt = T.load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 4 and len(ckpt["rng"]) == 2
    # The ranks drew different batches (one generator per rank).
    assert not torch.equal(ckpt["rng"][0], ckpt["rng"][1])
    saved = [v for v in ckpt["model"].values()]
    for a, b in zip(p0, saved):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # A single-process run of the same seed sees other batches, hence other weights.
    single = T.train_vae(blobs(12), out_dir=tmp_path / "single", seed=7, progress=False, **{**TINY, "steps": 4})
    assert not all(torch.equal(a, b.detach()) for a, b in zip(p0, single.model.parameters()))
    assert np.isfinite(single.history[-1]["loss"])
