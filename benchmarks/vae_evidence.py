"""Evidence for the style loss on real data (docs/vae.md): plain VAE vs style-VAE vs the prior ablation.

Trains each variant on the same authentic Berea slices with the same seed and number of steps,
samples images from each, and compares them with held-out authentic slices:

- porosity: mean and standard deviation, and the 1-Wasserstein distance between the per-image
  porosity distributions of generated and authentic images;
- two-point correlation: RMS difference between the mean radial S2 curves (non-periodic
  estimator, r = 0..S/2), and the same for the curves normalized as (S2(r) - phi^2) / (phi - phi^2)
  per image, which isolates the morphology (length scales) from the porosity.

The authentic training set against the held-out set gives the sampling noise floor.

    python benchmarks/vae_evidence.py --steps 1000 --seed 0 --out evidence64

Needs ../shared/data/berea.zip (or --data). Writes ``OUT/results.json`` and ``OUT/<variant>``
run folders with sample mosaics.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from microvae.correlations import s2
from microvae.io import load, slices
from microvae.plotting import mosaic
from microvae.train import load_config, sample, train_vae

VARIANTS = {
    "plain": {"style_mode": "none"},
    "style": {"style_mode": "paired"},
    "prior": {"style_mode": "prior"},
}


def s2_curves(images):
    curves = s2(images, periodic=False)
    phi = curves[:, :1]
    norm = (curves - phi ** 2) / np.maximum(phi - phi ** 2, 1e-12)
    return curves, norm


def compare(generated, reference):
    pg, pr = generated.reshape(len(generated), -1).mean(1), reference.reshape(len(reference), -1).mean(1)
    (cg, ng), (cr, nr) = s2_curves(generated), s2_curves(reference)
    return {"porosity_mean": float(pg.mean()), "porosity_std": float(pg.std()),
            "porosity_w1": float(wasserstein_distance(pg, pr)),
            "s2_rms": float(np.sqrt(np.mean((cg.mean(0) - cr.mean(0)) ** 2))),
            "s2_normalized_rms": float(np.sqrt(np.mean((ng.mean(0) - nr.mean(0)) ** 2)))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "berea.zip"))
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-generated", type=int, default=1000)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the quick preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra training override for every variant, e.g. --set w_st=100")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set takes KEY=VALUE, got {item!r}")
        try:  # numbers, booleans, lists; anything else (backend=torch) is a string
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    steps = {} if args.steps is None else {"steps": args.steps}
    volume = load(args.data, pore_value=0)
    train = slices(volume, args.size, args.n_train, seed=args.seed + 1)
    test = slices(volume, args.size, args.n_test, seed=args.seed + 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"command": "python benchmarks/vae_evidence.py " + " ".join(argv or sys.argv[1:]),
               "size": args.size, "steps": args.steps or load_config("quick").steps, "seed": args.seed,
               "overrides": overrides,
               "authentic_train": compare(train, test), "authentic_test": compare(test, test)}
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        run = train_vae(train, preset="quick", out_dir=out / name, seed=args.seed, progress=False,
                        image_size=args.size, **{**steps, **overrides, **VARIANTS[name]})
        generated = sample(run, args.n_generated, seed=args.seed + 3)
        mosaic(out / f"{name}.png", generated[:32], title=f"{name} VAE, {run.step} steps", overwrite=True)
        results[name] = {**compare(generated, test), "train_seconds": time.perf_counter() - t0,
                         "final_terms": run.history[-1]}
        print(name, json.dumps(results[name]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
