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
:mod:`microvae.vae`, :class:`microvae.mrf.MRF`) and the embedded synthetic data set.

A run folder holds ``config.json``, the cached stages (``authentic.npz``,
``generated/<name>.npz``, ``models/``), one JSON file per finished training cell
(``cells/``), and the outputs: ``results.json``, ``report.md``, ``figures/*.png`` and the
label tables (``labels/*.csv``). Every file is written atomically and carries the key of
its inputs (authentic images, split and label options; a generator's resolved settings; the
CNN options and the cell's draw). ``resume=True`` reuses every stage and cell whose key
still matches and recomputes the rest: an interrupted run continues where it stopped, more
draws or sizes only add cells, and a changed VAE recomputes the VAE's samples and cells
but not the MRF's. A folder holding a study of other authentic data is refused.

Modules: :mod:`.config` (presets, :class:`StudyConfig`), :mod:`.data` (authentic pool, split,
draws, plan of cells), :mod:`.labels`, :mod:`.generators` (the :class:`Generator` protocol, VAE
and MRF), :mod:`.keys` (seeds and stage keys), :mod:`.rundir` (the run folder), :mod:`.run`
(run and resume), :mod:`.stats` and :mod:`.report`.
"""
from .config import PRESETS, StudyConfig, make_config, paper_differences
from .data import authentic_pool, cell_indices, draw_indices, embedded_dataset, plan_cells, split_indices
from .generators import Generator, MRFGenerator, VAEGenerator, default_generators
from .labels import default_labeller
from .report import headline_table, render_report
from .run import reproduce, run_study
from .stats import pairwise_correlation, summarize

__all__ = ["StudyConfig", "PRESETS", "make_config", "run_study", "reproduce", "plan_cells", "draw_indices",
           "split_indices", "cell_indices", "pairwise_correlation", "authentic_pool", "embedded_dataset",
           "Generator", "VAEGenerator", "MRFGenerator", "default_generators", "default_labeller", "summarize",
           "render_report", "headline_table", "paper_differences"]
