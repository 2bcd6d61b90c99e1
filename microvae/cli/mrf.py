"""``microvae mrf fit|sample``: the MRF baseline generator (Bostanabad et al. 2016)."""


def register(sub):
    from .common import add_input_arguments, non_negative_int, positive_int

    p = sub.add_parser("mrf", help="MRF baseline: fit a causal-neighbourhood tree model, sample new images")
    msub = p.add_subparsers(dest="mrf_command", metavar="ACTION", required=True)

    pf = msub.add_parser("fit", help="learn an MRF from 2D training images (1 = pore)")
    add_input_arguments(pf)
    pf.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    pf.add_argument("-S", type=positive_int, default=None,
                    help="neighbourhood half-width (default: chosen by cross-validation over --S-range)")
    pf.add_argument("--S-range", default="2:11", help="candidates for S as start:stop (stop excluded) or a list "
                                                       "1,2,3 (default 2:11)")
    pf.add_argument("--cv-scoring", choices=("morphology", "log_loss", "accuracy"), default="morphology",
                    help="criterion for choosing S (default morphology: held-out S2, lineal-path and cluster "
                         "functions of sampled images)")
    pf.add_argument("--min-samples-leaf", type=positive_int, default=20, help="minimum training pixels per tree leaf")
    pf.add_argument("--max-samples", type=non_negative_int, default=1_000_000,
                    help="training pixels per tree (seeded subsample; 0 = all)")
    pf.add_argument("--gibbs-S", type=non_negative_int, default=2,
                    help="half-width of the Gibbs tree's square neighbourhood (0 = no Gibbs tree)")
    pf.add_argument("--seed", type=non_negative_int, default=0)
    pf.add_argument("--overwrite", action="store_true")
    pf.set_defaults(func=_fit)

    ps = msub.add_parser("sample", help="draw images from a fitted MRF model")
    ps.add_argument("model", help="model file written by 'microvae mrf fit'")
    ps.add_argument("-n", type=positive_int, required=True, help="number of images")
    ps.add_argument("--size", type=positive_int, default=128, help="side of the square images, pixels (default 128)")
    ps.add_argument("--margin", choices=("real", "noise"), default="real",
                    help="seed the sampler's margins with training tiles (default) or noise")
    ps.add_argument("--burn-in", type=non_negative_int, default=None,
                    help="sampled rows/columns discarded (default 2 S + 8)")
    ps.add_argument("--gibbs-sweeps", type=non_negative_int, default=0, help="Gibbs refinement sweeps (default 0)")
    ps.add_argument("--porosity", default=None,
                    help="match porosity: 'train' (a training image's porosity per sample) or a number in [0, 1]")
    ps.add_argument("--seed", type=non_negative_int, default=0)
    ps.add_argument("-o", "--output", required=True, help="output .npz/.npy/.tif")
    ps.add_argument("--mosaic", default=None, help="also write a PNG mosaic of the first 32 images")
    ps.add_argument("--overwrite", action="store_true")
    ps.set_defaults(func=_sample)


def _fit(args):
    import json
    import time

    from ..io import jsonable
    from ..mrf import MRF
    from .common import check_outputs, read_images

    check_outputs(args, args.output, inputs=[args.input])
    images, nd = read_images(args)
    if nd != 2:
        raise ValueError("mrf fit needs 2D images; cut slices from a volume first with 'microvae data slice'")
    model = MRF(S=args.S, S_range=_int_range(args.S_range), cv_scoring=args.cv_scoring,
                min_samples_leaf=args.min_samples_leaf, max_samples=args.max_samples or None,
                gibbs_S=args.gibbs_S or None)
    start = time.perf_counter()
    model.fit(images, seed=args.seed)
    model.save(args.output, overwrite=args.overwrite)
    summary = {"S": model.S_, "training_images": len(images), "porosity": round(model.porosity_, 4),
               "causal_tree_nodes": len(model.causal_tree_["left"]), "fit_seconds": round(time.perf_counter() - start, 1)}
    if model.cv_scores_:
        summary["cv_scores"] = {s: round(v[0], 5) for s, v in model.cv_scores_.items()}
    print(json.dumps(jsonable(summary)))
    print(f"wrote MRF model (S = {model.S_}) to {args.output}")


def _sample(args):
    from ..io import save
    from ..mrf import MRF
    from .common import check_outputs

    check_outputs(args, args.output, args.mosaic, inputs=[args.model], images=args.output)
    porosity = args.porosity
    if porosity is not None and porosity != "train":
        try:
            porosity = float(porosity)
        except ValueError:
            raise ValueError(f"--porosity must be 'train' or a number in [0, 1], got {porosity!r}") from None
    model = MRF.load(args.model)
    images = model.sample(args.n, size=args.size, seed=args.seed, margin=args.margin, burn_in=args.burn_in,
                          gibbs_sweeps=args.gibbs_sweeps, porosity=porosity, progress=True)
    save(args.output, images, overwrite=args.overwrite)
    if args.mosaic:
        from ..plotting import mosaic

        mosaic(args.mosaic, images[:32], title=f"MRF samples (S = {model.S_})", overwrite=args.overwrite)
    print(f"wrote {len(images)} MRF samples of {args.size}x{args.size} (porosity {images.mean():.4f}) to {args.output}")


def _int_range(text):
    """``"2:11"`` (start:stop, stop excluded) or ``"2,4,6"`` into a list of ints."""
    try:
        if ":" in text:
            start, stop = (int(v) for v in text.split(":"))
            return list(range(start, stop))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--S-range must be start:stop or a comma-separated list of integers, got {text!r}") from None
