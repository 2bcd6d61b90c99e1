"""``microvae correlate``: radial S2 of an image set to CSV (+ JSON sidecar, optional plot)."""
import argparse


def register(sub):
    from .common import add_input_arguments, positive_float, positive_int

    p = sub.add_parser("correlate", help="two-point correlation S2 of every image, to CSV")
    add_input_arguments(p)
    p.add_argument("--s2", action="store_true", required=True, help="compute the radial two-point correlation")
    p.add_argument("--periodic", action=argparse.BooleanOptionalAction, default=True,
                   help="periodic boundaries (default) or the zero-padded overlap-normalized estimator")
    p.add_argument("--r-max", type=positive_int, default=None, help="largest radius, pixels (default: half the side)")
    p.add_argument("--voxel-size", type=positive_float, default=1.0, help="length of a pixel, for the distance column")
    p.add_argument("--batch-size", "--batch", type=positive_int, default=256,
                   help="images per batch (progress granularity)")
    p.add_argument("-o", "--output", required=True, help="CSV: one row per image and radius")
    p.add_argument("--plot", default=None, help="also write a PNG of the S2 curves (mean and spread)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_correlate)


def _correlate(args):
    import numpy as np
    from tqdm import tqdm

    from ..correlations import default_r_max, radial_distances, s2
    from ..io import save_table, sidecar_path
    from .common import check_outputs, read_images

    check_outputs(args, args.output, sidecar_path(args.output), args.plot, inputs=[args.input])
    images, nd = read_images(args)
    r_max = args.r_max if args.r_max is not None else default_r_max(images.shape[1:])
    curves = np.empty((len(images), r_max + 1))
    step = args.batch_size
    for start in tqdm(range(0, len(images), step), desc="S2", unit="batch", disable=len(images) <= step):
        curves[start:start + step] = s2(images[start:start + step], periodic=args.periodic, r_max=r_max, ndim=nd)
    r = radial_distances(r_max, args.voxel_size)
    params = {"input": str(args.input), "periodic": args.periodic, "r_max": r_max, "voxel_size": args.voxel_size,
              "ndim": nd, "n_images": len(images), "pore_value": args.pore_value}
    save_table(args.output,
               {"image": np.repeat(np.arange(len(images)), r_max + 1), "r": np.tile(r, len(images)),
                "s2": curves.ravel()},
               params, overwrite=args.overwrite)
    if args.plot:
        from ..plotting import plot_s2

        plot_s2(args.plot, r, curves, overwrite=args.overwrite)
    print(f"wrote S2 of {len(images)} images (r = 0..{r_max}) to {args.output}")
