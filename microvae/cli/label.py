"""``microvae label``: strong-contrast (or full-field) property labels of image sets, to CSV (+ JSON sidecar)."""
import argparse


def register(sub):
    from .common import add_input_arguments, non_negative_int, positive_float, positive_int

    p = sub.add_parser(
        "label", help="porosity, three-point parameters, E/E1, De/D2 and permeability of every image, to CSV "
                      "(--method fullfield: full-field solves instead)",
        description="Label binary microstructures (1 = pore) with porosity, the three-point parameters "
                    "zeta2/eta2 and strong-contrast E/E1, De/D2 and the two-point permeability bound, or "
                    "with --method fullfield with full-field De/D2, E/E1 and Stokes permeability. "
                    "Work is split into chunks; finished chunks are kept beside the output so an "
                    "interrupted run resumes where it stopped.")
    add_input_arguments(p, nargs="+",
                        input_help="image stacks or volumes (.npy/.npz/.tif/.zip, PNG folder, raw with "
                                   "--shape/--dtype), or Zarr (.zarr) / HDF5 (.h5, .hdf5) arrays of shape (N, H, W)",
                        volume_help="each input is one 3D volume (D, H, W), labeled as a volume unless --slice "
                                    "is given")
    p.add_argument("--dataset", default=None, help="array path inside a Zarr group or HDF5 file")
    p.add_argument("--slice", type=positive_int, default=None, metavar="SIZE",
                   help="cut each volume into SIZE x SIZE slices (regular grid, stride SIZE unless --stride) "
                        "and label the slices")
    p.add_argument("--axes", default="0,1,2", help="with --slice: axes normal to the cutting planes (default 0,1,2)")
    p.add_argument("--stride", type=positive_int, default=None, help="with --slice: grid step (default: SIZE)")
    p.add_argument("--d", type=int, choices=(2, 3), default=3,
                   help="dimension of the medium the formulas describe (default 3: 2D images are slices of "
                        "an isotropic 3D material; 2: a genuinely two-dimensional medium)")
    p.add_argument("--method", choices=("strong-contrast", "fullfield"), default="strong-contrast",
                   help="strong-contrast expansions (default) or full-field solves (taufactor diffusion, FFT "
                        "elasticity, Stokes; minutes per 64^3 volume; volumes need --d 3, 2D images --d 2)")
    p.add_argument("--K1", type=positive_float, default=4.3, help="bulk modulus of the rock (default 4.3 GPa)")
    p.add_argument("--G1", type=positive_float, default=3.8, help="shear modulus of the rock (default 3.8 GPa)")
    p.add_argument("--voxel-size", type=positive_float, default=1.0, help="pixel length; k is reported in its square")
    p.add_argument("--periodic", action=argparse.BooleanOptionalAction, default=True,
                   help="periodic boundaries (default; exact for periodic synthetic media); --no-periodic for "
                        "crops of larger samples (mean-medium padding, interior average)")
    p.add_argument("--margin", type=non_negative_int, default=None,
                   help="with --no-periodic: border excluded from the three-point average, pixels "
                        "(default: side // 16)")
    p.add_argument("--extrapolate", action=argparse.BooleanOptionalAction, default=True,
                   help="remove the leading pixel-discretization error by resolution extrapolation (default)")
    p.add_argument("--harmonics", type=positive_int, default=None,
                   help="d=3 on 2D images: highest harmonic of the angular expansion (default 12)")
    p.add_argument("--batch-size", "--chunk", type=positive_int, default=None,
                   help="images per chunk, the unit of progress and resume (default: ~16 million pixels; "
                        "--method fullfield: ~1 million, four 64^3 volumes)")
    p.add_argument("--processes", "--workers", type=positive_int, default=None,
                   help="label chunks on a local Dask cluster with this many worker processes")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")
    p.add_argument("-o", "--output", required=True, help="CSV, one row per image (+ JSON sidecar)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output and discard chunks saved by an earlier run")
    p.set_defaults(func=_label, cli_keywords={"slice_size": "--slice", "client": "--scheduler"})


def _label(args):
    from pathlib import Path

    import numpy as np

    from ..io import sidecar_path
    from ..labeling import label_to_csv
    from .common import check_outputs

    output = Path(args.output)
    check_outputs(args, output, sidecar_path(output), inputs=args.input)
    options = dict(d=args.d, K1=args.K1, G1=args.G1, voxel_size=args.voxel_size, periodic=args.periodic,
                   margin=args.margin, extrapolate=args.extrapolate, harmonics=args.harmonics)
    if args.method == "fullfield":
        options["method"] = "fullfield"
        from ..fullfield import FULLFIELD_INVALID_FLAGS as invalid_flags
        flagged_as = "with a solve that did not converge"
    else:
        from ..properties.strong_contrast import INVALID_FLAGS as invalid_flags
        flagged_as = "outside the formulas' validity"
    table = label_to_csv(args.input, output, pore_value=args.pore_value, key=args.key, shape=args.shape,
                         dtype=args.dtype, volume=args.volume, dataset=args.dataset, slice_size=args.slice,
                         axes=tuple(int(a) for a in args.axes.split(",")), stride=args.stride,
                         batch_size=args.batch_size, client=args.scheduler, processes=args.processes,
                         overwrite=args.overwrite, progress=True, **options)
    n = len(table["porosity"])
    flagged = int(n - table["valid"].sum())
    why = "; ".join(f"{int(np.count_nonzero(table['invalid'] & bit))} with {text}" for bit, text in
                    invalid_flags.items() if np.any(table["invalid"] & bit))
    print(f"wrote labels of {n} images to {output} ({flagged} flagged {flagged_as}"
          + (f": {why})" if why else ")"))
