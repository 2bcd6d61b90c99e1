"""The run folder of a VAE training run: its rules, the checkpoint and the metrics log.

A run folder holds ``config.json`` (settings, data fingerprint, provenance), ``checkpoint.pt``
(model, optimizer, step, config, the random-generator state of every process, the data and
style-network fingerprints and the final sample check; replaced atomically),
``metrics.jsonl`` (loss terms averaged over each logging interval) and ``samples/step_*.png``
(mosaics of images decoded from a fixed set of prior draws). A new run refuses a non-empty
folder; a resumed run must match the checkpoint's data, seed, style network and settings other
than :data:`RESUMABLE_CHANGES`.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, jsonable, provenance
from .config import TrainConfig

__all__ = ["CHECKPOINT", "RESUMABLE_CHANGES", "load_checkpoint", "save_checkpoint", "check_resumable",
           "data_fingerprint", "prepare_run_dir", "append_metrics", "truncate_metrics"]

CHECKPOINT = "checkpoint.pt"
_FORMAT = "microvae-vae-checkpoint"
_FORMAT_VERSION = 1

# Settings that may change when a run is resumed: its length, how often it reports, and sampling.
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "sample_every", "backend", "sample_latent",
                               "sample_smooth"})


def data_fingerprint(images: np.ndarray) -> dict[str, Any]:
    """Count, image shape and SHA-256 of the training images, to recognize them on resume."""
    return {"n": int(images.shape[0]), "shape": list(images.shape[1:]),
            "sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()}


def prepare_run_dir(run_dir: Path, *, resume: bool, rank: int, overwrite: bool = False) -> None:
    """Check the run folder against ``resume``/``overwrite`` and make it (rank 0; ``overwrite``
    clears a run folder first, and is ignored with ``resume``); the messages name the option that
    fits the folder (a run stopped before its first checkpoint can only start afresh)."""
    has_checkpoint = (run_dir / CHECKPOINT).is_file()
    if resume:
        if not has_checkpoint:
            hint = ("the run stopped before its first checkpoint: start it afresh with overwrite=True (--overwrite)"
                    if (run_dir / "config.json").is_file() else "is it the folder of a microvae train run?")
            raise FileNotFoundError(f"cannot resume: {run_dir / CHECKPOINT} does not exist; {hint}")
    elif rank == 0:
        if run_dir.exists() and not run_dir.is_dir():
            raise FileExistsError(f"{run_dir} exists and is not a folder; choose another run folder")
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                hint = ("resume=True (--resume) to continue it or overwrite=True (--overwrite) to start afresh"
                        if has_checkpoint else "it holds no checkpoint to resume from (the run stopped before "
                        "its first one): overwrite=True (--overwrite) starts it afresh")
                raise FileExistsError(f"{run_dir} exists and is not empty; choose a new run folder, or {hint}")
            if not (run_dir / "config.json").is_file():
                # Never delete a folder that is not a run folder, whatever the flag says.
                raise FileExistsError(f"{run_dir} is not empty and holds no microvae run (no config.json); "
                                      "overwrite=True (--overwrite) replaces run folders only: choose another folder")
            for p in run_dir.iterdir():
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)


def save_checkpoint(path: Path, *, vae: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    config: TrainConfig, seed: int, rng: list[torch.Tensor], fingerprint: dict[str, Any],
                    style_fingerprint: str | None, samples: dict[str, Any]) -> None:
    """Write the checkpoint atomically (``rng``: the generator state of every process;
    ``samples``: the sample check as a plain dict, :meth:`SampleCheck.to_dict`)."""
    state = {"format": _FORMAT, "version": _FORMAT_VERSION, "step": int(step), "seed": int(seed),
             "config": config.to_dict(), "model": vae.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": rng, "data": fingerprint, "style_fingerprint": style_fingerprint, "samples": dict(samples),
             "provenance": provenance({"seed": int(seed)})}
    atomic_write(path, lambda fh: torch.save(state, fh), overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a training checkpoint (a dict; see :func:`~microvae.vae.train_vae`)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a microvae VAE checkpoint")
    if ckpt.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {ckpt.get('version')} is not supported "
                         f"(this microvae reads version {_FORMAT_VERSION})")
    missing = {"step", "config", "model", "optimizer", "rng", "data"} - set(ckpt)
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {sorted(missing)} (corrupt?)")
    return ckpt


def check_resumable(ckpt: dict[str, Any], config: TrainConfig, *, seed: int, fingerprint: dict[str, Any],
                    style_fingerprint: str | None, world: int) -> None:
    """Raise ``ValueError`` unless the run of ``ckpt`` can continue with these settings, seed,
    data, style network and number of processes."""
    saved = TrainConfig(**ckpt["config"]).to_dict()
    diff = {k: (saved[k], v) for k, v in config.to_dict().items()
            if k not in RESUMABLE_CHANGES and saved.get(k) != v}
    if diff:
        raise ValueError("cannot resume with different settings (checkpoint, now): "
                         + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items()))
    if ckpt.get("seed") != seed:
        raise ValueError(f"cannot resume: the run used seed={ckpt.get('seed')}, got seed={seed}")
    if ckpt["data"] != fingerprint:
        raise ValueError(f"cannot resume: the training images differ from the run's ({ckpt['data']['n']} images "
                         f"of {ckpt['data']['shape']}, sha256 {ckpt['data']['sha256'][:12]}...)")
    if ckpt.get("style_fingerprint") != style_fingerprint:
        raise ValueError("cannot resume: the style network's weights differ from the run's")
    if len(ckpt["rng"]) != world:
        raise ValueError(f"cannot resume a {len(ckpt['rng'])}-process run with {world} processes")


def append_metrics(path: Path, row: dict[str, float]) -> None:
    """Append one row to the metrics log (JSON lines)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(jsonable(row)) + "\n")


def truncate_metrics(path: Path, step: int) -> list[dict[str, float]]:
    """Rows logged up to ``step`` (dropping those of steps after the checkpoint), rewritten atomically."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= step]
    atomic_write(path, lambda fh: fh.write("".join(json.dumps(jsonable(r)) + "\n" for r in rows)), overwrite=True,
                 mode="w")
    return rows
