"""The augmentation study of the paper (§4.2, Fig. 7–8): does adding generated microstructures
to a small training set improve a structure-property CNN, and do VAE samples help more than
MRF samples?

Protocol (``DESIGN.md`` §9). Authentic images (1 = pore) are labeled and split into
``n_train`` / ``n_val`` / ``n_test`` (100 / 100 / 100). Each generator is fitted on the
training + validation images only (never the test images) and draws ``n_generated`` samples,
which are labeled the same way. The property CNN (:mod:`microvae.nn.predictor`) is trained on
the authentic training images plus ``m`` generated samples, for each ``m`` in ``added`` and
``draws`` random draws per size (one draw when ``m`` is the whole generated set), with early
stopping on the authentic validation images; its R² on the authentic test images is the
result. The baseline (``m = 0``) is repeated ``draws`` times with the CNN seeds of the draws.
Draw ``d`` uses the same CNN initialization seed for every generator and size (common random
numbers), so differences between generators are not confounded with initialization luck.

:func:`run_study` is the core and takes the labeller and the generators as arguments;
:func:`reproduce` wires the real ones (:func:`microvae.properties.label`, the VAE of
:mod:`microvae.train`, :class:`microvae.mrf.MRF`) and the embedded synthetic data set.

A run folder holds ``config.json``, the cached stages (``authentic.npz``,
``generated/<name>.npz``, ``models/``), one JSON file per finished training cell
(``cells/``), and the outputs: ``results.json``, ``report.md``, ``figures/*.png`` and the
label tables (``labels/*.csv``). Every file is written atomically and carries the key of
its inputs (authentic images, split and label options; a generator's resolved settings; the
CNN options and the cell's draw). ``resume=True`` reuses every stage and cell whose key
still matches and recomputes the rest: an interrupted run continues where it stopped, more
draws or sizes only add cells, and a changed VAE recomputes the VAE's samples and cells
but not the MRF's. A folder holding a study of other authentic data is refused.
"""
import contextlib
import hashlib
import json
import math
import shutil
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._validate import as_binary_batch
from .io import _json_default, atomic_write, provenance, save_table

__all__ = ["StudyConfig", "PRESETS", "make_config", "run_study", "reproduce", "plan_cells", "draw_indices",
           "split_indices", "cell_indices", "pairwise_correlation", "authentic_pool", "embedded_dataset",
           "VAEGenerator", "MRFGenerator",
           "default_labeller", "summarize"]

PRESETS = {
    # The paper's protocol (§4.2): 128 px, 1000 samples per generator, 50..1000 added, ten
    # draws, one CNN per property. Sized for a GPU (the VAE dominates).
    "paper": dict(image_size=128, n_generated=1000, added=(50, 100, 200, 400, 600, 800, 1000), draws=10,
                  predictor=dict(channels=(16, 32, 64, 64), hidden=64, batch_size=16, max_epochs=200, patience=20,
                                 joint=False),
                  vae=dict(preset="paper"), synthetic=dict(radius=8.0, porosity=0.2, porosity_spread=0.04)),
    # Within 20 minutes end to end on two CPU cores (measured: 9.3 min on the embedded set with
    # two free cores, 16.1 min on Berea on one thread beside another job): 64 px images, the
    # VAE's quick preset, five of the paper's seven sizes with three draws, one multi-output CNN
    # with fewer channels and a shorter early-stopping window (training it on 1100 images takes
    # ~40 s on one core).
    "quick": dict(image_size=64, n_generated=1000, added=(50, 100, 200, 400, 1000), draws=3,
                  predictor=dict(channels=(8, 16, 32, 32), hidden=64, batch_size=16, max_epochs=40, patience=6,
                                 joint=True),
                  vae=dict(preset="quick"), synthetic=dict(radius=4.0, porosity=0.2, porosity_spread=0.05)),
}

_LABEL_DEFAULTS = dict(d=3, K1=4.3, G1=3.8, voxel_size=1.0)


@dataclass
class StudyConfig:
    """Everything that defines a study; two runs with equal configs and images are the same run.

    The defaults are the paper's protocol; :func:`make_config` starts from a preset instead.

    Attributes
    ----------
    preset : str
        Name of the preset the values started from (``"quick"``, ``"paper"``; ``"custom"`` otherwise).
    image_size : int
        Side of the square images (authentic and generated), pixels.
    n_train, n_val, n_test : int
        Sizes of the authentic splits.
    n_generated : int
        Samples drawn from each generator.
    added : tuple of int
        Numbers of generated samples added to the training set.
    draws : int
        Random draws per number added (one when it equals ``n_generated``), and baseline repeats.
    generators : tuple of str
        Names of the generators compared.
    properties : tuple of str
        Label keys the CNN predicts (the paper: Young's modulus E/E1, diffusivity D/D2,
        permeability k).
    label : dict
        Keyword arguments of the labeller (dimension ``d``, rock moduli ``K1``, ``G1``, ``voxel_size``).
    predictor : dict
        :class:`microvae.nn.predictor.PredictorConfig` fields.
    vae, mrf : dict
        Options of the generators: ``vae`` = ``preset`` plus training overrides (and
        ``sample``, options of :func:`microvae.train.sample`); ``mrf`` = ``model`` (MRF
        constructor arguments) and ``sample`` (MRF sampling options).
    synthetic : dict
        Parameters of the embedded data set (:func:`microvae.synthetic.grains`).
    seed : int
        Root of every random choice (split, generators, draws, CNN initialization).
    """

    preset: str = "custom"
    image_size: int = 128
    n_train: int = 100
    n_val: int = 100
    n_test: int = 100
    n_generated: int = 1000
    added: tuple = (50, 100, 200, 400, 600, 800, 1000)
    draws: int = 10
    generators: tuple = ("vae", "mrf")
    properties: tuple = ("E", "D", "k")
    label: dict = field(default_factory=lambda: dict(_LABEL_DEFAULTS))
    predictor: dict = field(default_factory=dict)
    vae: dict = field(default_factory=dict)
    mrf: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        self.added = tuple(int(m) for m in self.added)
        self.generators = tuple(self.generators)
        self.properties = tuple(self.properties)
        if min(self.n_train, self.n_val, self.n_test) < 2:
            raise ValueError("n_train, n_val and n_test must each be at least 2")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if self.draws < 1:
            raise ValueError(f"draws must be >= 1, got {self.draws}")
        if not self.properties:
            raise ValueError("properties must name at least one label")
        if len(set(self.generators)) != len(self.generators):
            raise ValueError(f"generator names repeat: {self.generators}")
        if self.generators and self.n_generated < 1:
            raise ValueError("n_generated must be >= 1")
        if any(m < 1 or m > self.n_generated for m in self.added) or len(set(self.added)) != len(self.added):
            raise ValueError(f"added must be distinct sizes in 1..n_generated={self.n_generated}, got {self.added}")
        from .nn.predictor import PredictorConfig

        self.label = {**_LABEL_DEFAULTS, **self.label}
        # Complete and check the CNN options now, not after an hour of generation.
        self.predictor = asdict(PredictorConfig(**self.predictor))

    def to_dict(self):
        return json.loads(json.dumps(asdict(self), default=_json_default))


def make_config(preset="quick", **overrides):
    """A :class:`StudyConfig` from a preset plus overrides.

    Overrides of the dict-valued fields (``predictor``, ``vae``, ``mrf``, ``label``,
    ``synthetic``) update the preset's dict; other fields replace the preset's value.
    ``max_epochs`` is a shortcut for ``predictor={"max_epochs": ...}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].items()}
    values["label"] = dict(_LABEL_DEFAULTS)
    if "max_epochs" in overrides:
        values["predictor"]["max_epochs"] = int(overrides.pop("max_epochs"))
    known = set(StudyConfig.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown study option(s) {sorted(unknown)}; known: {sorted(known)}")
    for key, value in overrides.items():
        if isinstance(values.get(key), dict) and isinstance(value, dict):
            values[key].update(value)
        else:
            values[key] = value
    return StudyConfig(preset=preset, **values)


# ---------------------------------------------------------------------- seeds and bookkeeping

def _tag(value):
    return zlib.crc32(value.encode()) if isinstance(value, str) else int(value)


def _seed(root, *tags):
    """A 32-bit seed derived from the root seed and a path of tags (stable across runs)."""
    return int(np.random.SeedSequence([int(root), *map(_tag, tags)]).generate_state(1)[0])


def split_indices(n, n_train, n_val, n_test, seed):
    """Disjoint random train / validation / test index arrays into ``n`` labeled images."""
    if n_train + n_val + n_test > n:
        raise ValueError(f"need {n_train + n_val + n_test} authentic images for the splits, have {n}")
    order = np.random.default_rng(_seed(seed, "split")).permutation(n)
    return {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
            "test": np.sort(order[n_train + n_val:n_train + n_val + n_test])}


def draw_indices(pool_size, added, draw, generator, seed):
    """Indices of the generated samples added in one cell; all of them when ``added >= pool_size``."""
    if added >= pool_size:
        return np.arange(pool_size)
    rng = np.random.default_rng(_seed(seed, "draw", generator, added, draw))
    return np.sort(rng.choice(pool_size, size=added, replace=False))


def plan_cells(config, pool_sizes=None):
    """The training cells of a study, in run order: baseline draws, then every (generator, size, draw).

    Parameters
    ----------
    config : StudyConfig
    pool_sizes : dict, optional
        Generator name -> number of usable (finite-labeled) generated samples; defaults to
        ``n_generated``. A size at or above the pool size is run once, with the whole pool; a
        generator without usable samples gets no cells.

    Returns
    -------
    list of dict
        ``{"key", "generator", "added", "draw", "cnn_seed"}``; ``generator`` is ``None`` and
        ``added`` 0 for the baseline.
    """
    cells = [{"key": f"baseline_d{d:02d}", "generator": None, "added": 0, "draw": d,
              "cnn_seed": _seed(config.seed, "cnn", d)} for d in range(config.draws)]
    for g in config.generators:
        pool = (pool_sizes or {}).get(g, config.n_generated)
        if pool == 0:
            continue
        for m in config.added:
            n_draws = 1 if m >= pool else config.draws
            for d in range(n_draws):
                cells.append({"key": f"{g}_m{m:05d}_d{d:02d}", "generator": g, "added": m, "draw": d,
                              "cnn_seed": _seed(config.seed, "cnn", d)})
    return cells


def cell_indices(cell, split, usable, seed):
    """Training set of one cell: authentic training indices and indices into the generated set.

    ``usable`` maps generator names to the indices of their samples with finite labels. The
    authentic part is always ``split["train"]``: validation and test images never enter training.
    """
    gen_idx = np.empty(0, dtype=np.int64)
    if cell["generator"] is not None:
        pool = np.asarray(usable[cell["generator"]])
        gen_idx = pool[draw_indices(len(pool), cell["added"], cell["draw"], cell["generator"], seed)]
    return np.asarray(split["train"]), gen_idx


def _key(*parts):
    """Short hash of arrays and JSON-able values: the identity of a stage's inputs."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(repr((part.shape, part.dtype.str)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=_json_default).encode())
    return h.hexdigest()[:16]


def _stage_keys(config, images, settings):
    """Keys of the stages: authentic labels and split, each generator's samples, the CNN
    configuration, and the whole study. A stage is reused on resume only when its key
    matches, so a change upstream (say the VAE's settings) recomputes exactly what depends on it."""
    cfg = config.to_dict()
    auth = _key(images, {k: cfg[k] for k in ("image_size", "n_train", "n_val", "n_test", "properties", "label",
                                             "seed")})
    gens = {g: _key(auth, g, cfg["n_generated"], settings.get(g, {})) for g in config.generators}
    return {"authentic": auth, "generators": gens, "cnn": _key(cfg["predictor"]),
            "study": _key(auth, gens, cfg)}


# ---------------------------------------------------------------------- data

def embedded_dataset(config, n):
    """The default authentic set: ``n`` sandstone-like images from :func:`microvae.synthetic.grains`."""
    from .synthetic import grains

    size = config.image_size
    return grains((size, size), n=n, seed=_seed(config.seed, "embedded"), **config.synthetic)


def authentic_pool(images, ndim, size, needed, seed):
    """Square ``size``-pixel samples from user data, without overlap where the data allows.

    Parameters
    ----------
    images : ndarray
        ``(N, H, W)`` binary 2D images, or one volume ``(1, D, H, W)`` (``ndim=3``).
    ndim : {2, 3}
    size : int
    needed : int
        Minimum number of samples.
    seed : int

    Returns
    -------
    pool : ndarray ``(n, size, size)`` uint8
    note : dict
        How the samples were cut (recorded in results.json and the report).

    Notes
    -----
    A volume is cut into planes normal to all three axes on a grid of step ``size`` (planes
    ``size`` apart, tiles that do not overlap within a plane; slices along different axes
    share one line of voxels at most). When that grid is too small, the step shrinks to the
    largest one that gives ``needed`` samples and the note says by how much samples overlap:
    overlapping samples in different splits make the test R² optimistic. 2D images larger
    than ``size`` are cut into non-overlapping tiles.
    """
    from .io import slices

    batch, nd = as_binary_batch(images, ndim=ndim)
    if nd == 3:
        if len(batch) != 1:
            raise ValueError(f"give one volume (D, H, W), got {len(batch)} volumes")
        vol = batch[0]
        if min(vol.shape) < size:
            raise ValueError(f"volume of shape {vol.shape} is smaller than the image size {size}")
        for stride in range(size, 0, -1):
            count = sum(len(range(0, vol.shape[a], stride))
                        * math.prod(len(range(0, s - size + 1, stride)) for i, s in enumerate(vol.shape) if i != a)
                        for a in range(3))
            if count >= needed:
                break
        else:
            raise ValueError(f"a volume of shape {vol.shape} holds fewer than {needed} samples of {size} px")
        pool = slices(vol, size, stride=stride, seed=seed)
        note = {"kind": "volume slices along axes 0, 1, 2", "volume_shape": list(vol.shape), "stride": stride,
                "in_plane_overlap_px": size - stride, "grid_samples": int(len(pool))}
        return pool, note
    n, h, w = batch.shape
    if h < size or w < size:
        raise ValueError(f"images are {h}x{w} px, smaller than the study's image size {size}; pass a smaller size")
    tiles = batch[:, :h - h % size, :w - w % size].reshape(n, h // size, size, w // size, size)
    pool = tiles.transpose(0, 1, 3, 2, 4).reshape(-1, size, size)
    if len(pool) < needed:
        raise ValueError(f"{n} images of {h}x{w} px give {len(pool)} tiles of {size} px; the study needs {needed}")
    note = {"kind": "2D images" if (h, w) == (size, size) else f"non-overlapping {size} px tiles of 2D images",
            "source_shape": [n, h, w], "grid_samples": int(len(pool))}
    return np.ascontiguousarray(pool), note


# ---------------------------------------------------------------------- labeling

def default_labeller(config):
    """``images -> labels`` through :func:`microvae.properties.label` with the study's options."""
    from .properties import label

    opts = dict(config.label)

    def labeller(images):
        return label(images, **opts)

    return labeller


def _as_label_table(labels, n, properties):
    table = {}
    for key, values in dict(labels).items():
        arr = np.asarray(values)
        if arr.ndim == 1 and len(arr) == n and arr.dtype.kind in "biuf":
            table[key] = arr.astype(bool) if key == "valid" else arr.astype(np.float64)
    missing = [k for k in ("porosity", *properties) if k not in table]
    if missing:
        raise KeyError(f"the labeller returned no per-image {missing} (got {sorted(table)})")
    return table


def _finite_rows(table, properties):
    ok = np.ones(len(table["porosity"]), dtype=bool)
    for k in properties:
        ok &= np.isfinite(table[k])
    return ok


# ---------------------------------------------------------------------- generators

class VAEGenerator:
    """Generator callable: train the morphology-aware VAE (:func:`microvae.train.train_vae`) on
    the given images, then sample from it (:func:`microvae.train.sample`).

    Parameters
    ----------
    preset : str
        Training preset of :mod:`microvae.train` (``"quick"``, ``"paper"``).
    sample : dict, optional
        Options of :func:`microvae.train.sample` (e.g. ``binarize``).
    device : str, optional
        torch device (default: the trainer's choice, CUDA when available).
    **overrides
        Training options replacing the preset's (``steps``, ``batch_size``, ...).

    Training runs in ``workdir`` and continues from its checkpoint there on resume; the image
    size is that of the given images.
    """

    def __init__(self, preset="quick", sample=None, device=None, **overrides):
        self.preset, self.sample, self.device, self.overrides = preset, dict(sample or {}), device, overrides

    def settings(self, image_size):
        """The resolved training configuration and sampling options (recorded, part of the run digest)."""
        from . import train

        config = train.load_config(self.preset, **{**self.overrides, "image_size": image_size})
        return {"train": config.to_dict(), "sample": self.sample}

    def __call__(self, images, n, *, seed, workdir):
        from . import train

        workdir = Path(workdir)
        resume = (workdir / train.CHECKPOINT).is_file()
        if not resume:
            # Leftovers of an attempt interrupted before its first checkpoint: start afresh.
            for p in workdir.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        run = train.train_vae(images, preset=self.preset, out_dir=workdir, seed=seed, resume=resume,
                              device=self.device, progress=False, image_size=images.shape[-1], **self.overrides)
        return train.sample(run, n, seed=_seed(seed, "sample"), device=self.device, **self.sample)


class MRFGenerator:
    """Generator callable: fit :class:`microvae.mrf.MRF` to the given images and sample from it.

    Parameters
    ----------
    model : dict, optional
        :class:`~microvae.mrf.MRF` constructor arguments (default: ``S`` chosen by cross-validation).
    sample : dict, optional
        Extra :meth:`~microvae.mrf.MRF.sample` arguments. The default is the plain method the
        paper compared with: raster scan, no Gibbs sweeps, no porosity matching.

    The fitted model is saved as ``workdir/mrf.npz`` and reloaded from there on resume.
    """

    def __init__(self, model=None, sample=None):
        self.model, self.sample = dict(model or {}), dict(sample or {})

    def settings(self, image_size):
        """The resolved MRF configuration and sampling options (recorded, part of the run digest)."""
        import inspect

        from .mrf import MRF

        mrf = MRF(**self.model)
        params = [p for p in inspect.signature(MRF).parameters if hasattr(mrf, p)]
        return {"model": {p: getattr(mrf, p) for p in params}, "sample": self.sample}

    def __call__(self, images, n, *, seed, workdir):
        from .mrf import MRF

        path = Path(workdir) / "mrf.npz"
        if path.exists():
            mrf = MRF.load(path)
        else:
            mrf = MRF(**self.model).fit(images, seed=_seed(seed, "fit"))
            mrf.save(path)
        return mrf.sample(n, size=images.shape[-1], seed=_seed(seed, "sample"), **self.sample)


def default_generators(config, device=None):
    """The real generators named in ``config.generators``, with the config's options."""
    available = {"vae": lambda: VAEGenerator(device=device, **config.vae),
                 "mrf": lambda: MRFGenerator(model=config.mrf.get("model"), sample=config.mrf.get("sample"))}
    unknown = set(config.generators) - set(available)
    if unknown:
        raise ValueError(f"unknown generator(s) {sorted(unknown)}; built in: {sorted(available)}")
    return {g: available[g]() for g in config.generators}


# ---------------------------------------------------------------------- the run folder

class _RunDir:
    """Atomic, key-stamped files in the study's folder.

    On resume the folder must hold a study of the same authentic data, split and labels
    (otherwise nothing in it could be reused); every cached stage is then reused only if its
    key matches.
    """

    MARKER = "config.json"

    def __init__(self, path, keys, *, resume, overwrite):
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

    def file(self, *parts):
        return self.path.joinpath(*parts)

    def write_json(self, rel, obj):
        text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True)
        return atomic_write(self.file(rel), lambda fh: fh.write(text), overwrite=True, mode="w")

    def read_json(self, rel, key):
        """A finished stage file with this key, or ``None``."""
        path = self.file(rel)
        if not (self.reuse and path.exists()):
            return None
        obj = json.loads(path.read_text())
        return obj if obj.get("stage_key") == key else None

    def write_npz(self, rel, key, **arrays):
        return atomic_write(self.file(rel), lambda fh: np.savez_compressed(fh, key=key, **arrays), overwrite=True)

    def read_npz(self, rel, key):
        """The arrays of a finished stage file with this key, or ``None``."""
        path = self.file(rel)
        if not (self.reuse and path.exists()):
            return None
        with np.load(path, allow_pickle=False) as npz:
            if "key" not in npz.files or str(npz["key"]) != key:
                return None
            return {k: npz[k] for k in npz.files if k != "key"}

    def stale(self, rel):
        """True when a resumed folder holds this file but made with other inputs."""
        return self.reuse and self.file(rel).exists()


def _log(msg):
    print(f"[study {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the core

def run_study(images, *, labeller, generators, config, out_dir, resume=False, overwrite=False, data=None,
              device=None, threads=None, log=_log):
    """Run (or resume) the augmentation study on a pool of authentic images.

    Parameters
    ----------
    images : array_like, shape ``(N, S, S)``
        Authentic binary images (1 = pore), ``S = config.image_size``, ``N >= n_train + n_val
        + n_test``. They are labeled in random order until the splits are filled with images
        whose properties are finite.
    labeller : callable
        ``labeller(images) -> mapping`` of per-image arrays holding ``"porosity"`` and every
        name in ``config.properties`` (``"valid"`` is reported if present).
    generators : dict of str -> callable
        For every name in ``config.generators``: ``generate(train_images, n, *, seed, workdir)
        -> (n, S, S)`` binary images, fitted on ``train_images`` (the authentic training +
        validation images). ``workdir`` is the generator's folder for models and checkpoints.
    config : StudyConfig
    out_dir : str or Path
        Run folder.
    resume : bool
        Continue the study in ``out_dir``: reuse every finished stage and cell whose inputs are
        unchanged, compute the others. The folder must hold a study of the same authentic
        images, split and label options.
    overwrite : bool
        Allow replacing files of an existing folder (otherwise it must be new or empty).
    data : dict, optional
        Description of the images' source, recorded in the outputs.
    device : str, optional
        torch device of the property CNN (default CPU, where training is bit-reproducible).
    threads : int, optional
        torch CPU threads for the whole run (restored afterwards; default: torch's setting).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        Paths: ``{"dir", "results", "report", "figures"}``.
    """
    with _torch_threads(threads) as restore_threads:
        return _run_study(images, labeller, generators, config, out_dir, resume, overwrite, data, device, log,
                          restore_threads)


def _run_study(images, labeller, generators, config, out_dir, resume, overwrite, data, device, log,
               restore_threads):
    from .nn.predictor import PropertyPredictor

    t_start = time.time()
    pool, _ = as_binary_batch(images, ndim=2, name="authentic images")
    size = config.image_size
    if pool.shape[1:] != (size, size):
        raise ValueError(f"authentic images are {pool.shape[1]}x{pool.shape[2]} px; the study is configured "
                         f"for {size}x{size}")
    missing = [g for g in config.generators if g not in generators]
    if missing:
        raise ValueError(f"no generator given for {missing}")
    # Generators that can describe their resolved settings (the real ones) make them part of the
    # study's identity: a changed default upstream must not be resumed as if it were the same run.
    settings = {g: (generators[g].settings(size) if hasattr(generators[g], "settings") else {})
                for g in config.generators}
    keys = _stage_keys(config, pool, settings)
    digest = keys["study"]
    run = _RunDir(out_dir, keys, resume=resume, overwrite=overwrite)
    props = config.properties
    run.write_json(run.MARKER, {"digest": digest, "keys": keys, "config": config.to_dict(),
                                "generator_settings": settings, "data": data or {}, "provenance": provenance({})})
    timing = {}

    # ---- authentic labels and split
    t0 = time.time()
    cached = run.read_npz("authentic.npz", keys["authentic"])
    if cached is None:
        log(f"labeling authentic images ({len(pool)} available, "
            f"{config.n_train}/{config.n_val}/{config.n_test} needed)")
        auth_images, table = _label_authentic(pool, labeller, config)
        split = split_indices(len(auth_images), config.n_train, config.n_val, config.n_test, config.seed)
        run.write_npz("authentic.npz", keys["authentic"], images=auth_images,
                      **{f"label_{k}": v for k, v in table.items()},
                      **{f"split_{k}": v for k, v in split.items()})
        _write_labels(run, "authentic", table, config, {"split": {k: v.tolist() for k, v in split.items()}})
    else:
        auth_images = cached["images"]
        table = {k[6:]: v for k, v in cached.items() if k.startswith("label_")}
        split = {k[6:]: v for k, v in cached.items() if k.startswith("split_")}
    timing["authentic_labels_s"] = time.time() - t0
    y_auth = np.stack([table[k] for k in props], axis=1)
    fit_images = auth_images[np.concatenate([split["train"], split["val"]])]

    # ---- generators: fit on train + val, sample, label
    gen = {}
    for name in config.generators:
        t0 = time.time()
        rel, gkey = f"generated/{name}.npz", keys["generators"][name]
        cached = run.read_npz(rel, gkey)
        if cached is None:
            log(f"{name}: fitting on {len(fit_images)} authentic training + validation images and sampling "
                f"{config.n_generated}" + (" (the cached samples were made with other inputs)" if run.stale(rel)
                                           else ""))
            workdir, workkey = run.file("models", name), run.file("models", f"{name}.key")
            if workdir.exists() and not (run.reuse and workkey.exists() and workkey.read_text() == gkey):
                # Models and checkpoints made with other inputs must not be resumed.
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            atomic_write(workkey, lambda fh: fh.write(gkey), overwrite=True, mode="w")
            images_g = generators[name](fit_images, config.n_generated, seed=_seed(config.seed, "generator", name),
                                        workdir=workdir)
            restore_threads()
            images_g, _ = as_binary_batch(images_g, ndim=2, name=f"{name} samples")
            if images_g.shape != (config.n_generated, size, size):
                raise ValueError(f"generator {name} returned shape {images_g.shape}, expected "
                                 f"{(config.n_generated, size, size)}")
            t_gen = time.time() - t0
            log(f"{name}: labeling {len(images_g)} samples")
            gtable = _as_label_table(labeller(images_g), len(images_g), props)
            run.write_npz(rel, gkey, images=images_g, seconds=np.float64(t_gen),
                          **{f"label_{k}": v for k, v in gtable.items()})
            _write_labels(run, name, gtable, config, {"generator": name})
        else:
            images_g, t_gen = cached["images"], float(cached["seconds"])
            gtable = {k[6:]: v for k, v in cached.items() if k.startswith("label_")}
        usable = np.flatnonzero(_finite_rows(gtable, props))
        gen[name] = {"images": images_g, "table": gtable, "usable": usable}
        timing[f"{name}_generate_s"] = t_gen
        timing[f"{name}_total_s"] = time.time() - t0
        if len(usable) < len(images_g):
            log(f"{name}: {len(images_g) - len(usable)} samples have non-finite labels (e.g. a single phase) "
                "and are left out" + ("; none is left, so this generator gets no training cells" if not len(usable)
                                      else ""))

    # ---- training cells
    t0 = time.time()
    cells = plan_cells(config, {g: len(v["usable"]) for g, v in gen.items()})
    val_idx, test_idx = split["val"], split["test"]
    results = []
    for c in cells:
        upstream = keys["authentic"] if c["generator"] is None else keys["generators"][c["generator"]]
        c["stage_key"] = _key(upstream, keys["cnn"], c["added"], c["draw"], c["cnn_seed"])
    todo = [c for c in cells if run.read_json(f"cells/{c['key']}.json", c["stage_key"]) is None]
    log(f"CNN: {len(cells)} training cells ({len(cells) - len(todo)} already done)")
    for c in cells:
        rel = f"cells/{c['key']}.json"
        done = run.read_json(rel, c["stage_key"])
        if done is None:
            tc = time.time()
            auth_idx, chosen = cell_indices(c, split, {k: v["usable"] for k, v in gen.items()}, config.seed)
            x, y = auth_images[auth_idx], y_auth[auth_idx]
            if c["generator"] is not None:
                g = gen[c["generator"]]
                y_g = np.stack([g["table"][k][chosen] for k in props], axis=1)
                x, y = np.concatenate([x, g["images"][chosen]]), np.concatenate([y, y_g])
            model = PropertyPredictor(config.predictor, names=props, seed=c["cnn_seed"], device=device)
            model.fit(x, y, auth_images[val_idx], y_auth[val_idx])
            scores = model.score(auth_images[test_idx], y_auth[test_idx])
            done = dict(c, n_train=int(len(x)), generated_indices=chosen.tolist(),
                        r2=scores["r2"], rmse=scores["rmse"],
                        epochs=[h["epochs"] for h in model.history],
                        best_epoch=[h["best_epoch"] for h in model.history],
                        best_val_loss=[h["best_val_loss"] for h in model.history],
                        seconds=time.time() - tc)
            run.write_json(rel, done)
            r2 = ", ".join(f"{k} {v:.3f}" for k, v in scores["r2"].items())
            log(f"CNN {c['key']}: n_train {len(x)}, test R² {r2} ({done['seconds']:.0f} s)")
        results.append(done)
    timing["cnn_s"] = time.time() - t0

    # ---- distributions, figures, results, report
    t0 = time.time()
    distribution, s2_curves = _distribution(auth_images, table, split, gen, props)
    figures = _figures(run, auth_images, table, split, gen, props, results, s2_curves, config)
    timing["report_s"] = time.time() - t0
    timing["total_s"] = time.time() - t_start
    out = _results(config, digest, data, split, results, distribution, timing, figures, settings,
                   {g: int(len(v["usable"])) for g, v in gen.items()})
    results_path = run.write_json("results.json", out)
    report_path = atomic_write(run.file("report.md"), lambda fh: fh.write(render_report(out)), overwrite=True,
                               mode="w")
    log(f"done in {timing['total_s'] / 60:.1f} min: {report_path}")
    return {"dir": run.path, "results": results_path, "report": report_path, "figures": figures}


def _label_authentic(pool, labeller, config):
    """Label a seeded random order of the pool until the splits can be filled with finite labels."""
    needed = config.n_train + config.n_val + config.n_test
    order = np.random.default_rng(_seed(config.seed, "pool")).permutation(len(pool))
    chosen, tables = [], []
    for start in range(0, len(order), needed):
        idx = order[start:start + needed]
        table = _as_label_table(labeller(pool[idx]), len(idx), config.properties)
        ok = _finite_rows(table, config.properties)
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


def _write_labels(run, name, table, config, extra):
    """The label table of one image set as CSV + provenance sidecar, for users."""
    cols = {"image": np.arange(len(table["porosity"]))}
    cols.update({k: (v.astype(np.int64) if k in ("valid", "pool_index") else v) for k, v in table.items()})
    save_table(run.file("labels", f"{name}.csv"), cols, {"labels": config.label, "study_digest": run.digest, **extra},
               overwrite=True)


# ---------------------------------------------------------------------- statistics

def _stats(values):
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return {"n": int(len(v)), "mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan}


def _compare(ref, other):
    """Two-sample match of ``other`` to ``ref``: KS statistic and p-value, Wasserstein-1
    distance, and that distance divided by the reference std (scale-free)."""
    from scipy import stats

    ref = np.asarray(ref, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    ref, other = ref[np.isfinite(ref)], other[np.isfinite(other)]
    if not len(ref) or not len(other):
        return {"ks": math.nan, "ks_pvalue": math.nan, "wasserstein": math.nan, "wasserstein_rel": math.nan}
    ks = stats.ks_2samp(ref, other)
    w = float(stats.wasserstein_distance(ref, other))
    sd = float(ref.std(ddof=1))
    return {"ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue), "wasserstein": w,
            "wasserstein_rel": w / sd if sd > 0 else math.nan}


def pairwise_correlation(images, max_images=200):
    """Mean Pearson correlation of the pixels of two different images of a set (first
    ``max_images`` images, all pairs).

    About 0 for independent samples of a homogeneous medium; near 1 when a generator draws the
    same picture again and again (mode collapse), whatever the porosity of each draw.
    """
    x = np.asarray(images[:max_images], dtype=np.float64).reshape(min(len(images), max_images), -1)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    x = x[norm > 0] / norm[norm > 0, None]
    if len(x) < 2:
        return math.nan
    gram = x @ x.T
    n = len(x)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def _distribution(auth_images, table, split, gen, props):
    """Porosity, property and S2 match of every generated set to the authentic images (Fig. 8a).

    The reference row compares the authentic test images with the authentic training +
    validation images: the size of the statistics that sampling alone produces.
    """
    from .correlations import s2

    quantities = ["porosity", *props]
    fit = np.concatenate([split["train"], split["val"]])
    s2_curves = {"authentic": s2(auth_images)}
    out = {"quantities": quantities,
           "authentic": {"n": int(len(auth_images)), **{q: _stats(table[q]) for q in quantities}},
           "authentic_flagged_invalid": int((~table["valid"]).sum()) if "valid" in table else None,
           "authentic_pairwise_correlation": pairwise_correlation(auth_images),
           "reference": {"what": "authentic test vs authentic training + validation",
                         **{q: _compare(table[q][fit], table[q][split["test"]]) for q in quantities}},
           "generators": {}}
    auth_mean = s2_curves["authentic"].mean(axis=0)
    for name, g in gen.items():
        usable, gt = g["usable"], g["table"]
        s2_curves[name] = s2(g["images"])
        entry = {"n": int(len(g["images"])), "n_usable": int(len(usable)),
                 "s2_max_abs_diff_of_mean": float(np.abs(s2_curves[name].mean(axis=0) - auth_mean).max()),
                 "pairwise_correlation": pairwise_correlation(g["images"])}
        if "valid" in gt:
            entry["n_flagged_invalid"] = int((~gt["valid"]).sum())
        for q in quantities:
            entry[q] = {**_stats(gt[q][usable]), **_compare(table[q], gt[q][usable])}
        out["generators"][name] = entry
    return out, s2_curves


def summarize(cells, props):
    """Mean, std and count of test R² per generator and size, from cell records.

    Returns ``{"baseline": {prop: stats}, "<generator>": {"<added>": {prop: stats}}}``.
    """
    groups = {}
    for c in cells:
        key = ("baseline", None) if c["generator"] is None else (c["generator"], c["added"])
        groups.setdefault(key, []).append(c)
    out = {}
    for (g, m), group in groups.items():
        stats = {p: _stats([c["r2"][p] for c in group]) for p in props}
        if g == "baseline":
            out["baseline"] = stats
        else:
            out.setdefault(g, {})[str(m)] = stats
    return out


def _verdict(summary, config):
    """Plain comparison of generators by mean test R² over all sizes and properties."""
    gens = [g for g in config.generators if g in summary]
    out = {"sizes": list(config.added), "properties": list(config.properties)}
    base = summary.get("baseline", {})
    for g in gens:
        gains = [summary[g][str(m)][p]["mean"] - base[p]["mean"] for m in config.added for p in config.properties
                 if str(m) in summary[g]]
        out[f"{g}_mean_gain_over_baseline"] = float(np.mean(gains))
        out[f"{g}_cells_above_baseline"] = int(sum(x > 0 for x in gains))
    if {"vae", "mrf"} <= set(gens):
        diffs, clear = {}, [0, 0]
        for p in config.properties:
            diffs[p] = []
            for m in config.added:
                v, r = summary["vae"][str(m)][p], summary["mrf"][str(m)][p]
                d = v["mean"] - r["mean"]
                diffs[p].append(d)
                # Standard error of the difference of two means over independent draws; sizes
                # run once (all samples) have no spread estimate and are not counted as clear.
                se = math.sqrt(v["std"] ** 2 / v["n"] + r["std"] ** 2 / r["n"]) if min(v["n"], r["n"]) > 1 else math.nan
                if np.isfinite(se) and abs(d) > 2 * se:
                    clear[d < 0] += 1
        flat = [x for v in diffs.values() for x in v]
        out["vae_minus_mrf_mean_r2"] = {p: float(np.mean(v)) for p, v in diffs.items()}
        out["vae_minus_mrf_by_size"] = {p: dict(zip(map(str, config.added), map(float, v))) for p, v in diffs.items()}
        out["vae_wins"] = int(sum(x > 0 for x in flat))
        out["comparisons"] = len(flat)
        out["vae_clearly_ahead"], out["mrf_clearly_ahead"] = clear
        # A majority of (size, property) comparisons, not the mean difference: one diverging
        # cell (a negative R²) would otherwise decide the verdict.
        out["matches_paper"] = bool(out["vae_wins"] > len(flat) / 2)
    return out


def _results(config, digest, data, split, cells, distribution, timing, figures, settings, pool_sizes):
    props = config.properties
    baseline = [c for c in cells if c["generator"] is None]
    summary = summarize(cells, props)
    return {
        "config": config.to_dict(), "generator_settings": settings, "digest": digest, "data": data or {},
        "split": {k: v.tolist() for k, v in split.items()},
        "generated_usable": pool_sizes,
        "baseline": {p: [c["r2"][p] for c in baseline] for p in props},
        "augmented": [{"generator": c["generator"], "added": c["added"], "draw": c["draw"], "r2": c["r2"],
                       "rmse": c["rmse"], "n_train": c["n_train"], "epochs": c["epochs"], "cnn_seed": c["cnn_seed"]}
                      for c in cells if c["generator"] is not None],
        "baseline_cells": [{"draw": c["draw"], "r2": c["r2"], "rmse": c["rmse"], "epochs": c["epochs"],
                            "cnn_seed": c["cnn_seed"]} for c in baseline],
        "summary": summary, "verdict": _verdict(summary, config), "distribution": distribution,
        "timing": timing, "figures": {k: Path(v).name for k, v in figures.items()},
        "provenance": provenance({}),
    }


# ---------------------------------------------------------------------- figures

_COLORS = {"authentic": "black", "vae": "tab:blue", "mrf": "tab:orange"}


def _figures(run, auth_images, table, split, gen, props, cells, s2_curves, config):
    from .correlations import radial_distances
    from .plotting import _figure, mosaic, plot_s2, save_figure

    fig_dir = run.file("figures")
    paths = {}
    n_show = 16
    test = split["test"]
    paths["mosaic_authentic"] = mosaic(fig_dir / "mosaic_authentic.png", auth_images[test[:n_show]],
                                       title="authentic (test images)", overwrite=True)
    for name, g in gen.items():
        paths[f"mosaic_{name}"] = mosaic(fig_dir / f"mosaic_{name}.png", g["images"][:n_show],
                                         title=f"{name.upper()} samples", overwrite=True)

    quantities = ["porosity", *props]
    fig, axes = _figure(1, len(quantities), figsize=(3.2 * len(quantities), 2.8), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        sets = [("authentic", table[q])] + [(n, g["table"][q][g["usable"]]) for n, g in gen.items()
                                            if len(g["usable"])]
        # Bins span the bulk of all sets; a few extreme samples would otherwise squash the rest.
        lo = min(np.nanpercentile(v, 0.5) for _, v in sets)
        hi = max(np.nanpercentile(v, 99.5) for _, v in sets)
        bins = np.linspace(lo, hi, 31) if hi > lo else 10
        for name, v in sets:
            ax.hist(v, bins=bins, density=True, histtype="step", lw=1.5, color=_COLORS.get(name), label=name)
        ax.set_xlabel(q)
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8)
    paths["histograms"] = save_figure(fig, fig_dir / "histograms.png", overwrite=True)

    r_max = s2_curves["authentic"].shape[1] - 1
    names = list(s2_curves)
    paths["s2"] = plot_s2(fig_dir / "s2.png", radial_distances(r_max), [s2_curves[n] for n in names], names,
                          overwrite=True)

    summary = summarize(cells, props)
    fig, axes = _figure(1, len(props), figsize=(3.6 * len(props), 3.0), squeeze=False)
    for ax, p in zip(axes[0], props):
        b = summary["baseline"][p]
        ax.axhline(b["mean"], color="gray", lw=1, label="baseline")
        if np.isfinite(b["std"]):
            ax.axhspan(b["mean"] - b["std"], b["mean"] + b["std"], color="gray", alpha=0.2)
        for k, name in enumerate(gen):
            sizes = [m for m in config.added if str(m) in summary.get(name, {})]
            means = [summary[name][str(m)][p]["mean"] for m in sizes]
            stds = [np.nan_to_num(summary[name][str(m)][p]["std"]) for m in sizes]
            # Offset the generators a little so error bars do not hide each other.
            xs = np.asarray(sizes, dtype=float) * (1 + 0.02 * (k - (len(gen) - 1) / 2))
            ax.errorbar(xs, means, yerr=stds, marker="o", ms=4, capsize=3, color=_COLORS.get(name),
                        label=name.upper())
        ax.set_xlabel("generated samples added")
        ax.set_title(p)
    axes[0][0].set_ylabel("test R²")
    axes[0][-1].legend(fontsize=8)
    paths["r2_vs_added"] = save_figure(fig, fig_dir / "r2_vs_added.png", overwrite=True)
    return paths


# ---------------------------------------------------------------------- report

def _pm(s, digits=3):
    if not np.isfinite(s["mean"]):
        return "–"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" if np.isfinite(s["std"]) else f"{s['mean']:.{digits}f}"


def _num(x, digits=3):
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def headline_table(results):
    """The Markdown table of test R² (mean ± std over draws) per generator, size and property."""
    cfg, summary = results["config"], results["summary"]
    props = cfg["properties"]
    lines = ["| generator | added | draws | " + " | ".join(f"R² {p}" for p in props) + " |",
             "|---|---:|---:|" + "---:|" * len(props)]
    base = summary["baseline"]
    lines.append(f"| none (baseline) | 0 | {base[props[0]]['n']} | " + " | ".join(_pm(base[p]) for p in props) + " |")
    for g in cfg["generators"]:
        for m in cfg["added"]:
            s = summary.get(g, {}).get(str(m))
            if s:
                lines.append(f"| {g.upper()} | {m} | {s[props[0]]['n']} | "
                             + " | ".join(_pm(s[p]) for p in props) + " |")
    return "\n".join(lines)


def render_report(results):
    """``report.md`` text from a ``results.json`` object (so the report never disagrees with it)."""
    cfg, dist, verdict = results["config"], results["distribution"], results["verdict"]
    data = results.get("data") or {}
    pcfg = cfg["predictor"]
    lines = [
        f"# Augmentation study — preset `{cfg['preset']}`",
        "",
        f"microvae {results['provenance']['microvae_version']}, created {results['provenance']['created']}, "
        f"run digest `{results['digest']}`, total time {results['timing']['total_s'] / 60:.1f} min.",
        "",
        "## Setup",
        "",
        f"- Authentic data: {data.get('description', 'user images')}.",
        f"- {cfg['image_size']}×{cfg['image_size']} px images, split {cfg['n_train']} train / {cfg['n_val']} "
        f"validation / {cfg['n_test']} test (seed {cfg['seed']}); labels: `microvae.label` with "
        + ", ".join(f"{k}={v}" for k, v in cfg["label"].items()) + ".",
        f"- Generators ({', '.join(g.upper() for g in cfg['generators'])}) fitted on the "
        f"{cfg['n_train'] + cfg['n_val']} "
        f"training + validation images; {cfg['n_generated']} samples each, labeled the same way.",
        f"- CNN: 4 × (conv 3×3 + ReLU + max-pool 2), channels {tuple(pcfg['channels'])}, FC {pcfg['hidden']}, "
        f"{'one multi-output network' if pcfg['joint'] else 'one network per property'}, MSE on standardized "
        f"targets, Adam lr {pcfg['lr']}, batch {pcfg['batch_size']}, early stopping on validation loss "
        f"(patience {pcfg['patience']}, at most {pcfg['max_epochs']} epochs).",
        f"- Added generated samples: {', '.join(map(str, cfg['added']))}; {cfg['draws']} random draws per size "
        "(one when all samples are added); the baseline is repeated with the same CNN seeds.",
    ]
    if data.get("sampling"):
        lines.append(f"- Samples: {_sampling_text(data['sampling'])}.")
    reduced = paper_differences(cfg)
    if reduced:
        lines.append("- Departures from the paper's protocol (preset `paper`): " + "; ".join(reduced) + ".")
    lines += ["", "## Test R² with generated samples added (paper Fig. 8b)", "",
              "Mean ± standard deviation over draws, on the authentic test images.", "", headline_table(results), "",
              "![R² vs added samples](figures/r2_vs_added.png)", "", "## Verdict", ""]
    lines += _verdict_text(verdict, cfg)
    lines += ["", "## Distribution of generated vs authentic samples (paper Fig. 8a)", "",
              f"Authentic: all {dist['authentic']['n']} labeled images. KS = two-sample Kolmogorov–Smirnov "
              "statistic (p-value), W/σ = Wasserstein-1 distance divided by the authentic std. The reference row "
              "compares authentic test with authentic training + validation images: differences of that size are "
              "sampling noise.", "",
              "| set | n | quantity | mean ± std | KS (p) | W/σ |", "|---|---:|---|---:|---:|---:|"]
    for q in dist["quantities"]:
        a = dist["authentic"][q]
        lines.append(f"| authentic | {a['n']} | {q} | {_pm(a, 4)} | | |")
        ref = dist["reference"][q]
        lines.append(f"| reference | | {q} | | {ref['ks']:.3f} ({_num(ref['ks_pvalue'], 2)}) | "
                     f"{_num(ref['wasserstein_rel'], 3)} |")
        for g, e in dist["generators"].items():
            s = e[q]
            lines.append(f"| {g.upper()} | {s['n']} | {q} | {_pm(s, 4)} | {s['ks']:.3f} ({_num(s['ks_pvalue'], 2)}) | "
                         f"{_num(s['wasserstein_rel'], 3)} |")
    lines += ["", "Diversity: mean pixel-wise correlation between two different images of a set (about 0 for "
              "independent samples, near 1 when a generator repeats one picture, i.e. mode collapse): "
              f"authentic {_num(dist.get('authentic_pairwise_correlation'), 3)}"
              + "".join(f", {g.upper()} {_num(e.get('pairwise_correlation'), 3)}"
                        for g, e in dist["generators"].items())
              + ".", ""]
    for g, e in dist["generators"].items():
        extra = f"; {e['n_flagged_invalid']} flagged outside the formulas' validity" if "n_flagged_invalid" in e else ""
        lines.append(f"- {g.upper()}: {e['n_usable']} of {e['n']} samples with finite labels{extra}; largest "
                     f"difference of the mean S2 curve from the authentic one {e['s2_max_abs_diff_of_mean']:.4f}.")
    lines += ["", "![property histograms](figures/histograms.png)", "", "![S2](figures/s2.png)", "",
              "## Samples (paper Fig. 7)", "", "![authentic](figures/mosaic_authentic.png)", ""]
    lines += [f"![{g}](figures/mosaic_{g}.png)\n" for g in cfg["generators"]]
    t = results["timing"]
    lines += ["## Timing", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k[:-2].replace('_', ' ')} | {v:.0f} |" for k, v in t.items()]
    lines += ["", "Full configuration, per-draw values and the split are in `results.json`; label tables in "
              "`labels/`.", ""]
    return "\n".join(lines)


def _sampling_text(note):
    if "volume_shape" in note:
        overlap = note["in_plane_overlap_px"]
        return (f"{note['kind']} of a {'×'.join(map(str, note['volume_shape']))} volume on a grid of step "
                f"{note['stride']} px ({note['grid_samples']} candidates; "
                + ("tiles do not overlap within a plane" if overlap == 0 else
                   f"**tiles overlap by {overlap} px**, so neighbouring samples in different splits are correlated")
                + ")")
    return f"{note['kind']} ({note['grid_samples']} candidates)"


def paper_differences(cfg):
    """Where a configuration (dict) departs from the paper preset, as short phrases."""
    paper = make_config("paper").to_dict()
    out = []
    for key in ("image_size", "n_train", "n_val", "n_test", "n_generated", "added", "draws", "properties"):
        if cfg[key] != paper[key]:
            out.append(f"{key} {cfg[key]} instead of {paper[key]}")
    for group in ("predictor", "vae", "label"):
        for key, value in cfg[group].items():
            if key not in paper[group]:
                out.append(f"{group}.{key} {value} (the paper preset keeps its default)")
            elif paper[group][key] != value:
                out.append(f"{group}.{key} {value} instead of {paper[group][key]}")
    return [o.replace("[", "(").replace("]", ")") for o in out]


def _verdict_text(v, cfg):
    out = []
    for g in cfg["generators"]:
        key = f"{g}_mean_gain_over_baseline"
        if key in v:
            n = len(v["sizes"]) * len(v["properties"])
            out.append(f"- {g.upper()} augmentation: mean change of test R² over the baseline "
                       f"{v[key]:+.3f} (averaged over sizes and properties); above the baseline in "
                       f"{v[f'{g}_cells_above_baseline']} of {n} (size, property) cells.")
    if "matches_paper" in v:
        per = ", ".join(f"{p} {d:+.3f}" for p, d in v["vae_minus_mrf_mean_r2"].items())
        out.append(f"- VAE minus MRF mean test R², averaged over sizes: {per}; the VAE is ahead in "
                   f"{v['vae_wins']} of {v['comparisons']} (size, property) comparisons (by more than two "
                   f"standard errors of the difference in {v['vae_clearly_ahead']}; the MRF by that margin in "
                   f"{v['mrf_clearly_ahead']}).")
        out.append("- **This run " + ("matches" if v["matches_paper"] else "does not match")
                   + " the paper's finding that VAE augmentation beats MRF augmentation.**")
    return out


# ---------------------------------------------------------------------- wiring

@contextlib.contextmanager
def _torch_threads(n):
    """Run with ``n`` torch threads (``None``: leave as is) and restore the old count afterwards.

    Yields a function that sets the count again. Generators need it: numba's OpenMP threading
    layer shares torch's libgomp, and starting it (``numba.get_num_threads()`` is enough) resets
    the process's OpenMP thread count, hence torch's.
    """
    import torch

    old = torch.get_num_threads()

    def apply():
        torch.set_num_threads(int(n) if n else old)

    apply()
    try:
        yield apply
    finally:
        torch.set_num_threads(old)


def reproduce(images=None, *, ndim=2, source=None, pore_value=None, preset="quick", out_dir="study_quick", seed=0,
              resume=False, overwrite=False, threads=None, device=None, labeller=None, generators=None, log=_log,
              **overrides):
    """Run the paper's study end to end with the real labeller, VAE and MRF.

    Parameters
    ----------
    images : array_like, optional
        Authentic data: 2D images ``(N, H, W)`` (tiled to the image size when larger) or one
        volume ``(1, D, H, W)`` with ``ndim=3`` (sliced along all three axes). Default: the
        embedded synthetic sandstone-like set (:func:`embedded_dataset`).
    ndim : {2, 3}
    source, pore_value :
        Where the images came from, recorded in the report.
    preset : {"quick", "paper"}
    out_dir : str or Path
    seed : int
    resume, overwrite : bool
        See :func:`run_study`.
    threads : int, optional
        torch CPU threads for the run.
    device : str, optional
        torch device for the VAE and the CNN (default: the VAE trainer's choice, CUDA when
        available, and CPU for the CNN).
    labeller, generators : optional
        Replace the real labeller / generators (see :func:`run_study`).
    **overrides
        :class:`StudyConfig` fields (and ``max_epochs``).

    Returns
    -------
    dict of paths (see :func:`run_study`).
    """
    config = make_config(preset, seed=seed, **overrides)
    needed = config.n_train + config.n_val + config.n_test
    if images is None:
        # A margin of extra images so that a few non-finite labels cannot leave the splits short.
        pool = embedded_dataset(config, needed + needed // 10)
        syn = ", ".join(f"{k}={v}" for k, v in config.synthetic.items())
        data = {"description": f"embedded synthetic sandstone-like images (microvae.synthetic.grains, {syn})",
                "source": "embedded"}
    else:
        pool, note = authentic_pool(images, ndim, config.image_size, needed, _seed(seed, "slices"))
        data = {"description": f"{source or 'user images'}"
                               + (f" (pore value {pore_value})" if pore_value is not None else ""),
                "source": source, "pore_value": pore_value, "sampling": note}
    return run_study(pool, labeller=labeller or default_labeller(config),
                     generators=generators or default_generators(config, device), config=config, out_dir=out_dir,
                     resume=resume, overwrite=overwrite, data=data, device=device, threads=threads, log=log)
