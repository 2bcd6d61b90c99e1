"""The MRF's classification trees as flat arrays: exported from scikit-learn for the compiled
sampler, and read back from a model file with every index checked."""
from typing import Any

import numpy as np

__all__ = ["export_tree"]

#: The arrays of an exported tree (:func:`export_tree`), one entry per node.
TREE_FIELDS = ("left", "right", "feature", "threshold", "proba")


def export_tree(estimator: Any) -> dict[str, np.ndarray]:
    """Flatten a fitted binary ``DecisionTreeClassifier`` into the arrays the kernels walk.

    Returns
    -------
    dict
        ``left``, ``right`` (int64, -1 at leaves), ``feature`` (int64), ``threshold``
        (float64) and ``proba`` (float64, P(class 1 = pore) at each node, computed exactly as
        ``predict_proba`` normalizes the node's class weights).
    """
    classes = [int(c) for c in estimator.classes_]
    if classes != [0, 1]:
        raise ValueError(f"the tree must be fitted on both phases 0 and 1, got classes {classes}")
    t = estimator.tree_
    value = t.value[:, 0, :]
    total = value.sum(axis=1)
    total[total == 0.0] = 1.0
    return {"left": t.children_left.astype(np.int64), "right": t.children_right.astype(np.int64),
            "feature": np.where(t.children_left >= 0, t.feature, 0).astype(np.int64),
            "threshold": t.threshold.astype(np.float64), "proba": value[:, 1] / total}


def load_tree(arrays: dict[str, np.ndarray], prefix: str, n_features: int) -> dict[str, np.ndarray]:
    """An exported tree read back from the arrays of a model file, checked for the kernels.

    Parameters
    ----------
    arrays : dict of ndarray
        The arrays of the file; the tree's are ``f"{prefix}_{field}"`` for every field of
        :data:`TREE_FIELDS`.
    prefix : str
        Which tree (``"causal"`` or ``"gibbs"``), also named in the errors.
    n_features : int
        Size of the tree's neighbourhood: every split feature must index into it.

    Returns
    -------
    dict of ndarray
        The tree as :func:`export_tree` returns it (C-contiguous arrays).

    Raises
    ------
    ValueError
        When the arrays are empty, differ in length or dtype, or could walk the compiled
        sampler (which indexes without bounds checks) off the arrays.
    """
    tree = {k: np.ascontiguousarray(arrays[f"{prefix}_{k}"]) for k in TREE_FIELDS}
    n = len(tree["left"])
    if n == 0 or any(len(v) != n for v in tree.values()):
        raise ValueError(f"{prefix} tree arrays are empty or differ in length")
    for k in ("left", "right", "feature"):
        if tree[k].dtype != np.int64:
            raise ValueError(f"{prefix} tree array {k} has dtype {tree[k].dtype}, expected int64")
    leaf = tree["left"] < 0
    # The kernels index without bounds checks: reject anything that could walk off the arrays.
    if (np.any(tree["right"][leaf] >= 0) or np.any(tree["right"][~leaf] < 0)
            or np.any(tree["left"] >= n) or np.any(tree["right"] >= n)
            or np.any(tree["left"][~leaf] <= np.flatnonzero(~leaf))
            or np.any(tree["right"][~leaf] <= np.flatnonzero(~leaf))
            or np.any((tree["feature"][~leaf] < 0) | (tree["feature"][~leaf] >= n_features))
            or np.any((tree["threshold"][~leaf] < 0) | (tree["threshold"][~leaf] >= 1))
            or not np.all(np.isfinite(tree["proba"])) or np.any((tree["proba"] < 0) | (tree["proba"] > 1))):
        raise ValueError(f"{prefix} tree is inconsistent")
    return tree
