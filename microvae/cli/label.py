"""``microvae label``: strong-contrast property labels of image sets, to CSV (+ JSON sidecar)."""
import argparse


def register(sub):
    p = sub.add_parser(
        "label", help="porosity, three-point parameters, E/E1, De/D2 and permeability of every image, to CSV",
        description="Label binary microstructures (1 = pore) with porosity, the three-point parameters "
                    "zeta2/eta2 and strong-contrast E/E1, De/D2 and the two-point permeability bound. "
                    "Work is split into chunks; finished chunks are kept beside the output so an "
                    "interrupted run resumes where it stopped.")
    p.add_argument("input", nargs="+", metavar="IN",
                   help="image stacks or volumes (.npy/.npz/.tif/.zip, PNG folder, raw with --shape/--dtype), "
                        "or Zarr (.zarr) / HDF5 (.h5, .hdf5) arrays of shape (N, H, W)")
    p.add_argument("--pore-value", type=float, default=None,
                   help="stored value that marks pore (required unless the data is 0/1 with 1 = pore)")
    p.add_argument("--key", default=None, help="array name inside an .npz with several arrays")
    p.add_argument("--dataset", default=None, help="array path inside a Zarr group or HDF5 file")
    p.add_argument("--shape", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                   help="shape of a raw file, e.g. 400,400,400")
    p.add_argument("--dtype", default=None, help="dtype of a raw file, e.g. uint8")
    p.add_argument("--volume", action="store_true",
                   help="each input is one 3D volume (D, H, W), labeled as a volume unless --slice is given")
    p.add_argument("--slice", type=int, default=None, metavar="SIZE",
                   help="cut each volume into SIZE x SIZE slices (regular grid, stride SIZE unless --stride) "
                        "and label the slices")
    p.add_argument("--axes", default="0,1,2", help="with --slice: axes normal to the cutting planes (default 0,1,2)")
    p.add_argument("--stride", type=int, default=None, help="with --slice: grid step (default: SIZE)")
    p.add_argument("--d", type=int, choices=(2, 3), default=3,
                   help="dimension of the medium the formulas describe (default 3: 2D images are slices of "
                        "an isotropic 3D material; 2: a genuinely two-dimensional medium)")
    p.add_argument("--K1", type=float, default=4.3, help="bulk modulus of the rock (default 4.3 GPa)")
    p.add_argument("--G1", type=float, default=3.8, help="shear modulus of the rock (default 3.8 GPa)")
    p.add_argument("--voxel-size", type=float, default=1.0, help="pixel length; k is reported in its square")
    p.add_argument("--periodic", action=argparse.BooleanOptionalAction, default=True,
                   help="periodic boundaries (default; right for periodic synthetic media) or the "
                        "mean-padded estimator for crops of larger samples")
    p.add_argument("--chunk", type=int, default=1024, help="images per chunk (unit of progress and resume)")
    p.add_argument("--workers", type=int, default=None,
                   help="label chunks on a local Dask cluster with this many worker processes")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")
    p.add_argument("-o", "--output", required=True, help="CSV, one row per image")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output and discard saved chunks")
    p.set_defaults(func=_label)


def _label(args):
    from ..distributed import label_inputs
    from ..io import save_table

    table, params = label_inputs(
        args.input, output=args.output, overwrite=args.overwrite,
        read_options=dict(pore_value=args.pore_value, key=args.key, dataset=args.dataset, shape=args.shape,
                          dtype=args.dtype, volume=args.volume, slice_size=args.slice,
                          axes=tuple(int(a) for a in args.axes.split(",")), stride=args.stride),
        label_options=dict(d=args.d, K1=args.K1, G1=args.G1, voxel_size=args.voxel_size, periodic=args.periodic),
        chunk=args.chunk, workers=args.workers, scheduler=args.scheduler, progress=True)
    save_table(args.output, table, params, overwrite=args.overwrite)
    n = len(table["porosity"])
    flagged = int(n - table["valid"].sum())
    print(f"wrote labels of {n} images to {args.output} ({flagged} flagged outside the formulas' validity)")
