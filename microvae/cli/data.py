"""``microvae data slice|synth|info``: prepare image sets."""


def register(sub):
    p = sub.add_parser("data", help="slice volumes, synthesize test media, describe image sets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    from .common import add_input_arguments, fraction, non_negative_int, positive_float, positive_int

    ps = dsub.add_parser("slice", help="cut 2D square samples from a 3D volume along several axes",
                         description="Cut 2D square samples from one 3D volume (D, H, W). An array with D != H = W "
                                     "may as well be a stack of D square images: pass --volume to slice it.")
    add_input_arguments(ps)
    ps.add_argument("--size", type=positive_int, required=True, help="side of the square samples, voxels")
    ps.add_argument("-n", type=positive_int, default=None,
                    help="number of samples (random positions, or a subset of the grid)")
    ps.add_argument("--stride", type=positive_int, default=None, help="regular grid step (default: random positions)")
    ps.add_argument("--axes", default="0,1,2", help="axes normal to the cutting planes (default 0,1,2)")
    ps.add_argument("--seed", type=non_negative_int, default=0)
    ps.add_argument("-o", "--output", required=True, help="output .npz/.npy/.tif")
    ps.add_argument("--overwrite", action="store_true")
    ps.set_defaults(func=_slice)

    pg = dsub.add_parser("synth", help="synthesize binary media with known statistics")
    pg.add_argument("kind", choices=("disks", "spheres", "grf", "grains"))
    pg.add_argument("-n", type=positive_int, default=10, help="number of images")
    pg.add_argument("--size", type=positive_int, default=128, help="side length in pixels")
    pg.add_argument("--porosity", type=fraction, default=0.2, help="target pore fraction")
    pg.add_argument("--radius", type=positive_float, default=6.0, help="particle radius / correlation length, pixels")
    pg.add_argument("--seed", type=non_negative_int, default=0)
    pg.add_argument("-o", "--output", required=True)
    pg.add_argument("--overwrite", action="store_true")
    pg.set_defaults(func=_synth)

    pi = dsub.add_parser("info", help="print count, shape and porosity statistics as JSON")
    add_input_arguments(pi)
    pi.set_defaults(func=_info)


def _slice(args):
    from ..io import save, slices
    from .common import check_outputs, read_images

    check_outputs(args, args.output, inputs=[args.input], images=args.output)
    stack = _microvae_stack(args)
    if stack is not None and not args.volume:
        raise ValueError(f"{args.input} holds a stack of {stack[0]} 2D images of {stack[1]}x{stack[2]} px "
                         "(microvae's 'images' array), not a volume; data slice cuts one 3D volume (D, H, W): "
                         "pass --volume if the array really is one volume")
    marked, args.volume = args.volume, True  # the input of slice is always one volume
    images, _ = read_images(args)
    d, h, w = images.shape[1:]
    if not marked and d != h == w:
        # A .npy/.tif does not say which it is, and both are common: N square images (what
        # sample/mrf sample write) or a scan with fewer or more slices than its width.
        raise ValueError(f"{args.input} has shape ({d}, {h}, {w}): a stack of {d} square {h}x{w} images or one "
                         f"volume of {d} slices, which the file does not say; data slice cuts one volume, so pass "
                         "--volume if it is one (a stack of 2D images needs no slicing)")
    axes = tuple(int(a) for a in args.axes.split(","))
    out = slices(images[0], args.size, args.n, axes=axes, stride=args.stride, seed=args.seed)
    save(args.output, out, overwrite=args.overwrite)
    print(f"wrote {len(out)} samples of {args.size}x{args.size} to {args.output}")


def _microvae_stack(args):
    """The shape of a 3D array named ``images`` in an ``.npz`` (how ``microvae.io.save`` and
    ``data synth`` store image stacks), else ``None``; any other 3D array may be a volume."""
    import zipfile
    from pathlib import Path

    import numpy as np

    path = Path(args.input)
    if path.suffix.lower() != ".npz" or args.key not in (None, "images") or not zipfile.is_zipfile(path):
        return None
    with np.load(path, allow_pickle=False) as npz:
        shape = npz["images"].shape if npz.files == ["images"] else ()
    return shape if len(shape) == 3 else None


def _synth(args):
    from .. import synthetic
    from ..io import save
    from .common import check_outputs

    check_outputs(args, args.output, images=args.output)
    shape2, shape3 = (args.size, args.size), (args.size,) * 3
    if args.kind == "disks":
        out = synthetic.overlapping_disks(shape2, args.radius, args.porosity, n=args.n, seed=args.seed)
    elif args.kind == "spheres":
        out = synthetic.overlapping_spheres(shape3, args.radius, args.porosity, n=args.n, seed=args.seed)
    elif args.kind == "grf":
        out = synthetic.gaussian_random_field(shape2, args.radius, args.porosity, n=args.n, seed=args.seed)
    else:
        out = synthetic.grains(shape2, args.radius, args.porosity, n=args.n, seed=args.seed)
    save(args.output, out, overwrite=args.overwrite)
    print(f"wrote {len(out)} {args.kind} images of shape {out.shape[1:]} to {args.output}")


def _info(args):
    import json

    from ..io import describe, jsonable
    from .common import read_images

    images, nd = read_images(args)
    print(json.dumps(jsonable(describe(images, ndim=nd)), indent=2))
