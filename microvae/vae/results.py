"""What training and its sample check return: :class:`TrainResult` and :class:`SampleCheck`."""
import dataclasses
from pathlib import Path
from typing import Any

from ..nn.vae import VAE
from .config import TrainConfig

__all__ = ["SampleCheck", "TrainResult"]


@dataclasses.dataclass(frozen=True)
class SampleCheck:
    """The porosity-matching threshold and collapse diagnostics of a VAE's samples
    (:func:`~microvae.vae.check_samples`), stored with the run (a plain dict in the checkpoint:
    :meth:`to_dict`, :meth:`from_dict`).

    Attributes
    ----------
    threshold : float
        Pore-probability threshold at which the (smoothed) samples have the mean training porosity.
    smooth : float
        Gaussian smoothing of the probabilities before thresholding, pixels: the width used (the
        matched one for ``smooth="matched"``).
    latent : dict or None
        The Gaussian fitted to the training images' aggregate posterior
        (:func:`~microvae.vae.fit_latent`: ``mean`` list, ``cov`` nested list) that the checked
        latents were drawn from; ``None``: ``N(0, I)``.
    porosity_mean, porosity_std : float
        Mean and standard deviation (ddof = 1) of the thresholded samples' porosities.
    data_porosity_mean, data_porosity_std : float
        The same of the training images.
    pairwise_correlation : float
        Mean pairwise correlation of the thresholded samples
        (:func:`microvae.compare.pairwise_correlation`; independent samples: about 0).
    collapsed : bool
        The samples look collapsed: a porosity spread far below the data's, or near-identical samples.
    reason : str
        What made them look collapsed ("" when they do not).
    surface, data_surface : float or None
        With ``smooth="matched"``: the mean specific surface (1/pixel) of the thresholded samples
        at the matched width and of the training images; else ``None``.
    """

    threshold: float
    smooth: float
    latent: dict[str, list] | None
    porosity_mean: float
    porosity_std: float
    data_porosity_mean: float
    data_porosity_std: float
    pairwise_correlation: float
    collapsed: bool
    reason: str
    surface: float | None = None
    data_surface: float | None = None

    # Keys of every stored check; checks stored before latent fitting and smoothing existed lack
    # "smooth" (0 then) and "latent" (the prior then).
    _REQUIRED = ("threshold", "porosity_mean", "porosity_std", "data_porosity_mean", "data_porosity_std",
                 "pairwise_correlation", "collapsed", "reason")

    def to_dict(self) -> dict[str, Any]:
        """The check as the plain dict stored in a checkpoint (``surface`` and ``data_surface``
        only when set)."""
        d = {"threshold": self.threshold, "smooth": self.smooth, "latent": self.latent,
             "porosity_mean": self.porosity_mean, "porosity_std": self.porosity_std,
             "data_porosity_mean": self.data_porosity_mean, "data_porosity_std": self.data_porosity_std,
             "pairwise_correlation": self.pairwise_correlation}
        if self.surface is not None:
            d.update(surface=self.surface, data_surface=self.data_surface)
        d.update(collapsed=self.collapsed, reason=self.reason)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SampleCheck":
        """The check stored in a checkpoint (:meth:`to_dict`, or the dict of an older microvae)."""
        missing = [k for k in cls._REQUIRED if k not in d]
        if missing:
            raise ValueError(f"the stored sample check lacks {missing} (corrupt checkpoint?)")
        return cls(**{k: d[k] for k in cls._REQUIRED}, smooth=float(d.get("smooth", 0.0)),
                   latent=d.get("latent"), surface=d.get("surface"), data_surface=d.get("data_surface"))


@dataclasses.dataclass
class TrainResult:
    """Outcome of :func:`~microvae.vae.train_vae`.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    model : VAE
        The trained model, in eval mode.
    config : TrainConfig
    step : int
        Optimization steps done.
    history : list of dict
        The logged metrics rows (as in ``metrics.jsonl``).
    samples : SampleCheck or None
        The sample check of the final model (:func:`~microvae.vae.check_samples`: the
        porosity-matching threshold and the collapse diagnostics); ``None`` on processes other
        than rank 0 of a multi-process run, which do not check.
    """

    run_dir: Path
    model: VAE
    config: TrainConfig
    step: int
    history: list[dict[str, float]]
    samples: SampleCheck | None = None

    @property
    def threshold(self) -> float:
        """Pore-probability threshold at which samples have the training porosity on average."""
        if self.samples is None:
            raise ValueError("this result has no sample check (only rank 0 of a multi-process run checks)")
        return self.samples.threshold
