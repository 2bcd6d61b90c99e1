"""The supervised causal MRF of Bostanabad et al. (2016), the paper's baseline generator."""
import io as _io
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike

from .._validate import Seed, as_binary_batch, as_generator, check_int, check_memory
from ..threads import get_threads
from .features import causal_offsets, collapse_duplicates, neighbourhood_table, noncausal_offsets, sample_positions
from .sampling import canvas_pad, default_burn_in, image_seeds, match_batch, raster_sample
from .trees import TREE_FIELDS, export_tree, load_tree

__all__ = ["MRF"]

_FORMAT = "microvae.mrf"
_FORMAT_VERSION = 1
_SCORINGS = ("morphology", "log_loss", "accuracy")


class MRF:
    """Supervised causal Markov random field for binary 2D microstructures (1 = pore).

    The model of Bostanabad, Bui, Xie, Apley and Chen (2016, Acta Mater. 103, 89-102), the
    baseline of Cang et al. (2018): the probability that a pixel is pore given its causal neighbourhood
    (:func:`~microvae.mrf.features.causal_offsets`: the ``S`` rows above over columns
    ``j - S .. j + S`` and the ``S`` pixels to the left) is learned by a classification tree,
    and new images are drawn pixel by pixel in raster order.

    Parameters
    ----------
    S : int, optional
        Neighbourhood half-width. ``None`` (default) chooses it from ``S_range`` by
        cross-validation.
    S_range : sequence of int
        Candidates for ``S`` (default 2..10).
    cv : int
        Folds of the cross-validation. Folds split by image (pixels of one image are strongly
        correlated, so a pixel-level split would reward memorization).
    cv_samples : int
        Pixels drawn (seeded, uniformly over images and positions) for the cross-validation;
        the same pixels serve every candidate ``S``. Subsampling keeps the search fast: the tree
        fit costs grow faster than linearly in the number of rows.
    cv_scoring : {"morphology", "log_loss", "accuracy"}
        Held-out score maximized over ``S_range``.

        - ``"morphology"`` (default): for each fold, a model fitted on the training images draws
          ``cv_images`` samples, each brought to the porosity of a held-out image
          (:func:`match_porosity`); the score is minus the mean RMSE between the samples' and
          those held-out images' mean S2, lineal-path and cluster-function curves
          (:mod:`microvae.morphology`). It judges what the model is for, the morphology of
          its samples; matching the porosity keeps the porosity drift of small cross-validation
          models (whose trees see only ``cv_samples`` pixels) from swamping the comparison.
        - ``"accuracy"``: fraction of held-out pixels whose likelier phase is right, the
          criterion of Bostanabad et al.; ``"log_loss"``: mean held-out log-likelihood
          (probabilities clipped to ``[1e-3, 1 - 1e-3]``; a pure leaf would score minus infinity).

        Both pixel-level scores are dominated by the easy prediction of a pixel from its
        immediate neighbours: on 200 Berea 128^2 slices they are within 0.003 of each other for
        every ``S`` in 2..10 and always pick ``S`` = 3, whose samples miss the lineal-path and
        cluster functions by twice as much as ``S`` = 4..6. The morphology score picks 4..7
        there (it is noisy between neighbouring ``S``, whose samples are equally good).
    cv_images : int
        Samples per fold and candidate for the ``"morphology"`` score.
    max_samples : int or None
        Training pixels for the final trees (seeded subsample); ``None`` uses every pixel with a
        complete neighbourhood. The porosity drift of the raster scan comes mostly from noise in
        the leaf probabilities, so it shrinks with the training set: on Berea (S = 5, 6) the
        samples' mean porosity is off by up to 0.02 with 300 000 pixels, 0.008 with 10^6 (the
        default) and 0.004 with all 2.3 * 10^6, at 2.5x the fit time of the default.
    min_samples_leaf : int
        Minimum training pixels per leaf (Bostanabad et al.: ~20); bounds how extreme and how
        noisy the leaf probabilities can be.
    criterion : {"entropy", "gini", "log_loss"}
        Split criterion of the trees.
    max_depth : int, optional
        Depth limit of the trees (none by default).
    gibbs_S : int or None
        Half-width of the square non-causal neighbourhood of the second tree, used by
        ``sample(..., gibbs_sweeps=k)``. ``None`` skips it (and the Gibbs option).
    n_tiles : int
        Training images kept (seeded choice) to seed the margins of sampled images.

    Attributes
    ----------
    S_ : int
        The half-width used.
    cv_scores_ : dict or None
        ``{S: (mean, std)}`` of the held-out score per candidate, when ``S`` was chosen.
    causal_tree_, gibbs_tree_ : dict
        The exported trees (:func:`export_tree`); ``gibbs_tree_`` is ``None`` without Gibbs.
    estimator_, gibbs_estimator_ :
        The scikit-learn trees (only after ``fit``; not saved). They are grown on weighted unique
        rows, so their own ``min_samples_leaf`` is 1 and the leaf size is a weight fraction.
    porosity_ : float
        Mean porosity of the training images.
    train_porosities_ : ndarray
        Porosity of every training image.
    image_shape_ : tuple
        Shape of the training images.
    tiles_ : ndarray of uint8
        Training images kept for seeding margins.
    """

    def __init__(self, S: int | None = None, *, S_range: Iterable[int] = range(2, 11), cv: int = 3,
                 cv_samples: int = 60_000, cv_scoring: str = "morphology", cv_images: int = 32,
                 max_samples: int | None = 1_000_000, min_samples_leaf: int = 20, criterion: str = "entropy",
                 max_depth: int | None = None, gibbs_S: int | None = 2, n_tiles: int = 32):
        self.S = S
        self.S_range = tuple(S_range)
        self.cv = cv
        self.cv_samples = cv_samples
        self.cv_scoring = cv_scoring
        self.cv_images = cv_images
        self.max_samples = max_samples
        self.min_samples_leaf = min_samples_leaf
        self.criterion = criterion
        self.max_depth = max_depth
        self.gibbs_S = gibbs_S
        self.n_tiles = n_tiles

    # Fitted state, set by fit() or load() (scikit-learn's trailing-underscore convention).
    S_: int
    cv_scores_: dict[int, tuple[float, float]] | None
    estimator_: Any
    gibbs_estimator_: Any
    causal_tree_: dict[str, np.ndarray]
    gibbs_tree_: dict[str, np.ndarray] | None
    train_porosities_: np.ndarray
    porosity_: float
    image_shape_: tuple[int, ...]
    tiles_: np.ndarray

    def _config(self):
        return {"S": self.S, "S_range": list(self.S_range), "cv": self.cv, "cv_samples": self.cv_samples,
                "cv_scoring": self.cv_scoring, "cv_images": self.cv_images, "max_samples": self.max_samples,
                "min_samples_leaf": self.min_samples_leaf, "criterion": self.criterion,
                "max_depth": self.max_depth, "gibbs_S": self.gibbs_S, "n_tiles": self.n_tiles}

    def _check_config(self):
        for name in ("S", "max_samples", "max_depth", "gibbs_S"):  # None: chosen by CV, or no limit
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name)
        if self.S is None:
            if not self.S_range:
                raise ValueError("S_range is empty; give candidates for S or a fixed S")
            for s in self.S_range:
                check_int(s, "every S_range entry")
            cv = check_int(self.cv, "cv", minimum=2)
            check_int(self.cv_samples, "cv_samples", minimum=cv)
            check_int(self.cv_images, "cv_images")
        if self.cv_scoring not in _SCORINGS:
            raise ValueError(f"cv_scoring must be one of {_SCORINGS}, got {self.cv_scoring!r}")
        check_int(self.min_samples_leaf, "min_samples_leaf")
        check_int(self.n_tiles, "n_tiles")
        if self.criterion not in ("entropy", "gini", "log_loss"):
            raise ValueError(f"criterion must be 'entropy', 'gini' or 'log_loss', got {self.criterion!r}")

    def _grow(self, X, y, seed):
        """A tree on the table ``(X, y)``, grown on its collapsed duplicate rows
        (:func:`~microvae.mrf.features.collapse_duplicates`); ``min_samples_leaf`` is enforced on
        the pixel counts (the weights), so it means what it means on the full table."""
        from sklearn.tree import DecisionTreeClassifier

        Xu, yu, counts = collapse_duplicates(X, y)
        # Weights are integers: a leaf weight >= n - 0.5 is a leaf of >= n pixels, immune to rounding.
        fraction = min(0.5, (self.min_samples_leaf - 0.5) / len(y))
        tree = DecisionTreeClassifier(criterion=self.criterion, min_samples_leaf=1, min_weight_fraction_leaf=fraction,
                                      max_depth=self.max_depth, random_state=seed)
        return tree.fit(Xu, yu, sample_weight=counts)

    def fit(self, images: ArrayLike, *, seed: Seed = None) -> "MRF":
        """Learn the neighbourhood model from training images.

        Parameters
        ----------
        images : array_like
            Binary ``(N, H, W)`` (or one ``(H, W)`` image), 1 = pore, both phases present.
            Every image must be larger than the neighbourhood.
        seed : int or numpy Generator, optional
            Drives the pixel subsamples, the tree tie-breaking and the choice of seed tiles:
            the same seed and data give the same model.

        Returns
        -------
        self
        """
        self._check_config()
        batch, nd = as_binary_batch(images)
        if nd != 2:
            raise ValueError("MRF models 2D images; pass a batch (N, H, W) of slices")
        phases = np.unique(batch)
        if phases.size != 2:
            raise ValueError(f"training images hold only phase {int(phases[0])}; the MRF needs both pore (1) "
                             "and solid (0) pixels")
        rng = as_generator(seed)
        shape = batch.shape[1:]
        if self.S is None:
            self.S_, self.cv_scores_ = self._select_S(batch, rng)
        else:
            self.S_, self.cv_scores_ = int(self.S), None
        neighbourhoods = [causal_offsets(self.S_)]
        if self.gibbs_S is not None:
            neighbourhoods.append(noncausal_offsets(self.gibbs_S))
        jobs = []
        for offsets in neighbourhoods:
            positions = sample_positions(shape, len(batch), offsets, self.max_samples, seed=rng)
            X, y = neighbourhood_table(batch, offsets, positions)
            jobs.append((X, y, int(rng.integers(2 ** 31))))
        if np.unique(jobs[0][1]).size != 2:
            raise ValueError("the training pixels hold a single phase; add images with both phases")
        trees = _parallel_map(lambda job: self._grow(*job), jobs)
        self.estimator_, self.causal_tree_ = trees[0], export_tree(trees[0])
        if self.gibbs_S is not None:
            self.gibbs_estimator_, self.gibbs_tree_ = trees[1], export_tree(trees[1])
        else:
            self.gibbs_estimator_, self.gibbs_tree_ = None, None
        self.train_porosities_ = batch.reshape(len(batch), -1).mean(axis=1)
        self.porosity_ = float(self.train_porosities_.mean())
        self.image_shape_ = tuple(int(v) for v in shape)
        keep = np.sort(rng.choice(len(batch), size=min(self.n_tiles, len(batch)), replace=False))
        self.tiles_ = batch[keep].copy()
        return self

    def _select_S(self, batch, rng):
        """Held-out score of every candidate ``S``: folds of whole images, one shared pixel subsample."""
        from sklearn.model_selection import GroupKFold

        candidates = sorted(set(int(s) for s in self.S_range))
        if len(batch) < self.cv:
            raise ValueError(f"choosing S by {self.cv}-fold cross-validation needs at least {self.cv} training "
                             f"images (got {len(batch)}); pass a fixed S or a smaller cv")
        shape = batch.shape[1:]
        positions = sample_positions(shape, len(batch), causal_offsets(max(candidates)), self.cv_samples, seed=rng)
        splits = list(GroupKFold(n_splits=self.cv).split(positions, groups=positions[:, 0]))
        tree_seed = int(rng.integers(2 ** 31))
        if self.cv_scoring == "morphology":
            cv_seeds = image_seeds(self.cv_images, rng)
            # Held-out images whose porosities the samples are matched to, and whose curves they must reproduce.
            references = [batch[test_idx[np.arange(self.cv_images) % len(test_idx)]]
                          for test_idx in (np.unique(positions[test, 0]) for _, test in splits)]
            reference_curves = [_morphology_curves(ref) for ref in references]
        scores = {}
        for s in candidates:
            X, y = neighbourhood_table(batch, causal_offsets(s), positions)
            if any(np.unique(y[train]).size != 2 for train, _ in splits):
                raise ValueError("a cross-validation fold holds a single phase; add training images or pass a fixed S")
            # X and y bound now: each candidate's trees are grown before the next table is built.
            estimators = _parallel_map(lambda split, X=X, y=y: self._grow(X[split[0]], y[split[0]], tree_seed),
                                       splits)
            fold_scores = []
            for f, ((train, test), est) in enumerate(zip(splits, estimators)):
                if self.cv_scoring == "morphology":
                    tiles = batch[np.unique(positions[train, 0])[:self.n_tiles]]
                    fake = raster_sample(cv_seeds[:, 0], shape, canvas_pad(s, default_burn_in(s), None, 0), s,
                                         export_tree(est), tiles, float(y[train].mean()))
                    fake = match_batch(fake, references[f].mean(axis=(1, 2)), cv_seeds[:, 1])
                    rmse = np.sqrt(np.mean((_morphology_curves(fake) - reference_curves[f]) ** 2, axis=1))
                    fold_scores.append(-float(rmse.mean()))
                else:
                    fold_scores.append(_score(self.cv_scoring, est.predict_proba(X[test])[:, 1], y[test]))
            scores[s] = (float(np.mean(fold_scores)), float(np.std(fold_scores)))
        best = max(candidates, key=lambda s: (scores[s][0], -s))
        return best, scores

    def _check_fitted(self):
        if not hasattr(self, "causal_tree_"):
            raise ValueError("this MRF is not fitted yet; call fit(images) or MRF.load(path)")

    def sample(self, n: int, size: int | tuple[int, int] = 128, *, seed: Seed = None, margin: str = "real",
               burn_in: int | None = None, gibbs_sweeps: int = 0, porosity: str | ArrayLike | None = None,
               batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Draw new images by a raster scan of the causal model.

        Parameters
        ----------
        n : int
            Number of images.
        size : int or (int, int)
            Side (or ``(height, width)``) of the images, any size.
        seed : int or numpy Generator, optional
            Same seed, same images, whatever the thread count and ``batch_size``; image ``k``
            does not depend on ``n``.
        margin : {"real", "noise"}
            How the strips the first sampled pixels condition on are seeded: ``"real"``
            (default) with a periodically wrapped training image at a random offset (stored
            in the model), ``"noise"`` with independent pixels at the training porosity.
            Neither strip is part of the output.
        burn_in : int, optional
            Sampled rows/columns discarded next to the seeded strips (default ``2 S + 8``),
            so that the output carries no copy of the seed and little of its influence.
        gibbs_sweeps : int
            Raster-order Gibbs sweeps over the output with the non-causal tree after the scan
            (default 0). Each redraws every pixel from P(pixel | its full square neighbourhood)
            and smooths the top-left-to-bottom-right anisotropy of the raster scan. The
            conditionals are estimated independently, so this is a pseudo-Gibbs sampler: it
            refines towards the non-causal model, not the causal one.
        porosity : None, "train" or float
            Porosity matching after sampling (:func:`match_porosity`): ``None`` (default)
            keeps the images as drawn; ``"train"`` gives each image the porosity of a
            training image drawn at random (keeps the spread of the training set, meaningful
            when ``size`` equals the training image size); a float sets every image to that
            porosity. Removes the porosity drift of the raster scan at the price of
            interface pixels that no longer follow the model exactly.
        batch_size : int
            Images per compiled call (memory and progress granularity only).
        progress : bool
            Show a progress bar (tqdm).

        Returns
        -------
        ndarray of uint8, shape ``(n, height, width)``
            1 = pore.
        """
        self._check_fitted()
        n = check_int(n, "n", minimum=1)
        if isinstance(size, (tuple, list)):
            if len(size) != 2:
                raise ValueError(f"size must be an int or (height, width), got {size!r}")
            out_h, out_w = (check_int(v, "size", minimum=1) for v in size)
        else:
            out_h = out_w = check_int(size, "size", minimum=1)
        if margin not in ("real", "noise"):
            raise ValueError(f"margin must be 'real' or 'noise', got {margin!r}")
        gibbs_sweeps = check_int(gibbs_sweeps, "gibbs_sweeps", minimum=0)
        if gibbs_sweeps and self.gibbs_tree_ is None:
            raise ValueError("this model has no Gibbs tree (fitted with gibbs_S=None); use gibbs_sweeps=0")
        burn_in = default_burn_in(self.S_) if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        seeds = image_seeds(n, seed)
        targets = self._porosity_targets(porosity, seeds[:, 1], (out_h, out_w))
        margins = canvas_pad(self.S_, burn_in, self.gibbs_S, gibbs_sweeps)
        # The output, a batch's results (twice: per thread, then joined), and per thread a canvas
        # with its margins plus, when matching porosity, 16 bytes of candidates per pixel.
        pixels, threads = out_h * out_w, min(n, batch_size, numba.get_num_threads())
        canvas = (out_h + margins[0] + margins[1]) * (out_w + 2 * margins[0])
        matching = 0 if targets is None else 16 * pixels
        check_memory(n * pixels + 2 * min(n, batch_size) * pixels + threads * (canvas + matching),
                     f"{n} MRF sample{'s' * (n != 1)} of {out_h} x {out_w} px on canvases of {canvas} px "
                     f"(burn-in {burn_in})",
                     "draw fewer or smaller images, or lower the burn-in")
        tiles = self.tiles_ if margin == "real" else np.zeros((0, 1, 1), dtype=np.uint8)
        out = np.empty((n, out_h, out_w), dtype=np.uint8)
        from tqdm import tqdm

        with tqdm(total=n, desc="MRF sample", unit="img", disable=not progress) as bar:
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                out[start:stop] = raster_sample(seeds[start:stop, 0], (out_h, out_w), margins, self.S_,
                                                self.causal_tree_, tiles, self.porosity_, self.gibbs_S,
                                                self.gibbs_tree_, gibbs_sweeps)
                if targets is not None:
                    match_batch(out[start:stop], targets[start:stop], seeds[start:stop, 1])
                bar.update(stop - start)
        return out

    def _porosity_targets(self, porosity, seeds, shape):
        """Per-image target porosities (``None``: no matching); ``"train"`` picks training images by
        the per-image seeds, so the choice for image ``k`` does not depend on the batch."""
        if porosity is None:
            return None
        if isinstance(porosity, str):
            if porosity != "train":
                raise ValueError(f"porosity must be None, 'train' or a number in [0, 1], got {porosity!r}")
            if tuple(shape) != self.image_shape_:
                warnings.warn(f"porosity='train' draws porosities of {self.image_shape_} training images for "
                              f"{tuple(shape)} samples; their spread differs with the window size",
                              stacklevel=3)
            return self.train_porosities_[seeds % np.uint64(len(self.train_porosities_))]
        value = float(porosity)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"target porosity must lie in [0, 1], got {porosity!r}")
        return np.full(len(seeds), value)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the fitted model to one ``.npz`` file (atomically; no pickle).

        Holds the exported trees, the seed tiles, the training porosities and the
        configuration with its format version, enough to sample without scikit-learn.
        Refuses to replace an existing file unless ``overwrite=True``.
        """
        from ..io import atomic_write, provenance

        self._check_fitted()
        meta = provenance(self._config())
        meta.update(format=_FORMAT, format_version=_FORMAT_VERSION, S_=self.S_, porosity_=self.porosity_,
                    image_shape_=list(self.image_shape_),
                    cv_scores_=None if self.cv_scores_ is None else {str(k): v for k, v in self.cv_scores_.items()})
        arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                  "train_porosities": self.train_porosities_,
                  "tiles": np.packbits(self.tiles_, axis=-1), "tiles_shape": np.asarray(self.tiles_.shape)}
        for prefix, tree in (("causal", self.causal_tree_), ("gibbs", self.gibbs_tree_)):
            if tree is not None:
                arrays.update({f"{prefix}_{k}": tree[k] for k in TREE_FIELDS})
        buf = _io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return atomic_write(path, lambda fh: fh.write(buf.getvalue()), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MRF":
        """Read a model written by :meth:`save`; a file of another kind gives a ``ValueError``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such model file: {path}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:  # zip/npy parsers raise many types for corrupt files
            raise ValueError(f"{path}: not a readable MRF model file ({type(exc).__name__}: {exc})") from None
        if "meta" not in arrays:
            raise ValueError(f"{path}: not an MRF model (an .npz without MRF metadata; arrays: {sorted(arrays)})")
        try:
            meta = json.loads(arrays["meta"].tobytes().decode())
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not an MRF model (format {meta.get('format')!r})")
            if meta.get("format_version") != _FORMAT_VERSION:
                raise ValueError(f"{path}: MRF model format version {meta.get('format_version')!r} is not "
                                 f"supported (this microvae reads version {_FORMAT_VERSION})")
            model = cls(**meta["parameters"])
            model.S_ = int(meta["S_"])
            model.porosity_ = float(meta["porosity_"])
            model.image_shape_ = tuple(meta["image_shape_"])
            scores = meta["cv_scores_"]
            model.cv_scores_ = None if scores is None else {int(k): tuple(v) for k, v in scores.items()}
            model.train_porosities_ = arrays["train_porosities"]
            shape = tuple(int(v) for v in arrays["tiles_shape"])
            model.tiles_ = np.ascontiguousarray(np.unpackbits(arrays["tiles"], axis=-1, count=shape[-1]))
            model.causal_tree_ = load_tree(arrays, "causal", len(causal_offsets(model.S_)))
            model.gibbs_tree_ = (None if model.gibbs_S is None else
                                 load_tree(arrays, "gibbs", len(noncausal_offsets(model.gibbs_S))))
            model.estimator_ = model.gibbs_estimator_ = None
            if model.tiles_.shape != shape:
                raise ValueError("seed tiles do not match their recorded shape")
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ValueError(f"{path}: corrupt MRF model file ({exc})") from None
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: corrupt MRF model file ({type(exc).__name__}: {exc})") from None
        return model

    def __repr__(self):
        fitted = f", S_={self.S_}" if hasattr(self, "S_") else ""
        return f"MRF(S={self.S!r}{fitted}, min_samples_leaf={self.min_samples_leaf}, gibbs_S={self.gibbs_S!r})"


def _parallel_map(fn, items):
    """``[fn(item) ...]`` on up to :func:`microvae.threads.get_threads` threads: scikit-learn grows
    trees without the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(len(items), get_threads()))) as pool:
        return list(pool.map(fn, items))


def _morphology_curves(images):
    """Mean radial S2, lineal-path and cluster functions of a batch, stacked ``(3, R + 1)``."""
    from ..correlations import s2
    from ..morphology import cluster_function, lineal_path

    r_max = min(images.shape[1:]) // 2
    return np.stack([s2(images, r_max=r_max).mean(axis=0), lineal_path(images, r_max).mean(axis=0),
                     cluster_function(images, r_max).mean(axis=0)])


def _score(scoring, p, y):
    if scoring == "accuracy":
        return float(np.mean((p > 0.5) == (y == 1)))
    q = np.clip(p, 1e-3, 1 - 1e-3)
    return float(np.mean(np.where(y == 1, np.log(q), np.log1p(-q))))
