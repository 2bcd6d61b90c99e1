"""``microvae compare``: fidelity of generated image sets against an authentic one."""
from pathlib import Path


def register(sub):
    from .common import non_negative_int, positive_int

    p = sub.add_parser("compare", help="fidelity of generated image sets (porosity, S2, L, chords, C2, "
                                       "clusters, Euler, local patterns; optionally labels and a classifier "
                                       "two-sample test) against authentic images")
    p.add_argument("authentic", metavar="AUTHENTIC", help="authentic images (.npy/.npz)")
    p.add_argument("generated", nargs="+", metavar="GENERATED",
                   help="generated image sets; NAME=PATH names a set (default: the file stem)")
    p.add_argument("--pore-value", type=float, default=None,
                   help="stored value that marks pore (required unless the data is 0/1 with 1 = pore)")
    p.add_argument("--key", default=None, help="array name inside .npz files with several arrays")
    p.add_argument("--volume", action="store_true", help="each input is a batch of volumes (N, D, H, W)")
    p.add_argument("--r-max", type=non_negative_int, default=None,
                   help="largest distance of the curves (default: half the side)")
    p.add_argument("--connectivity", type=positive_int, default=None,
                   help="pore connectivity: 4 (default) or 8 in 2D, 6 (default) or 26 in 3D")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the authentic half/half split (noise floor)")
    p.add_argument("--labels", action="store_true",
                   help="also compare the distributions of the labels (porosity, zeta2, eta2, E, D, k; microvae.label "
                        "with d=3, non-periodic)")
    p.add_argument("--c2st", action="store_true",
                   help="also run the classifier two-sample test (a small CNN's held-out accuracy at telling each set "
                        "from authentic images; 0.5 = indistinguishable; tens of seconds of CPU per set)")
    p.add_argument("--held-out", default=None, metavar="PATH",
                   help="authentic images no generator learned from, for the classifier test (default: AUTHENTIC; "
                        "give them whenever AUTHENTIC holds the generators' training images)")
    p.add_argument("--c2st-seeds", type=positive_int, default=None,
                   help="classifier seeds averaged by the two-sample test (default 3)")
    p.add_argument("-o", "--output", default=None, help="JSON file of the full result")
    p.add_argument("--plot", default=None, help="PNG of the mean curves with ±1 std bands")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_compare)


def _named(specs):
    sets = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or Path(spec).exists():
            name, path = Path(spec).stem, spec
        if name in sets:
            raise ValueError(f"two generated sets are named {name!r}; name them with NAME=PATH")
        sets[name] = path
    return sets


def _compare(args):
    from ..compare import compare_sets, format_table, plot_comparison, save_json
    from ..io import load
    from .common import check_outputs

    sets = _named(args.generated)
    held = [args.held_out] if args.held_out else []
    check_outputs(args, args.output, args.plot, inputs=[args.authentic, *sets.values(), *held])
    if (args.held_out or args.c2st_seeds) and not args.c2st:
        raise ValueError("--held-out and --c2st-seeds belong to the classifier test: add --c2st")
    ndim = 3 if args.volume else 2

    def read(path):
        return load(path, pore_value=args.pore_value, key=args.key)

    c2st = ({"seeds": args.c2st_seeds} if args.c2st_seeds else True) if args.c2st else False
    result = compare_sets(read(args.authentic), {name: read(path) for name, path in sets.items()},
                          r_max=args.r_max, seed=args.seed, connectivity=args.connectivity, ndim=ndim,
                          labels=args.labels, c2st=c2st, held_out=read(args.held_out) if args.held_out else None)
    result["inputs"] = {"authentic": str(args.authentic), "generated": sets, "pore_value": args.pore_value,
                        "held_out": args.held_out}
    print(format_table(result))
    if args.output:
        save_json(args.output, result, overwrite=args.overwrite)
        print(f"wrote {args.output}")
    if args.plot:
        plot_comparison(args.plot, result, overwrite=args.overwrite)
        print(f"wrote {args.plot}")
