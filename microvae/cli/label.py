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
    p.set_defaults(func=_label)


def _is_store(path):
    from ..distributed import _STORE_SUFFIXES

    return str(path).rstrip("/").lower().endswith(_STORE_SUFFIXES)


def _sources(args):
    """Per input: (sliceable images, positions or None, description for the sidecar)."""
    import numpy as np

    from ..distributed import open_store
    from ..io import slices
    from .common import read_images

    axes = tuple(int(a) for a in args.axes.split(","))
    out = []
    for path in args.input:
        if _is_store(path):
            store = open_store(path, args.dataset)
            if not (args.slice or args.volume):
                out.append((store, None, repr(store)))
                continue
            data = store[:]
            if data.ndim == 3 and args.volume:
                data = data[None]
            images, nd = (data, data.ndim - 1) if data.ndim == 4 else (data, 2)
        else:
            images, nd = read_images(args, path)
        if args.slice is not None:
            if nd != 3:
                raise ValueError(f"--slice needs volumes; {path} holds 2D images of shape {images.shape[1:]} "
                                 "(pass --volume if the file is one volume)")
            stride = args.stride or args.slice
            cut = [slices(vol, args.slice, stride=stride, axes=axes, return_positions=True) for vol in images]
            pos = np.concatenate([np.column_stack([np.full(len(p), v), p]) for v, (_, p) in enumerate(cut)])
            out.append((np.concatenate([c for c, _ in cut]), pos, str(path)))
        else:
            out.append((images, None, str(path)))
    return out


def _fingerprint(path):
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file()]
        return {"path": str(p.resolve()), "bytes": sum(f.stat().st_size for f in files),
                "mtime": max((f.stat().st_mtime for f in files), default=0.0)}
    st = p.stat()
    return {"path": str(p.resolve()), "bytes": st.st_size, "mtime": st.st_mtime}


def _client(args):
    if args.scheduler and args.processes:
        raise ValueError("give either --scheduler (an existing cluster) or --processes (a local one), not both")
    if args.scheduler:
        from distributed import Client

        return Client(args.scheduler)
    if args.processes:
        from distributed import Client, LocalCluster

        from ..threads import worker_env

        return Client(LocalCluster(n_workers=args.processes, threads_per_worker=1, processes=True,
                                   env=worker_env(args.processes)))
    return None


def _label(args):
    import shutil
    from pathlib import Path

    import numpy as np

    from ..distributed import label_chunks
    from ..io import save_table
    from ..properties.strong_contrast import INVALID_FLAGS
    from .common import check_outputs

    output = Path(args.output)
    check_outputs(args, output, output.with_name(output.name + ".json"), inputs=args.input)
    sources = _sources(args)
    label_options = dict(d=args.d, K1=args.K1, G1=args.G1, voxel_size=args.voxel_size, periodic=args.periodic,
                         margin=args.margin, extrapolate=args.extrapolate, harmonics=args.harmonics)
    validity, flagged_as = "1 inside the formulas' range", "outside the formulas' validity"
    if args.method == "fullfield":
        label_options["method"] = "fullfield"
        from ..fullfield import FULLFIELD_INVALID_FLAGS as INVALID_FLAGS
        validity, flagged_as = "1 when every solve converged", "with a solve that did not converge"
        if args.batch_size is None:  # a 64³ volume solves in ~1.5 min: resume in chunks of minutes
            args.batch_size = max(1, 2 ** 20 // max(int(np.prod(src.shape[1:])) for src, _, _ in sources))
    params = {"inputs": [_fingerprint(p) for p in args.input], "sources": [desc for _, _, desc in sources],
              "pore_value": args.pore_value, "key": args.key, "dataset": args.dataset, "volume": args.volume,
              "slice": args.slice, "axes": args.axes, "stride": args.stride, "chunk": args.batch_size,
              **{k: v for k, v in label_options.items()}}
    parts_dir = output.with_name(output.name + ".parts")
    client = _client(args)
    try:
        labels = label_chunks([src for src, _, _ in sources], parts_dir, params, batch_size=args.batch_size,
                              client=client, progress=True, overwrite=args.overwrite, **label_options)
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None and args.processes:
                cluster.close()
    table = {"file": [], "image": []}
    with_pos = any(pos is not None for _, pos, _ in sources)
    if with_pos:
        table.update({"volume": [], "axis": [], "plane": [], "row": [], "col": []})
    for f, ((_, pos, _), lab) in enumerate(zip(sources, labels)):
        n = len(lab["porosity"])
        table["file"].append(np.full(n, f))
        table["image"].append(np.arange(n))
        if with_pos:
            pos = pos if pos is not None else np.full((n, 5), -1)
            for c, key in enumerate(("volume", "axis", "plane", "row", "col")):
                table[key].append(pos[:, c])
    table = {k: np.concatenate(v) for k, v in table.items()}
    merged = {k: np.concatenate([lab[k] for lab in labels]) for k in labels[0]}
    merged = {k: v.astype(np.int64) if v.dtype == bool else v for k, v in merged.items()}
    table.update(merged)
    params["columns_note"] = ("file: index into inputs; E = E/E1, D = De/D2, k in (pixel * voxel_size)^2, "
                              f"K and G in the units of K1, G1; valid: {validity}; invalid: "
                              "why not, as the sum of the bits in invalid_flags")
    params["invalid_flags"] = {str(bit): text for bit, text in INVALID_FLAGS.items()}
    save_table(output, table, params, overwrite=args.overwrite)
    shutil.rmtree(parts_dir, ignore_errors=True)
    n = len(merged["porosity"])
    flagged = int(n - merged["valid"].sum())
    why = "; ".join(f"{int(np.count_nonzero(merged['invalid'] & bit))} with {text}" for bit, text in
                    INVALID_FLAGS.items() if np.any(merged["invalid"] & bit))
    print(f"wrote labels of {n} images to {output} ({flagged} flagged {flagged_as}"
          + (f": {why})" if why else ")"))
