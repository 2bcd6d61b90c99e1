"""The study's folder: marked as a study, locked while a study runs in it, atomic key-stamped
stage files, and the guard against mixing studies."""
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, folders, write_json

__all__ = ["RunDir", "STUDY_FILES", "log_stderr"]

#: What a study writes in its folder; ``overwrite`` removes these and nothing else.
STUDY_FILES = ("config.json", "authentic.npz", "labels", "models", "generated", "cells", "figures", "results.json",
               "report.md")


def _written_by_a_study(path):
    """Whether ``path/config.json`` is one a study wrote (for folders made before the marker)."""
    try:
        written = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(written, dict) and isinstance(written.get("keys"), dict) and "authentic" in written["keys"]
            and "digest" in written)


class RunDir:
    """Atomic, key-stamped files in the study's folder.

    The folder is a study folder (:mod:`microvae.io.folders`): new or empty, or one a study made
    (marked; or, made before the marker, holding nothing but :data:`STUDY_FILES` and a
    ``config.json`` a study wrote). On resume the folder must hold a study of the same authentic
    data, split and labels (otherwise nothing in it could be reused); every cached stage is then
    reused only if its key matches. ``new`` says whether this study made the folder.
    """

    CONFIG = "config.json"

    def __init__(self, path: str | os.PathLike, keys: dict[str, str], *, resume: bool, overwrite: bool):
        self.path, self.digest, self.resume = Path(path), keys["study"], resume
        config = self.path / self.CONFIG
        if resume and not config.is_file():
            raise FileNotFoundError(f"cannot resume: {self.path} holds no study ({self.CONFIG} missing); start it "
                                    "without resume=True (--resume)")
        self.new = folders.claim(self.path, "study", names=STUDY_FILES, legacy=_written_by_a_study, what="study")
        if config.exists():
            old = json.loads(config.read_text()).get("keys", {}).get("authentic")
            if resume and old != keys["authentic"]:
                raise ValueError(f"{self.path} holds a study of other authentic data, split or labels; choose "
                                 "another output folder, or --overwrite to replace it")
            if not resume and not overwrite:
                raise FileExistsError(f"{self.path} already holds a study; pass --resume to continue it "
                                      "or --overwrite to recompute it")
        # Cached stages and cells are trusted only on resume; otherwise they are recomputed.
        self.reuse = resume

    def file(self, *parts: str) -> Path:
        """Path of a file inside the run folder."""
        return self.path.joinpath(*parts)

    def write_json(self, rel: str, obj: object) -> Path:
        """Write ``obj`` to ``rel`` as standard JSON (:func:`microvae.io.write_json`: NaN becomes null)."""
        return write_json(self.file(rel), obj, overwrite=True)

    def read_json(self, rel: str, key: str) -> dict | None:
        """A finished stage file with this key, or ``None``."""
        path = self.file(rel)
        if not (self.reuse and path.exists()):
            return None
        obj = json.loads(path.read_text())
        return obj if obj.get("stage_key") == key else None

    def write_npz(self, rel: str, key: str, **arrays: np.ndarray) -> Path:
        """Write ``arrays`` and the stage ``key`` to ``rel`` in the run folder (atomic, replacing)."""
        contents: dict[str, Any] = {"key": key, **arrays}
        return atomic_write(self.file(rel), lambda fh: np.savez_compressed(fh, **contents), overwrite=True)

    def read_npz(self, rel: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays of a finished stage file with this key, or ``None``."""
        path = self.file(rel)
        if not (self.reuse and path.exists()):
            return None
        with np.load(path, allow_pickle=False) as npz:
            if "key" not in npz.files or str(npz["key"]) != key:
                return None
            return {k: npz[k] for k in npz.files if k != "key"}

    def stale(self, rel: str) -> bool:
        """True when a resumed folder holds this file but made with other inputs."""
        return self.reuse and self.file(rel).exists()


def log_stderr(msg: str) -> None:
    """Print a time-stamped progress line of the study to stderr."""
    print(f"[study {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
