"""Labels of a study's image sets: the default labeller, the per-image table it must return,
labeling the authentic pool until the splits are filled with finite labels, and the CSV tables."""
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..io import save_table
from .config import StudyConfig
from .keys import derive_seed
from .rundir import RunDir

__all__ = ["default_labeller", "as_label_table", "finite_rows", "label_authentic", "write_labels"]


def default_labeller(config: StudyConfig) -> Callable[[np.ndarray], dict]:
    """``images -> labels`` through :func:`microvae.properties.label` with the study's options."""
    from ..properties import label

    opts = dict(config.label)

    def labeller(images):
        return label(images, **opts)

    return labeller


def as_label_table(labels: Mapping, n: int, properties: Sequence[str]) -> dict[str, np.ndarray]:
    """The per-image columns of a labeller's result: 1-D numeric arrays of length ``n`` (``valid``
    as bool, the rest float64); ``KeyError`` if the porosity or a property is missing."""
    table: dict[str, np.ndarray] = {}
    for key, values in dict(labels).items():
        arr = np.asarray(values)
        if arr.ndim == 1 and len(arr) == n and arr.dtype.kind in "biuf":
            table[key] = arr.astype(bool) if key == "valid" else arr.astype(np.float64)
    missing = [k for k in ("porosity", *properties) if k not in table]
    if missing:
        raise KeyError(f"the labeller returned no per-image {missing} (got {sorted(table)})")
    return table


def finite_rows(table: dict[str, np.ndarray], properties: Sequence[str]) -> np.ndarray:
    """Mask of the images whose ``properties`` are all finite."""
    ok = np.ones(len(table["porosity"]), dtype=bool)
    for k in properties:
        ok &= np.isfinite(table[k])
    return ok


def label_authentic(pool: np.ndarray, labeller: Callable[[np.ndarray], Mapping],
                    config: StudyConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Label a seeded random order of the pool until the splits can be filled with finite labels."""
    needed = config.n_train + config.n_val + config.n_test
    order = np.random.default_rng(derive_seed(config.seed, "pool")).permutation(len(pool))
    chosen, tables = [], []
    for start in range(0, len(order), needed):
        idx = order[start:start + needed]
        table = as_label_table(labeller(pool[idx]), len(idx), config.properties)
        ok = finite_rows(table, config.properties)
        chosen.append(idx[ok])
        tables.append({k: v[ok] for k, v in table.items()})
        if sum(map(len, chosen)) >= needed:
            break
    idx = np.concatenate(chosen)
    if len(idx) < needed:
        raise ValueError(f"only {len(idx)} of {len(pool)} authentic images have finite labels; the splits need "
                         f"{needed}")
    table = {k: np.concatenate([t[k] for t in tables])[:needed] for k in tables[0]}
    table["pool_index"] = idx[:needed].astype(np.float64)
    return pool[idx[:needed]], table


def write_labels(run: RunDir, name: str, table: dict[str, np.ndarray], config: StudyConfig, extra: dict) -> None:
    """The label table of one image set as CSV + provenance sidecar, for users."""
    cols = {"image": np.arange(len(table["porosity"]))}
    cols.update({k: (v.astype(np.int64) if k in ("valid", "invalid", "pool_index") else v) for k, v in table.items()})
    save_table(run.file("labels", f"{name}.csv"), cols, {"labels": config.label, "study_digest": run.digest, **extra},
               overwrite=True)
