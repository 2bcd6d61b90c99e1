"""``microvae reproduce``: the paper's augmentation study, end to end, into a run folder."""


def register(sub):
    from .common import add_input_arguments, device, non_negative_int, positive_int, thread_count

    p = sub.add_parser(
        "reproduce",
        help="the augmentation study: labels, VAE + MRF, CNN with added samples, R² curves and a report",
        description="Split authentic images 100/100/100, train the VAE and fit the MRF on the training + "
                    "validation images, label generated samples, retrain the property CNN with increasing "
                    "numbers of them added, and write results.json, report.md and figures. Without IN, "
                    "an embedded synthetic sandstone-like set is used (no downloads).",
    )
    add_input_arguments(p, nargs="?")
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="quick: CPU, ~20 min at 64 px with fewer sizes/draws; paper: the full protocol (GPU)")
    p.add_argument("-o", "--out", default=None, help="run folder (default: ./study_<preset>)")
    p.add_argument("--size", type=positive_int, default=None, help="image side in pixels (quick 64, paper 128)")
    p.add_argument("--n-generated", type=positive_int, default=None, help="samples generated per generator")
    p.add_argument("--added", default=None,
                   help="numbers of generated samples added to the training set, e.g. 50,100,200")
    p.add_argument("--draws", type=positive_int, default=None, help="random draws per number added (all samples: one)")
    p.add_argument("--split", default=None, help="authentic train,validation,test sizes (default 100,100,100)")
    p.add_argument("--generators", default=None, help="comma-separated subset of vae,mrf")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="maximum CNN epochs (early stopping on validation)")
    p.add_argument("--vae-steps", type=positive_int, default=None,
                   help="VAE training steps (default: the VAE preset's)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", type=device, default=None,
                   help="torch device for the VAE and the CNN (e.g. cuda; default: cuda for the VAE when available, "
                        "cpu for the CNN)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in the run folder: reuse stages and cells whose inputs are unchanged")
    p.add_argument("--overwrite", action="store_true", help="recompute and replace an existing run folder's files")
    p.set_defaults(func=_reproduce, cli_keywords={"image_size": "--size", "max_epochs": "--epochs",
                                                  "n_train, n_val and n_test": "--split (train, validation, test)"})


def _reproduce(args):
    from ..study import reproduce
    from .common import read_images

    overrides = {}
    if args.size is not None:
        overrides["image_size"] = args.size
    if args.n_generated is not None:
        overrides["n_generated"] = args.n_generated
    if args.added is not None:
        overrides["added"] = _ints(args.added, "--added")
    if args.draws is not None:
        overrides["draws"] = args.draws
    if args.generators is not None:
        overrides["generators"] = tuple(v.strip() for v in args.generators.split(",") if v.strip())
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    if args.split is not None:
        sizes = _ints(args.split, "--split")
        if len(sizes) != 3:
            raise ValueError(f"--split takes three sizes train,validation,test; got {args.split!r}")
        overrides.update(n_train=sizes[0], n_val=sizes[1], n_test=sizes[2])
    if args.vae_steps is not None:
        overrides["vae"] = {"steps": args.vae_steps}

    images, nd, source, pore_value = None, 2, None, args.pore_value
    if args.input is not None:
        images, nd = read_images(args)
        source = str(args.input)
        if pore_value is not None and float(pore_value).is_integer():
            pore_value = int(pore_value)
    result = reproduce(images, ndim=nd, source=source, pore_value=pore_value, preset=args.preset,
                       out_dir=args.out or f"study_{args.preset}", seed=args.seed, resume=args.resume,
                       overwrite=args.overwrite, threads=args.threads, device=args.device,
                       **overrides)
    print(f"wrote {result['report']} and {result['results']}")


def _ints(text, option):
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option} takes comma-separated integers, got {text!r}") from None
