"""Running and resuming a study: :func:`run_study` (any labeller and generators) and
:func:`reproduce` (the real ones, on the embedded set or user images).

The run is a chain of cached stages: authentic labels and split, each generator's samples,
one training cell per (generator, size, draw), then the outputs. Each stage is reused on
resume when its key (:mod:`.keys`) matches and recomputed otherwise.
"""
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_binary_batch
from ..io import atomic_write, folders, provenance
from .config import StudyConfig, make_config
from .data import authentic_pool, cell_indices, embedded_dataset, plan_cells, split_indices
from .generators import Generator, check_generator, default_generators
from .keys import derive_seed, stage_key, stage_keys
from .labels import as_label_table, default_labeller, finite_rows, label_authentic, write_labels
from .report import assemble_results, render_report, write_figures
from .rundir import STUDY_FILES, RunDir, log_stderr
from .stats import describe_sets, distribution_match, morphology_match, realism_match

__all__ = ["run_study", "reproduce"]


def run_study(images: ArrayLike, *, labeller: Callable[[np.ndarray], Mapping], generators: dict[str, Generator],
              config: StudyConfig, out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False,
              data: dict | None = None, device: str | None = None, threads: int | None = None,
              held_out: ArrayLike | None = None, log: Callable[[str], object] = log_stderr) -> dict:
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
    generators : dict of str -> Generator
        For every name in ``config.generators``, an object with the methods of
        :class:`microvae.study.Generator`: ``describe(image_size)``, ``fit(images, *, seed,
        workdir)`` (on the authentic training + validation images; ``workdir`` is the
        generator's folder for models and checkpoints) and ``sample(n, *, seed)``.
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
    held_out : array_like, optional
        More authentic images ``(M, S, S)`` that no generator learns from, for the realism
        section's classifier test; it always has the pool's images that were not fitted on.
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        Paths: ``{"dir", "results", "report", "figures"}``.
    """
    pool, _ = as_binary_batch(images, ndim=2, name="authentic images")
    if held_out is not None:
        held_out, _ = as_binary_batch(held_out, ndim=2, name="held_out")
    return _run(pool, labeller, generators, config, out_dir, resume, overwrite, data, device, threads, log, held_out)


def _run(pool, labeller, generators, config, out_dir, resume, overwrite, data, device, threads, log, held_out=None):
    """The study on a validated ``(N, S, S)`` uint8 pool (the single entry check is the caller's)."""
    size = config.image_size
    if pool.shape[1:] != (size, size):
        raise ValueError(f"authentic images are {pool.shape[1]}x{pool.shape[2]} px; the study is configured "
                         f"for {size}x{size}")
    if held_out is not None and held_out.shape[1:] != (size, size):
        raise ValueError(f"held_out images are {held_out.shape[1]}x{held_out.shape[2]} px; the study is configured "
                         f"for {size}x{size}")
    if not pool.any() or pool.all():
        raise ValueError(f"the authentic images are all {'pore (1)' if pool.all() else 'solid (0)'}: the study "
                         "needs both phases (check the pore value the images were loaded with)")
    missing = [g for g in config.generators if g not in generators]
    if missing:
        raise ValueError(f"no generator given for {missing}")
    for name in config.generators:
        check_generator(name, generators[name])
    with _torch_threads(threads) as restore_threads:
        return _stages(pool, labeller, generators, config, out_dir, resume, overwrite, data, device, log,
                       restore_threads, held_out)


def _stages(pool, labeller, generators, config, out_dir, resume, overwrite, data, device, log, restore_threads,
            held_out):
    t_start = time.time()
    # The generators' resolved settings are part of the study's identity: a changed default
    # upstream must not be resumed as if it were the same run.
    settings = {g: generators[g].describe(config.image_size) for g in config.generators}
    keys = stage_keys(config, pool, settings)
    run = RunDir(out_dir, keys, resume=resume, overwrite=overwrite)
    # Held until the study ends: a second study cannot write into the same folder meanwhile.
    with folders.lock(run.path, f"the study in {run.path}"):
        if overwrite and not resume and not run.new:
            folders.clear(run.path, STUDY_FILES)
        try:
            return _study(run, keys, settings, pool, held_out, labeller, generators, config, data, device, log,
                          restore_threads, t_start)
        except BaseException:
            if run.new and not run.file("authentic.npz").exists():
                shutil.rmtree(run.path, ignore_errors=True)  # stopped before its first stage: nothing to resume
            raise


def _study(run, keys, settings, pool, held_out, labeller, generators, config, data, device, log, restore_threads,
           t_start):
    """The stages, in a study folder this process holds."""
    digest = keys["study"]
    run.write_json(run.CONFIG, {"digest": digest, "keys": keys, "config": config.to_dict(),
                                "generator_settings": settings, "data": data or {}, "provenance": provenance({})})
    timing = {}

    t0 = time.time()
    auth_images, table, split = _authentic_stage(run, keys["authentic"], pool, labeller, config, log)
    timing["authentic_labels_s"] = time.time() - t0
    fit_images = auth_images[np.concatenate([split["train"], split["val"]])]

    gen = {}
    for name in config.generators:
        t0 = time.time()
        gen[name], timing[f"{name}_generate_s"] = _generator_stage(
            run, name, generators[name], keys["generators"][name], fit_images, labeller, config, log, restore_threads)
        timing[f"{name}_total_s"] = time.time() - t0

    t0 = time.time()
    cells = _cells_stage(run, keys, auth_images, table, split, gen, config, device, log)
    timing["cnn_s"] = time.time() - t0

    # Not a cached stage: a resumed run (also one made before the morphology comparison existed)
    # recomputes it from the cached images in seconds.
    t0 = time.time()
    descriptors = describe_sets(auth_images, gen)
    morphology = morphology_match(descriptors, seed=derive_seed(config.seed, "morphology"))
    timing["morphology_s"] = time.time() - t0

    t0 = time.time()
    realism = _realism_stage(run, keys, pool, held_out, table, split, gen, config, log)
    timing["realism_s"] = time.time() - t0

    t0 = time.time()
    props = config.properties
    distribution, s2_curves = distribution_match(auth_images, table, split, gen, props, descriptors)
    figures = write_figures(run, auth_images, table, split, gen, props, cells, s2_curves, config, morphology)
    timing["report_s"] = time.time() - t0
    timing["total_s"] = time.time() - t_start
    out = assemble_results(config, digest, data, split, cells, distribution, timing, figures, settings,
                           {g: int(len(v["usable"])) for g, v in gen.items()}, morphology, realism)
    results_path = run.write_json("results.json", out)
    report_path = atomic_write(run.file("report.md"), lambda fh: fh.write(render_report(out)), overwrite=True,
                               mode="w")
    log(f"done in {timing['total_s'] / 60:.1f} min: {report_path}")
    return {"dir": run.path, "results": results_path, "report": report_path, "figures": figures}


def _authentic_stage(run, key, pool, labeller, config, log):
    """Labeled authentic images, their label table and the split (cached in ``authentic.npz``)."""
    cached = run.read_npz("authentic.npz", key)
    if cached is not None:
        return (cached["images"], {k[6:]: v for k, v in cached.items() if k.startswith("label_")},
                {k[6:]: v for k, v in cached.items() if k.startswith("split_")})
    log(f"labeling authentic images ({len(pool)} available, "
        f"{config.n_train}/{config.n_val}/{config.n_test} needed)")
    auth_images, table = label_authentic(pool, labeller, config)
    split = split_indices(len(auth_images), config.n_train, config.n_val, config.n_test, seed=config.seed)
    run.write_npz("authentic.npz", key, images=auth_images,
                  **{f"label_{k}": v for k, v in table.items()},
                  **{f"split_{k}": v for k, v in split.items()})
    write_labels(run, "authentic", table, config, {"split": {k: v.tolist() for k, v in split.items()}})
    return auth_images, table, split


def _generator_stage(run, name, generator, key, fit_images, labeller, config, log, restore_threads):
    """One generator fitted on ``fit_images``, its labeled samples (cached in ``generated/<name>.npz``)
    and the seconds that fitting and sampling took."""
    rel, props, size = f"generated/{name}.npz", config.properties, config.image_size
    cached = run.read_npz(rel, key)
    if cached is None:
        t0 = time.time()
        log(f"{name}: fitting on {len(fit_images)} authentic training + validation images and sampling "
            f"{config.n_generated}" + (" (the cached samples were made with other inputs)" if run.stale(rel) else ""))
        workdir, workkey = run.file("models", name), run.file("models", f"{name}.key")
        if workdir.exists() and not (run.reuse and workkey.exists() and workkey.read_text() == key):
            # Models and checkpoints made with other inputs must not be resumed.
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        atomic_write(workkey, lambda fh: fh.write(key), overwrite=True, mode="w")
        seed = derive_seed(config.seed, "generator", name)
        generator.fit(fit_images, seed=seed, workdir=workdir)
        images = generator.sample(config.n_generated, seed=derive_seed(seed, "sample"))
        restore_threads()
        images, _ = as_binary_batch(images, ndim=2, name=f"{name} samples")
        if images.shape != (config.n_generated, size, size):
            raise ValueError(f"generator {name} returned shape {images.shape}, expected "
                             f"{(config.n_generated, size, size)}")
        seconds = time.time() - t0
        log(f"{name}: labeling {len(images)} samples")
        table = as_label_table(labeller(images), len(images), props)
        run.write_npz(rel, key, images=images, seconds=np.float64(seconds),
                      **{f"label_{k}": v for k, v in table.items()})
        write_labels(run, name, table, config, {"generator": name})
    else:
        images, seconds = cached["images"], float(cached["seconds"])
        table = {k[6:]: v for k, v in cached.items() if k.startswith("label_")}
    usable = np.flatnonzero(finite_rows(table, props))
    if len(usable) < len(images):
        log(f"{name}: {len(images) - len(usable)} samples have non-finite labels (e.g. a single phase) "
            "and are left out" + ("; none is left, so this generator gets no training cells" if not len(usable)
                                  else ""))
    return {"images": images, "table": table, "usable": usable}, seconds


def _realism_stage(run, keys, pool, extra, table, split, gen, config, log):
    """The classifier two-sample test of every generator against the held-out authentic images
    and the label distances (cached in ``realism.json``); ``None`` when ``config.c2st`` is ``None``.

    Held out: the pool's images that no generator was fitted on (the test images and the
    unlabeled rest of the pool), and the ``extra`` held-out images."""
    if config.c2st is None:
        return None
    fitted = table["pool_index"][np.concatenate([split["train"], split["val"]])].astype(np.int64)
    held = pool[np.setdiff1d(np.arange(len(pool)), fitted)]
    if extra is not None:
        held = np.concatenate([held, extra])
    key = stage_key(keys["authentic"], keys["generators"], config.c2st, held)
    cached = run.read_json("realism.json", key)
    if cached is not None:
        return {k: v for k, v in cached.items() if k != "stage_key"}
    log(f"realism: classifier two-sample test of {', '.join(gen) or 'no generator'} against {len(held)} held-out "
        "authentic images")
    out = realism_match(held, table, split, gen, config.c2st, seed=derive_seed(config.seed, "realism"))
    run.write_json("realism.json", {**out, "stage_key": key})
    return out


def _cells_stage(run, keys, auth_images, table, split, gen, config, device, log):
    """Train and score the property CNN of every cell (one JSON file per cell in ``cells/``)."""
    from ..nn.predictor import PropertyPredictor

    props = config.properties
    y_auth = np.stack([table[k] for k in props], axis=1)
    cells = plan_cells(config, {g: len(v["usable"]) for g, v in gen.items()})
    val_idx, test_idx = split["val"], split["test"]
    for c in cells:
        upstream = keys["authentic"] if c["generator"] is None else keys["generators"][c["generator"]]
        c["stage_key"] = stage_key(upstream, keys["cnn"], c["added"], c["draw"], c["cnn_seed"])
    todo = [c for c in cells if run.read_json(f"cells/{c['key']}.json", c["stage_key"]) is None]
    log(f"CNN: {len(cells)} training cells ({len(cells) - len(todo)} already done)")
    results = []
    for c in cells:
        rel = f"cells/{c['key']}.json"
        done = run.read_json(rel, c["stage_key"])
        if done is None:
            tc = time.time()
            auth_idx, chosen = cell_indices(c, split, {k: v["usable"] for k, v in gen.items()}, seed=config.seed)
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
    return results


def _check_source_outside(source, out_dir):
    """Refuse an input file the study would write over (its own ``authentic.npz``, say): the
    input is never replaced, whatever the flags say."""
    if source is None or not os.path.isfile(source):
        return
    src, out = os.path.realpath(source), os.path.realpath(out_dir)
    if os.path.commonpath([src, out]) == out and os.path.relpath(src, out).split(os.sep)[0] in STUDY_FILES:
        raise ValueError(f"the input {source} is one of the files the study writes in {out_dir}; copy it elsewhere "
                         "and read it from there (an input is never replaced)")


@contextlib.contextmanager
def _torch_threads(n):
    """Run with ``n`` torch threads (``None``: leave as is) and restore the old count afterwards.

    Yields a function that sets the count again. Generators need it: numba's OpenMP threading
    layer shares torch's libgomp, and starting it (``numba.get_num_threads()`` is enough) resets
    the process's OpenMP thread count, hence torch's.
    """
    import torch

    from ..threads import check_threads

    n = None if n is None else check_threads(n)
    old = torch.get_num_threads()

    def apply():
        torch.set_num_threads(int(n) if n else old)

    apply()
    try:
        yield apply
    finally:
        torch.set_num_threads(old)


def reproduce(images: ArrayLike | None = None, *, ndim: int = 2, source: str | None = None,
              pore_value: float | None = None, preset: str = "quick", out_dir: str | os.PathLike = "study_quick",
              seed: int = 0, resume: bool = False, overwrite: bool = False, threads: int | None = None,
              device: str | None = None, labeller: Callable[[np.ndarray], Mapping] | None = None,
              generators: Mapping[str, Generator] | Sequence[str] | None = None,
              log: Callable[[str], object] = log_stderr,
              **overrides) -> dict:
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
    labeller : callable, optional
        Replaces the real labeller (see :func:`run_study`).
    generators : mapping or sequence of str, optional
        A mapping replaces the real generators (see :func:`run_study`); a sequence of names
        chooses among the real ones (the ``generators`` field of :class:`StudyConfig`).
    **overrides
        :class:`StudyConfig` fields (and ``max_epochs``).

    Returns
    -------
    dict of paths (see :func:`run_study`).
    """
    if generators is not None and not isinstance(generators, Mapping):
        overrides["generators"], generators = tuple(generators), None
    _check_source_outside(source, out_dir)
    config = make_config(preset, seed=seed, **overrides)
    needed = config.n_train + config.n_val + config.n_test
    held_out = None
    if images is None:
        # A margin of extra images so that a few non-finite labels cannot leave the splits short.
        pool = embedded_dataset(config, needed + needed // 10)
        if config.c2st is not None:
            # Fresh images of the same generator give the classifier test as many held-out images
            # per class as it may use, and its noise floor halves of that size.
            from ..c2st import C2ST_DEFAULTS

            held_out = embedded_dataset(config, 2 * config.c2st.get("max_per_class", C2ST_DEFAULTS["max_per_class"]),
                                        held_out=True)
        syn = ", ".join(f"{k}={v}" for k, v in config.synthetic.items())
        data: dict[str, Any] = {
            "description": f"embedded synthetic sandstone-like images (microvae.synthetic.grains, {syn})",
            "source": "embedded"}
    else:
        # authentic_pool validates the user's images: the only check they go through here.
        pool, note = authentic_pool(images, ndim=ndim, size=config.image_size, needed=needed,
                                    seed=derive_seed(seed, "slices"))
        data = {"description": f"{source or 'user images'}"
                               + (f" (pore value {pore_value})" if pore_value is not None else ""),
                "source": source, "pore_value": pore_value, "sampling": note}
    return _run(pool, labeller or default_labeller(config), generators or default_generators(config, device=device),
                config, out_dir, resume, overwrite, data, device, threads, log, held_out)
