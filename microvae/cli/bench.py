"""``microvae bench``: the benchmark cases of :mod:`microvae.bench` as one table, and JSON."""


def register(sub):
    p = sub.add_parser(
        "bench", help="throughput of S2, the PoreSpy/PyMKS drop-ins, labels, MRF sampling (and more) on this machine",
        description="Run the benchmark cases of microvae.bench in this process: S2 against plain NumPy and, when "
                    "installed, PoreSpy and PyMKS; property labels; MRF sampling; the loss ops and training step. "
                    "Prints one table (rates, speed-ups over the baseline measured in the same run) with the "
                    "device, thread count and library versions; --json writes the same report.")
    p.add_argument("--quick", action="store_true", help="small sizes and short timings (well under 5 minutes)")
    p.add_argument("--cases", default=None, help="comma-separated case names (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="torch devices for the tensor cases (default auto: cpu, plus cuda when available)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON (atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def run(args):
    import json
    import sys

    from ..bench import registry  # importing the package registers every case
    from ..io import atomic_write
    from .common import check_outputs

    if args.list:
        for name, case in registry.CASES.items():
            print(f"{name:10s} {case.description}")
        return 0
    check_outputs(args, args.json)
    names = None if args.cases is None else [n.strip() for n in args.cases.split(",") if n.strip()]
    devices = {"auto": None, "cpu": ("cpu",), "cuda": ("cpu", "cuda")}[args.device]
    report = registry.run(names, quick=args.quick, devices=devices, progress=lambda line: print(line, file=sys.stderr))
    print(registry.format_table(report))
    if args.json:
        text = json.dumps(report, indent=2)
        atomic_write(args.json, lambda fh: fh.write(text), overwrite=args.overwrite, mode="w")
    return 0
