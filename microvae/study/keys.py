"""Seeds and stage keys: every random choice of a study derives from its root seed and a path of
tags, and every cached stage carries a hash of its inputs (reused on resume only when it matches)."""
import hashlib
import json
import zlib

import numpy as np

from ..io import jsonable
from .config import StudyConfig

__all__ = ["derive_seed", "stage_key", "stage_keys"]


def _tag(value):
    return zlib.crc32(value.encode()) if isinstance(value, str) else int(value)


def derive_seed(root: int, *tags: str | int) -> int:
    """A 32-bit seed derived from the root seed and a path of tags (stable across runs)."""
    return int(np.random.SeedSequence([int(root), *map(_tag, tags)]).generate_state(1)[0])


def stage_key(*parts: object) -> str:
    """Short hash of arrays and JSON-able values: the identity of a stage's inputs."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(repr((part.shape, part.dtype.str)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(jsonable(part), sort_keys=True).encode())
    return h.hexdigest()[:16]


def stage_keys(config: StudyConfig, images: np.ndarray, settings: dict) -> dict[str, str]:
    """Keys of the stages: authentic labels and split, each generator's samples, the CNN
    configuration, and the whole study. A stage is reused on resume only when its key
    matches, so a change upstream (say the VAE's settings) recomputes exactly what depends on it."""
    cfg = config.to_dict()
    auth = stage_key(images, {k: cfg[k] for k in ("image_size", "n_train", "n_val", "n_test", "properties", "label",
                                             "seed")})
    gens = {g: stage_key(auth, g, cfg["n_generated"], settings.get(g, {})) for g in config.generators}
    return {"authentic": auth, "generators": gens, "cnn": stage_key(cfg["predictor"]),
            "study": stage_key(auth, gens, cfg)}
