"""The run folder: atomic, key-stamped stage files, and the guard against mixing studies."""
import json
import sys
import os
import time
from pathlib import Path

import numpy as np

from ..io import atomic_write, write_json

__all__ = ["RunDir", "log_stderr"]


class RunDir:
    """Atomic, key-stamped files in the study's folder.

    On resume the folder must hold a study of the same authentic data, split and labels
    (otherwise nothing in it could be reused); every cached stage is then reused only if its
    key matches.
    """

    MARKER = "config.json"

    def __init__(self, path: str | os.PathLike, keys: dict[str, str], *, resume: bool, overwrite: bool):
        self.path, self.digest, self.resume = Path(path), keys["study"], resume
        marker = self.path / self.MARKER
        if marker.exists():
            old = json.loads(marker.read_text()).get("keys", {}).get("authentic")
            if resume and old != keys["authentic"]:
                raise ValueError(f"{self.path} holds a study of other authentic data, split or labels; choose "
                                 "another output folder, or --overwrite to replace it")
            if not resume and not overwrite:
                raise FileExistsError(f"{self.path} already holds a study; pass --resume to continue it "
                                      "or --overwrite to recompute it")
        elif self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise FileExistsError(f"{self.path} exists and is not empty; choose another folder or pass --overwrite")
        # Cached stages and cells are trusted only on resume; otherwise they are recomputed.
        self.reuse = resume

    def file(self, *parts: str) -> Path:
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
        return atomic_write(self.file(rel), lambda fh: np.savez_compressed(fh, key=key, **arrays), overwrite=True)

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
    print(f"[study {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
