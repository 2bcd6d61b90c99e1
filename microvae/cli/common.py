"""Argument helpers shared by subcommands: reading image inputs the same way everywhere."""
import numpy as np


def add_input_arguments(parser, nargs=None):
    """``IN`` plus the options that say how to read it."""
    parser.add_argument("input", nargs=nargs, metavar="IN",
                        help="images: .npy/.npz/.tif/.zip file, a folder of PNGs, or raw with --shape/--dtype")
    parser.add_argument("--pore-value", type=float, default=None,
                        help="stored value that marks pore (required unless the data is 0/1 with 1 = pore)")
    parser.add_argument("--key", default=None, help="array name inside an .npz with several arrays")
    parser.add_argument("--shape", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                        help="shape of a raw file, e.g. 400,400,400")
    parser.add_argument("--dtype", default=None, help="dtype of a raw file, e.g. uint8")
    parser.add_argument("--volume", action="store_true",
                        help="the input is one 3D volume (D, H, W), not a stack of 2D images")


def read_images(args, path=None):
    """Load ``args.input`` (or ``path``) as a binary batch per the input options.

    Returns ``(images, ndim)`` with images shaped ``(N, H, W)`` or ``(N, D, H, W)``.
    """
    from ..io import load

    pore_value = args.pore_value
    if pore_value is not None and float(pore_value).is_integer():
        pore_value = int(pore_value)
    data = load(path or args.input, pore_value=pore_value, shape=args.shape, dtype=args.dtype, key=args.key)
    if args.volume:
        if data.ndim != 3:
            raise ValueError(f"--volume expects a 3D array (D, H, W), got shape {data.shape}")
        return data[None], 3
    if data.ndim == 2:
        return data[None], 2
    if data.ndim == 3:
        return data, 2
    if data.ndim == 4:
        return data, 3
    raise ValueError(f"cannot interpret an array of shape {data.shape} as images")


def as_float_list(text):
    """Parse ``"1,2,3"`` or ``"0:10:2"`` (start:stop:step, stop excluded) into floats."""
    if ":" in text:
        parts = [float(v) for v in text.split(":")]
        if len(parts) != 3 or parts[2] <= 0:
            raise ValueError(f"range must be start:stop:step with step > 0, got {text!r}")
        return np.arange(*parts).tolist()
    return [float(v) for v in text.split(",") if v.strip()]
