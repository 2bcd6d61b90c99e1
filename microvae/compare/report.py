"""A :func:`~microvae.compare.compare_sets` result written out: as JSON, a figure of the mean
curves, a Markdown table."""
import io as _io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_write, write_json
from .descriptors import CURVES, SCALARS

__all__ = ["save_json", "plot_comparison", "format_table"]


def save_json(path: str | os.PathLike, result: dict, *, overwrite: bool = False) -> Path:
    """Write a :func:`compare_sets` result as JSON (:func:`microvae.io.write_json`), atomically
    (refuses to replace a file unless ``overwrite``)."""
    return write_json(path, result, overwrite=overwrite, indent=1)


def plot_comparison(path: str | os.PathLike, result: dict, *, curves: Sequence[str] | None = None,
                    overwrite: bool = False, dpi: int = 120) -> Path:
    """Figure of the mean curves ± 1 std band of each set: authentic and every generated set.

    Parameters
    ----------
    path : str or Path
        PNG to write (atomically; an existing file is kept unless ``overwrite``).
    result : dict
        A :func:`compare_sets` result.
    curves : sequence of str, optional
        Curve names (default: all of :data:`CURVES`).
    overwrite : bool
    dpi : int

    Returns
    -------
    Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(curves) if curves is not None else list(CURVES)
    unknown = [c for c in names if c not in CURVES]
    if unknown:
        raise ValueError(f"unknown curves {unknown}; choose from {list(CURVES)}")
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    sets = [("authentic", result["authentic"]), *result["generated"].items()]
    for i, key in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        x = np.asarray(result["x"][key], dtype=float)
        for label, entry in sets:
            mean = np.asarray(entry["curves"][key]["mean"], dtype=float)
            std = np.asarray(entry["curves"][key]["std"], dtype=float)
            line, = ax.plot(x, mean, label=f"{label} ({entry['n']})", lw=2 if label == "authentic" else 1.2,
                            color="black" if label == "authentic" else None)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
        if key.startswith("chord"):
            ax.set_xlim(1, min(x[-1], 4 * result["settings"]["r_max"]))
        ax.set_xlabel(f"{CURVES[key][0]} (pixels)")
        ax.set_title(CURVES[key][1], fontsize=8)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()), overwrite=overwrite)


def _fmt(value, digits=3):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def format_table(result: dict, *, digits: int = 3) -> str:
    """A Markdown table of a :func:`compare_sets` result: one column per generated set and one for
    the noise floor (authentic half vs half)."""
    cols = [(name, e) for name, e in result["generated"].items()]
    if result["noise_floor"] is not None:
        cols.append(("noise floor", result["noise_floor"]))
    a = result["authentic"]
    f = lambda v: _fmt(v, digits)  # noqa: E731
    header = ["quantity", f"authentic ({a['n']})"] + [f"{n} ({e['n']})" for n, e in cols]
    rows = [["porosity mean ± std", f"{f(a['porosity']['mean'])} ± {f(a['porosity']['std'])}"]
            + [f"{f(e['porosity']['mean'])} ± {f(e['porosity']['std'])}" for _, e in cols]]
    porosity_rows = (("ks_pvalue", "porosity KS p"), ("w1_rel", "porosity W1/σ"), ("std_ratio", "porosity std ratio"))
    for key, label in porosity_rows:
        rows.append([label, ""] + [f(e["porosity"][key]) for _, e in cols])
    for key in CURVES:
        rows.append([f"{key}: max / rms diff", ""]
                    + [f"{f(e['curves'][key]['max_diff'])} / {f(e['curves'][key]['rms_diff'])}" for _, e in cols])
    for key in SCALARS:
        rows.append([f"{key}: mean (rel diff, W1/σ)", f(a["scalars"][key]["mean"])]
                    + [f"{f(e['scalars'][key]['mean'])} ({f(e['scalars'][key]['rel_diff'])}, "
                       f"{f(e['scalars'][key]['w1_rel'])})" for _, e in cols])
    rows.append(["diversity (pairwise corr.)", f(a["diversity"])] + [f(e["diversity"]) for _, e in cols])
    rows.append(["3x3 pattern JS divergence, mbit", ""]
                + [f(None if e["pattern_js"] is None else 1000 * e["pattern_js"]) for _, e in cols])
    for key, s in a.get("labels", {}).items():
        rows.append([f"label {key}: mean (W1/σ, KS p)", f(s["mean"])]
                    + [f"{f(e['labels'][key]['mean'])} ({f(e['labels'][key]['w1_rel'])}, "
                       f"{_fmt(e['labels'][key]['ks_pvalue'], 2)})" for _, e in cols])
    if "c2st" in result["settings"]:
        rows.append([f"C2ST accuracy [95 % CI] vs {result['settings']['c2st']['n_held_out']} held-out", "0.5"]
                    + [f"{f(e['c2st']['accuracy'])} [{f(e['c2st']['ci'][0])}, {f(e['c2st']['ci'][1])}]"
                       for _, e in cols])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
