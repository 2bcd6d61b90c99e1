"""The run folder of a VAE training run: its rules, the checkpoint and the metrics log.

A run folder holds ``config.json`` (settings, data fingerprint, provenance), ``checkpoint.pt``
(model, optimizer, step, config, the random-generator state of every process, the data and
style-network fingerprints and the final sample check; replaced atomically),
``metrics.jsonl`` (loss terms averaged over each logging interval) and ``samples/step_*.png``
(mosaics of images decoded from a fixed set of prior draws), plus the marker that makes it a run
folder (:mod:`microvae.io.folders`). A new run refuses a non-empty folder; a resumed run must
match the checkpoint's data, seed, style network and settings other than
:data:`RESUMABLE_CHANGES`; ``overwrite`` empties only a run folder, and only of :data:`RUN_FILES`.

Run folders made before the marker existed are taken as run folders when their ``config.json``
is one a run wrote (settings under ``"config"``, with the microvae version) and every entry is
one of :data:`RUN_FILES`; they are marked then. A folder with anything else in it is never
resumed into or emptied.
"""
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..io import atomic_write, folders, jsonable, provenance
from ..nn.safe_load import load_torch_file
from .config import TrainConfig

__all__ = ["CHECKPOINT", "RUN_FILES", "RESUMABLE_CHANGES", "load_checkpoint", "checkpoint_config", "save_checkpoint",
           "check_resumable", "data_fingerprint", "prepare_run_dir", "append_metrics", "truncate_metrics",
           "read_metrics"]

CHECKPOINT = "checkpoint.pt"
#: What a training run writes in its folder; ``overwrite`` removes these and nothing else.
RUN_FILES = ("config.json", CHECKPOINT, "metrics.jsonl", "samples")
_KIND = "vae-run"
_FORMAT = "microvae-vae-checkpoint"
_FORMAT_VERSION = 1

# Settings that may change when a run is resumed: its length, how often it reports, sampling, and
# the learning rate (the way on after a divergence: resume the last checkpoint with a lower one).
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "sample_every", "backend", "sample_latent",
                               "sample_smooth", "lr"})


def data_fingerprint(images: np.ndarray) -> dict[str, Any]:
    """Count, image shape and SHA-256 of the training images, to recognize them on resume."""
    return {"n": int(images.shape[0]), "shape": list(images.shape[1:]),
            "sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()}


def _written_by_a_run(run_dir):
    """Whether ``run_dir/config.json`` is one a training run wrote (for folders without the marker)."""
    try:
        written = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(written, dict) and isinstance(written.get("config"), dict) and "microvae_version" in written


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool = False) -> bool:
    """Make ``run_dir`` a run folder or check that it is one, against ``resume`` and ``overwrite``
    (rank 0 only). Nothing is removed here: ``overwrite`` is done by :func:`folders.clear` under
    the folder's lock.

    Returns
    -------
    bool
        True when the folder is new (created, or empty before): a run that fails before its
        first checkpoint removes it again.

    Raises
    ------
    FileExistsError
        A file, or a folder that is not a run folder (anything but :data:`RUN_FILES` in it, or a
        ``config.json`` no run wrote), or a run folder without ``resume``/``overwrite``.
    FileNotFoundError
        ``resume`` without a checkpoint to resume from.
    """
    if str(run_dir) == "-":
        raise ValueError("a run folder named '-' would be a folder called '-'; give a folder name")
    if resume and not (run_dir / CHECKPOINT).is_file():
        hint = ("the run stopped before its first checkpoint: start it afresh with overwrite=True (--overwrite)"
                if (run_dir / "config.json").is_file() else "is it the folder of a microvae train run?")
        raise FileNotFoundError(f"cannot resume: {run_dir / CHECKPOINT} does not exist; {hint}")
    new = folders.claim(run_dir, _KIND, names=RUN_FILES, legacy=_written_by_a_run, what="run")
    if not new and not resume and not overwrite and any(p.name in RUN_FILES for p in run_dir.iterdir()):
        hint = ("resume=True (--resume) to continue it or overwrite=True (--overwrite) to start afresh"
                if (run_dir / CHECKPOINT).is_file() else "it holds no checkpoint to resume from (the run stopped "
                "before its first one): overwrite=True (--overwrite) starts it afresh")
        raise FileExistsError(f"{run_dir} exists and is not empty (a training run); choose a new run folder, or "
                              f"{hint}")
    return new


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
    """Read and validate a training checkpoint (a dict; see :func:`~microvae.vae.train_vae`).
    Its settings, as a :class:`TrainConfig`, are :func:`checkpoint_config`."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = load_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a microvae VAE checkpoint")
    if ckpt.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {ckpt.get('version')} (written by {_writer(ckpt)}) is "
                         f"not supported; this microvae {__version__} reads version {_FORMAT_VERSION}: use the "
                         "version that wrote it")
    missing = {"step", "config", "model", "optimizer", "rng", "data"} - set(ckpt)
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {sorted(missing)} (corrupt?)")
    ckpt["path"] = str(path)
    return ckpt


def _writer(ckpt):
    version = (ckpt.get("provenance") or {}).get("microvae_version") if isinstance(ckpt, dict) else None
    return f"microvae {version}" if version else "an unknown microvae"


def checkpoint_config(ckpt: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint was trained with.

    Raises
    ------
    ValueError
        Settings this version does not know (the checkpoint of a newer microvae), named with
        the version that wrote it. Settings added since the checkpoint was written take their
        defaults.
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(ckpt["config"]) - known)
    if unknown:
        raise ValueError(f"{ckpt.get('path', 'the checkpoint')} was written by {_writer(ckpt)} with settings this "
                         f"microvae {__version__} does not know ({', '.join(unknown)}); sample or resume it with the "
                         "version that wrote it")
    return TrainConfig(**ckpt["config"])


def check_resumable(ckpt: dict[str, Any], config: TrainConfig, *, seed: int, fingerprint: dict[str, Any],
                    style_fingerprint: str | None, world: int) -> None:
    """Raise ``ValueError`` unless the run of ``ckpt`` can continue with these settings, seed,
    data, style network and number of processes."""
    saved = checkpoint_config(ckpt).to_dict()
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
    """Append one row to the metrics log (JSON lines), in one write: a process killed meanwhile
    leaves at most a cut last line, which :func:`read_metrics` drops."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (json.dumps(jsonable(row)) + "\n").encode())
    finally:
        os.close(fd)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a metrics log. A last line cut short (the run was killed while appending it)
    is dropped; a damaged line elsewhere is refused with the file and line named."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError("not a row with a step")
        except ValueError:
            if number == len(lines):  # no newline after it: the append that never finished
                break
            raise ValueError(f"{path} line {number} is damaged (not a JSON row with a step); remove that line (or "
                             "the file, losing the loss history) to resume") from None
        rows.append(row)
    return rows


def truncate_metrics(path: Path, step: int) -> list[dict[str, float]]:
    """Rows logged up to ``step`` (dropping those of steps after the checkpoint, and a cut last
    line), rewritten atomically."""
    if not path.exists():
        return []
    rows = [r for r in read_metrics(path) if r["step"] <= step]
    atomic_write(path, lambda fh: fh.write("".join(json.dumps(jsonable(r)) + "\n" for r in rows)), overwrite=True,
                 mode="w")
    return rows
