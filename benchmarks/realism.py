"""Realism of generated microstructures against held-out authentic images (docs/vae.md, "Realism").

The protocol that judges a VAE variant: generators learn from 200 authentic images and are
judged against authentic images they never saw, from a disjoint part of the data, by the
measures of :mod:`microvae.compare` that see what a person sees: the classifier two-sample test
(:func:`microvae.c2st.c2st`), the distributions of the study's labels
(:func:`microvae.compare.label_distances`), the divergence of 3x3 pixel patterns and the pore
solidity, each with its authentic-halves noise floor. The VAE's reconstructions of held-out
images (mean latent code, decoded, smoothed and thresholded as the run samples) are judged
beside its samples.

Data sets (``--data``; each split is fixed, so every variant meets the same images):

- ``embedded``: the study's embedded synthetic set (``make demo``): 200 images of
  :func:`microvae.study.embedded_dataset` to learn from, 1200 fresh images of the same
  generator (another seed) held out.
- ``berea``: the Berea micro-CT volume (``../shared/data/berea.zip``, pore value 0), 64 px tiles
  of planes normal to all three axes, planes 32 voxels apart, tiles not overlapping within a
  plane. Generators learn from 200 tiles (seeded choice) of ``z < 176``; the 720 tiles of
  ``z >= 192`` are held out (16 voxels apart from every training tile).
- ``sandstone``: the 2D sandstone image (``../shared/data/sandstone_li2018_256.npy``, 1 = pore),
  64 px crops 4 px apart: 200 (seeded choice) of the 1225 crops within rows 0-159 to learn from,
  the 441 crops within rows 160-255 held out (no training crop overlaps them).

Commands (one run at a time; ``--out`` collects runs and results)::

    python -m benchmarks.realism train --data berea --variant preset --seed 0 --out real
    python -m benchmarks.realism mrf --data berea --seed 0 --out real
    python -m benchmarks.realism evaluate --data berea --out real --table real/berea.md

``--variant`` names a training variant of ``benchmarks/vae_ablation.py`` (``VARIANTS``; ``preset``
is the quick preset as it is), ``--set`` adds overrides as JSON, ``--tag`` names the run when the
variant name is not enough.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DATA = ("embedded", "berea", "sandstone")
N_FIT = 200


def _volume_tiles(volume, size, plane_step):
    """``size`` px tiles of planes normal to each axis, ``plane_step`` voxels apart, tiles not
    overlapping within a plane."""
    out = []
    for axis in range(3):
        vol = np.moveaxis(volume, axis, 0)
        for p in range(0, vol.shape[0], plane_step):
            for i in range(0, vol.shape[1] - size + 1, size):
                for j in range(0, vol.shape[2] - size + 1, size):
                    out.append(vol[p, i:i + size, j:j + size])
    return np.ascontiguousarray(out, dtype=np.uint8)


def _crops(image, size, step):
    """All ``size`` px crops of a 2D image whose corners lie on a grid of ``step`` px."""
    h, w = image.shape
    return np.ascontiguousarray([image[i:i + size, j:j + size] for i in range(0, h - size + 1, step)
                                 for j in range(0, w - size + 1, step)], dtype=np.uint8)


def load_data(name, size=64):
    """(the ``N_FIT`` images generators learn from, the held-out authentic images) of a data set."""
    rng = np.random.default_rng(0)
    if name == "embedded":
        from microvae.study import embedded_dataset, make_config
        from microvae.study.keys import derive_seed
        from microvae.synthetic import grains

        config = make_config("quick")
        fit = embedded_dataset(config, N_FIT)
        held = grains((size, size), n=1200, seed=derive_seed(config.seed, "held-out"), **config.synthetic)
        return fit, held
    if name == "berea":
        from microvae.io import load

        volume = load(SHARED / "berea.zip", pore_value=0)
        pool = _volume_tiles(volume[:176], size, 32)
        return pool[np.sort(rng.choice(len(pool), N_FIT, replace=False))], _volume_tiles(volume[192:], size, 32)
    if name == "sandstone":
        image = np.load(SHARED / "sandstone_li2018_256.npy")
        pool = _crops(image[:160], size, 4)
        return pool[np.sort(rng.choice(len(pool), N_FIT, replace=False))], _crops(image[160:], size, 4)
    raise SystemExit(f"unknown data set {name!r}; known: {DATA}")


def _run_name(args):
    return args.tag or f"{args.variant}_s{args.seed}"


def reconstruct(run, images, batch_size=200):
    """Held-out ``images`` through a trained VAE: mean latent code, decoded, smoothed and
    thresholded with the run's sampling settings (``run.samples``); ``(N, S, S)`` uint8."""
    import torch

    from microvae.vae.sampling import _smoothed

    vae = run.model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).float().unsqueeze(1)
            parts.append(vae.decode(vae.encode(x)[0]).squeeze(1).numpy())
    p = _smoothed(np.concatenate(parts), run.samples.smooth)
    return (p > run.samples.threshold).astype(np.uint8)


def _train(args):
    import torch

    from benchmarks.vae_ablation import VARIANTS
    from microvae.vae import sample, train_vae

    torch.set_num_threads(args.threads)
    if args.variant not in VARIANTS:
        raise SystemExit(f"unknown variant {args.variant!r}; known: {sorted(VARIANTS)}")
    fit, held = load_data(args.data)
    overrides = {**VARIANTS[args.variant], **json.loads(args.set)}
    out = Path(args.out) / args.data / "runs" / _run_name(args)
    t0 = time.perf_counter()
    run = train_vae(fit, preset="quick", out_dir=out, seed=args.seed, progress=False, image_size=fit.shape[-1],
                    **overrides)
    seconds = time.perf_counter() - t0
    samples = sample(run, args.n, seed=args.seed + 1000)
    np.savez_compressed(out / "realism.npz", samples=samples, reconstructions=reconstruct(run, held))
    meta = {"variant": args.variant, "seed": args.seed, "overrides": overrides, "train_seconds": seconds,
            "threads": args.threads, "final_terms": run.history[-1], "samples": run.samples.to_dict()}
    (out / "realism.json").write_text(json.dumps(meta, indent=1, default=float))
    print(args.data, _run_name(args), f"{seconds:.0f} s", flush=True)


def _mrf(args):
    from microvae.mrf import MRF

    fit, _ = load_data(args.data)
    out = Path(args.out) / args.data / "runs" / f"mrf_s{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = MRF().fit(fit, seed=args.seed)
    samples = model.sample(args.n, size=fit.shape[-1], seed=args.seed + 1000)
    np.savez_compressed(out / "realism.npz", samples=samples)
    (out / "realism.json").write_text(json.dumps({"variant": "mrf", "seed": args.seed, "S": int(model.S_),
                                                  "train_seconds": time.perf_counter() - t0}))
    print(args.data, "mrf", args.seed, f"{time.perf_counter() - t0:.0f} s", flush=True)


def reconstruction_scores(reconstructions, originals):
    """How closely reconstructions follow their inputs: mean pore IoU, the IoU that pores placed
    independently at the two images' porosities would give, and the fraction of equal pixels
    (with that of an all-solid image)."""
    r = reconstructions.reshape(len(reconstructions), -1).astype(bool)
    o = originals.reshape(len(originals), -1).astype(bool)
    union = (r | o).sum(axis=1)
    iou = np.where(union > 0, (r & o).sum(axis=1) / np.maximum(union, 1), 1.0)
    pr, po = r.mean(axis=1), o.mean(axis=1)
    chance = np.where(pr + po > 0, pr * po / np.maximum(pr + po - pr * po, 1e-12), 1.0)
    return {"pore_iou": float(iou.mean()), "pore_iou_independent": float(chance.mean()),
            "pixel_agreement": float((r == o).mean()), "pixel_agreement_all_solid": float(1 - po.mean())}


def judge(images, held, held_labels, c2st_options, label_options=None):
    """The realism measures of one image set against the held-out authentic images."""
    from microvae.c2st import c2st
    from microvae.compare import distribution_distance, label_distances, label_values, pattern_divergence
    from microvae.morphology import pore_solidity

    labels = label_values(images, **(label_options or {}))
    t0 = time.process_time()
    test = c2st(images, held, **c2st_options)
    test["cpu_seconds"] = time.process_time() - t0
    return {"n": int(len(images)), "c2st": test, "labels": label_distances(labels, held_labels),
            "pattern_js": pattern_divergence(images, held),
            "pore_solidity": distribution_distance(pore_solidity(held), pore_solidity(images))}


def split_floor(held, held_labels, splits=10):
    """The cheap measures' noise floor averaged over ``splits`` random halvings of the held-out
    images (one halving is itself noisy: a KS p of 0.005 happened on the embedded set)."""
    from microvae.compare import distribution_distance, pattern_divergence
    from microvae.morphology import pore_solidity

    solidity = pore_solidity(held)
    rows = []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(held))
        a, b = order[:len(held) // 2], order[len(held) // 2:2 * (len(held) // 2)]
        rows.append({"pattern_js": pattern_divergence(held[b], held[a]),
                     "pore_solidity": distribution_distance(solidity[a], solidity[b])["w1_rel"],
                     **{k: distribution_distance(v[a], v[b])["w1_rel"] for k, v in held_labels.items()}})
    return {"splits": splits, **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}


def _sets(args, fit, held):
    """{row name: images} of every finished run, the training images and the authentic halves."""
    rows = {"fit": fit}
    for run in sorted((Path(args.out) / args.data / "runs").glob("*_s*")):
        path = run / "realism.npz"
        if path.is_file():
            with np.load(path) as z:
                rows[run.name] = z["samples"]
                if "reconstructions" in z.files:
                    rows[f"{run.name}:reconstructions"] = z["reconstructions"]
    return rows


def _evaluate(args):
    import torch

    from benchmarks.vae_ablation import score
    from microvae.compare import compare_sets, describe, label_values

    torch.set_num_threads(args.threads)
    fit, held = load_data(args.data)
    c2st_options = json.loads(args.c2st)
    out = Path(args.out) / args.data
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "realism_rows.json"
    rows = json.loads(cache.read_text()) if cache.exists() else {}
    # Same seeds, same results for the same number of torch threads.
    key = json.dumps({**c2st_options, "threads": args.threads}, sort_keys=True)
    held_labels = label_values(held)
    order = np.random.default_rng(0).permutation(len(held))
    half = len(held) // 2
    half_a, half_b = np.sort(order[:half]), np.sort(order[half:2 * half])
    auth = describe(held)
    todo = {"authentic halves": None, **_sets(args, fit, held)}
    for name, images in todo.items():
        if rows.get(name, {}).get("c2st_options") == key:
            continue
        t0 = time.perf_counter()
        if images is None:
            row = judge(held[half_b], held[half_a], {k: v[half_a] for k, v in held_labels.items()}, c2st_options)
            morph = compare_sets(auth, {"x": held[:2]}, seed=0)["noise_floor"]
        else:
            row = judge(images, held, held_labels, c2st_options)
            morph = compare_sets(auth, {"x": images}, seed=0, noise_floor=False)["generated"]["x"]
            if name.endswith(":reconstructions"):
                row["reconstruction"] = reconstruction_scores(images, held)
        row["targets"] = score(morph)
        row["c2st_options"] = key
        rows[name] = row
        cache.write_text(json.dumps(rows, indent=1))
        print(f"{name}: C2ST {row['c2st']['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows["authentic halves"]["split_floor"] = split_floor(held, held_labels)
    cache.write_text(json.dumps(rows, indent=1))
    text = realism_table(rows)
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n")


def _group(name):
    """(generator, what) of a row name: ``preset_s0`` -> ("preset", "samples")."""
    run, _, what = name.partition(":")
    base, sep, seed = run.rpartition("_s")
    return (base if sep and seed.isdigit() else run), (what or "samples")


def realism_table(rows):
    """Markdown table of the evaluated rows, averaged over the runs (seeds) of each generator."""
    from benchmarks.vae_ablation import passes

    groups = {}
    for name, row in rows.items():
        groups.setdefault(_group(name), []).append((name, row))
    mrf = [r["targets"] for n, r in rows.items() if _group(n) == ("mrf", "samples")]
    mrf_mean = {k: float(np.mean([m[k] for m in mrf])) for k in mrf[0]} if mrf else None
    labels = list(next(iter(rows.values()))["labels"])
    head = (["set", "what", "runs", "C2ST [95 % CI] per run"] + [f"W1/σ {k}" for k in labels] + ["KS p (E, D, k)"]
            + ["3x3 JS, mbit", "solidity W1/σ", "pore IoU (indep.)", "targets met"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (gen, what), members in groups.items():
        rs = [r for _, r in members]
        runs = [f"{r['c2st']['accuracy']:.3f} [{r['c2st']['ci'][0]:.2f}, {r['c2st']['ci'][1]:.2f}]" for r in rs]
        mean = np.mean([r["c2st"]["accuracy"] for r in rs])
        cells = [gen, what, str(len(rs)), (f"{mean:.3f}: " if len(rs) > 1 else "") + " / ".join(runs)]
        floor = rs[0].get("split_floor") if gen == "authentic halves" else None
        if floor:  # the mean over several halvings, not the one the classifier used
            cells += [f"{floor[k]:.2f}" for k in labels] + [""]
            cells += [f"{1000 * floor['pattern_js']:.2f}", f"{floor['pore_solidity']:.2f}"]
        else:
            cells += [f"{np.mean([r['labels'][k]['w1_rel'] for r in rs]):.2f}" for k in labels]
            cells.append(", ".join(f"{np.median([r['labels'][k]['ks_pvalue'] for r in rs]):.2g}"
                                   for k in ("E", "D", "k")))
            cells.append(f"{1000 * np.mean([r['pattern_js'] for r in rs]):.2f}")
            cells.append(f"{np.mean([r['pore_solidity']['w1_rel'] for r in rs]):.2f}")
        rec = [r["reconstruction"] for r in rs if "reconstruction" in r]
        iou = np.mean([x["pore_iou"] for x in rec]) if rec else math.nan
        chance = np.mean([x["pore_iou_independent"] for x in rec]) if rec else math.nan
        cells.append(f"{iou:.2f} ({chance:.2f})" if rec else "")
        t = {k: float(np.mean([r["targets"][k] for r in rs])) for k in rs[0]["targets"]}
        ok = passes(t, mrf_mean) if mrf_mean else {}
        cells.append(f"{sum(ok.values())}/{len(ok)}" if ok else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("train", "mrf", "evaluate"))
    p.add_argument("--data", choices=DATA, required=True)
    p.add_argument("--variant", default="preset")
    p.add_argument("--set", default="{}", help="extra training overrides as JSON")
    p.add_argument("--tag", default=None, help="run name (default: VARIANT_sSEED)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=1000, help="samples per generator")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--c2st", default="{}", help="options of microvae.c2st.c2st as JSON (default: its defaults)")
    p.add_argument("--table", default=None, help="also write the evaluation table (markdown) here")
    args = p.parse_args(argv)
    {"train": _train, "mrf": _mrf, "evaluate": _evaluate}[args.action](args)


if __name__ == "__main__":
    main(sys.argv[1:])
