"""What defines a study: the presets, :class:`StudyConfig` and how a config departs from the paper's."""
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .._validate import check_int
from ..io import jsonable

__all__ = ["PRESETS", "LABEL_DEFAULTS", "StudyConfig", "make_config", "paper_differences"]

PRESETS = {
    # The paper's protocol (§4.2): 128 px, 1000 samples per generator, 50..1000 added, ten
    # draws, one CNN per property. Sized for a GPU (the VAE dominates).
    "paper": dict(image_size=128, n_generated=1000, added=(50, 100, 200, 400, 600, 800, 1000), draws=10,
                  predictor=dict(channels=(16, 32, 64, 64), hidden=64, batch_size=16, max_epochs=200, patience=20,
                                 joint=False),
                  vae=dict(preset="paper"), synthetic=dict(radius=8.0, porosity=0.2, porosity_spread=0.04),
                  c2st={}),
    # Within 20 minutes end to end on two CPU cores (measured: 9.3 min on the embedded set with
    # two free cores, 16.1 min on Berea on one thread beside another job): 64 px images, the
    # VAE's quick preset, five of the paper's seven sizes with three draws, one multi-output CNN
    # with fewer channels and a shorter early-stopping window (training it on 1100 images takes
    # ~40 s on one core). The classifier two-sample test sees at most 300 images per class.
    "quick": dict(image_size=64, n_generated=1000, added=(50, 100, 200, 400, 1000), draws=3,
                  predictor=dict(channels=(8, 16, 32, 32), hidden=64, batch_size=16, max_epochs=40, patience=6,
                                 joint=True),
                  vae=dict(preset="quick"), synthetic=dict(radius=4.0, porosity=0.2, porosity_spread=0.05),
                  c2st=dict(max_per_class=300)),
}

LABEL_DEFAULTS = dict(d=3, K1=4.3, G1=3.8, voxel_size=1.0)


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
        ``sample``, options of :func:`microvae.vae.sample`); ``mrf`` = ``model`` (MRF
        constructor arguments) and ``sample`` (MRF sampling options).
    synthetic : dict
        Parameters of the embedded data set (:func:`microvae.synthetic.grains`).
    c2st : dict or None
        Options of the realism section's classifier two-sample test (:func:`microvae.c2st.c2st`:
        ``seeds``, ``max_per_class``, ...; the function's defaults where absent); ``None`` leaves
        the test out.
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
    label: dict = field(default_factory=lambda: dict(LABEL_DEFAULTS))
    predictor: dict = field(default_factory=dict)
    vae: dict = field(default_factory=dict)
    mrf: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)
    c2st: dict | None = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        for name in ("image_size", "n_train", "n_val", "n_test", "draws"):
            check_int(getattr(self, name), name)
        check_int(self.n_generated, "n_generated", minimum=1 if self.generators else 0)
        self.added = tuple(check_int(m, "added") for m in self.added)
        self.generators = tuple(self.generators)
        self.properties = tuple(self.properties)
        if min(self.n_train, self.n_val, self.n_test) < 2:
            raise ValueError("n_train, n_val and n_test must each be at least 2")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if not self.properties:
            raise ValueError("properties must name at least one label")
        if len(set(self.generators)) != len(self.generators):
            raise ValueError(f"generator names repeat: {self.generators}")
        if any(m < 1 or m > self.n_generated for m in self.added) or len(set(self.added)) != len(self.added):
            raise ValueError(f"added must be distinct sizes from 1 to n_generated ({self.n_generated}), "
                             f"got {self.added}")
        from ..nn.predictor import PredictorConfig

        if self.c2st is not None:
            from ..c2st import C2ST_DEFAULTS

            unknown = set(self.c2st) - set(C2ST_DEFAULTS)
            if unknown:
                raise ValueError(f"unknown c2st option(s) {sorted(unknown)}; known: {sorted(C2ST_DEFAULTS)}")
            self.c2st = dict(self.c2st)
        self.label = {**LABEL_DEFAULTS, **self.label}
        # Complete and check the CNN options now, not after an hour of generation.
        self.predictor = asdict(PredictorConfig(**self.predictor))

    def to_dict(self) -> dict:
        """The config as ``config.json`` holds it (lists, string keys), so that one read back compares equal."""
        return json.loads(json.dumps(jsonable(asdict(self))))


def make_config(preset: str = "quick", **overrides) -> StudyConfig:
    """A :class:`StudyConfig` from a preset plus overrides.

    Overrides of the dict-valued fields (``predictor``, ``vae``, ``mrf``, ``label``,
    ``synthetic``, ``c2st``) update the preset's dict (``c2st=None`` leaves the classifier test
    out); other fields replace the preset's value.
    ``max_epochs`` is a shortcut for ``predictor={"max_epochs": ...}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].items()}
    values["label"] = dict(LABEL_DEFAULTS)
    if "max_epochs" in overrides:
        values["predictor"]["max_epochs"] = overrides.pop("max_epochs")
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


def paper_differences(cfg: dict) -> list[str]:
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
