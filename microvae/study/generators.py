"""The generators a study compares, behind one small protocol.

A generator is fitted on the authentic training + validation images and then draws samples.
The runner only calls the three methods of :class:`Generator`, so a third generator is added
by passing an object that has them (``run_study(..., generators={"gan": MyGAN()})``); nothing
in the runner changes.
"""
import inspect
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import StudyConfig
from .keys import derive_seed

__all__ = ["Generator", "VAEGenerator", "MRFGenerator", "default_generators", "check_generator"]


class Generator(Protocol):
    """What the study asks of a generator.

    ``describe(image_size) -> dict``
        The resolved settings (JSON-able). They are recorded in the outputs and are part of
        the run digest: a changed setting recomputes this generator's samples and cells on
        resume, and nothing else.
    ``fit(images, *, seed, workdir)``
        Fit on ``images`` ``(N, S, S)`` uint8 (1 = pore), the authentic training +
        validation images. ``workdir`` is the generator's own folder; it holds what an earlier
        attempt with the same inputs left there (a checkpoint to continue from), and nothing
        when the inputs changed.
    ``sample(n, *, seed) -> ndarray``
        ``(n, S, S)`` binary images from the fitted model.
    """

    def describe(self, image_size: int) -> dict: ...

    def fit(self, images: np.ndarray, *, seed: int, workdir: Path) -> None: ...

    def sample(self, n: int, *, seed: int) -> np.ndarray: ...


def check_generator(name: str, generator: object) -> None:
    """Raise ``TypeError`` unless ``generator`` has the :class:`Generator` methods."""
    missing = [m for m in ("describe", "fit", "sample") if not callable(getattr(generator, m, None))]
    if missing:
        raise TypeError(f"generator {name!r} ({type(generator).__name__}) lacks {', '.join(missing)}; a study "
                        "generator has describe(image_size), fit(images, *, seed, workdir) and sample(n, *, seed)")


class VAEGenerator:
    """The morphology-aware VAE: :func:`microvae.vae.train_vae` on the given images, then
    :func:`microvae.vae.sample`.

    Parameters
    ----------
    preset : str
        Training preset of :mod:`microvae.vae` (``"quick"``, ``"paper"``).
    sample : dict, optional
        Options of :func:`microvae.vae.sample` (e.g. ``binarize``).
    device : str, optional
        torch device (default: the trainer's choice, CUDA when available).
    **overrides
        Training options replacing the preset's (``steps``, ``batch_size``, ...).

    Training runs in ``workdir`` and continues from its checkpoint there on resume; the image
    size is that of the given images.
    """

    def __init__(self, preset: str = "quick", sample: dict | None = None, *, device: str | None = None, **overrides):
        self.preset, self.sample_options, self.device, self.overrides = preset, dict(sample or {}), device, overrides
        self.run = None

    def describe(self, image_size: int) -> dict:
        """The resolved training configuration and sampling options."""
        from .. import vae

        config = vae.load_config(self.preset, **{**self.overrides, "image_size": image_size})
        return {"train": config.to_dict(), "sample": self.sample_options}

    def fit(self, images: np.ndarray, *, seed: int, workdir: Path) -> None:
        from .. import vae

        resume = (Path(workdir) / vae.CHECKPOINT).is_file()
        # Without a checkpoint, leftovers of an attempt interrupted before its first one are replaced.
        self.run = vae.train_vae(images, preset=self.preset, out_dir=workdir, seed=seed, resume=resume,
                                 overwrite=not resume, device=self.device, progress=False,
                                 image_size=images.shape[-1], **self.overrides)

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        from .. import vae

        if self.run is None:
            raise RuntimeError("VAEGenerator.sample before fit")
        return vae.sample(self.run, n, seed=seed, device=self.device, **self.sample_options)


class MRFGenerator:
    """:class:`microvae.mrf.MRF` fitted to the given images.

    Parameters
    ----------
    model : dict, optional
        :class:`~microvae.mrf.MRF` constructor arguments (default: ``S`` chosen by cross-validation).
    sample : dict, optional
        Extra :meth:`~microvae.mrf.MRF.sample` arguments. The default is the plain method the
        paper compared with: raster scan, no Gibbs sweeps, no porosity matching.

    The fitted model is saved as ``workdir/mrf.npz`` and reloaded from there on resume.
    """

    def __init__(self, model: dict | None = None, sample: dict | None = None):
        self.model, self.sample_options = dict(model or {}), dict(sample or {})
        self.mrf, self.size = None, None

    def describe(self, image_size: int) -> dict:
        """The resolved MRF configuration and sampling options."""
        from ..mrf import MRF

        mrf = MRF(**self.model)
        params = [p for p in inspect.signature(MRF).parameters if hasattr(mrf, p)]
        return {"model": {p: getattr(mrf, p) for p in params}, "sample": self.sample_options}

    def fit(self, images: np.ndarray, *, seed: int, workdir: Path) -> None:
        from ..mrf import MRF

        path = Path(workdir) / "mrf.npz"
        if path.exists():
            self.mrf = MRF.load(path)
        else:
            self.mrf = MRF(**self.model).fit(images, seed=derive_seed(seed, "fit"))
            self.mrf.save(path)
        self.size = images.shape[-1]

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        if self.mrf is None:
            raise RuntimeError("MRFGenerator.sample before fit")
        return self.mrf.sample(n, size=self.size, seed=seed, **self.sample_options)


def default_generators(config: StudyConfig, *, device: str | None = None) -> dict[str, Generator]:
    """The real generators named in ``config.generators``, with the config's options."""
    available = {"vae": lambda: VAEGenerator(device=device, **config.vae),
                 "mrf": lambda: MRFGenerator(model=config.mrf.get("model"), sample=config.mrf.get("sample"))}
    unknown = set(config.generators) - set(available)
    if unknown:
        raise ValueError(f"unknown generator(s) {sorted(unknown)}; built in: {sorted(available)}")
    return {g: available[g]() for g in config.generators}
