"""Multi-process training under torchrun: the device of a process, the process group, and the
collection of every process's random-generator state for the checkpoint.

Launched with ``torchrun --nproc_per_node=G --no-python microvae train ...`` (or
:func:`microvae.vae.train_vae` called under torchrun), each process takes ``batch_size / G``
images per step, ``DistributedDataParallel`` averages the gradients (NCCL on GPUs, gloo on
CPUs), and rank 0 writes the files.
"""
import os

import torch
import torch.distributed as dist

__all__ = ["pick_device", "init_distributed", "gather_states"]


def pick_device(device: str | torch.device | None) -> torch.device:
    """``device``, or by default the ``LOCAL_RANK`` GPU under torchrun (GPU 0 alone) if CUDA is
    available, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init_distributed(device: torch.device) -> tuple[int, int, bool]:
    """``(rank, world_size, owned)``: join the torchrun process group if launched under torchrun
    (NCCL for a CUDA ``device``, else gloo). ``owned``: this call created the group, and its
    caller destroys it; a group the caller had already initialized is used as it is."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    return 0, 1, False


def gather_states(state: torch.Tensor, *, device: torch.device, world: int) -> list[torch.Tensor]:
    """Every process's ``state`` (a CPU tensor of the same shape on each), on every process, in
    rank order; collective: all ``world`` processes must call it."""
    if world == 1:
        return [state]
    # NCCL gathers CUDA tensors only; gloo takes CPU ones (device is then the CPU).
    local = state.to(device)
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    return [p.cpu() for p in parts]
