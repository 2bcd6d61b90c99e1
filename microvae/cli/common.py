"""Argument helpers shared by subcommands: reading image inputs the same way everywhere, and
argparse types that reject bad numbers with a message naming the flag."""
import argparse
import math


def _number(text, kind, ok, need):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {need}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1 (sizes and counts)."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def thread_count(text):
    """argparse type of ``--threads``: an integer from 1 to the CPUs this process may run on."""
    from ..threads import check_threads

    n = positive_int(text)
    try:
        return check_threads(n)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative_int(text):
    """argparse type: an integer >= 0 (seeds, margins, sweeps; intervals where 0 means never)."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text):
    """argparse type: a finite number > 0 (lengths, moduli, rates)."""
    return _number(text, float, lambda v: v > 0, "a number > 0")


def non_negative_float(text):
    """argparse type: a finite number >= 0 (loss weights, smoothing widths; 0 switches off)."""
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def fraction(text):
    """argparse type: a number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def _positive_ints(text, example):
    try:
        return tuple(positive_int(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be positive comma-separated integers such as {example}, "
                                         f"got {text!r}") from None


def shape_tuple(text):
    """argparse type of ``--shape``: positive comma-separated integers."""
    return _positive_ints(text, "400,400,400")


def axes_tuple(text):
    """argparse type of ``--axes``: distinct axes from 0, 1, 2, comma-separated."""
    try:
        axes = tuple(int(v) for v in text.split(","))
    except ValueError:
        axes = ()
    if not axes or any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
        raise argparse.ArgumentTypeError(f"must be distinct axes from 0, 1, 2 separated by commas, such as 0,1,2 "
                                         f"or 2; got {text!r}")
    return axes


def widths(text):
    """argparse type of layer widths (``--channels``): positive comma-separated integers."""
    return _positive_ints(text, "32,32,64,64")


def add_input_arguments(parser, nargs=None, *, input_help=None, volume_help=None):
    """``IN`` plus the options that say how to read it; a command that reads more kinds of input,
    or treats a volume its own way, says so in ``input_help`` / ``volume_help``."""
    parser.add_argument("input", nargs=nargs, metavar="IN", help=input_help or
                        "images: .npy/.npz/.tif/.zip file, a folder of PNGs, or raw with --shape/--dtype")
    parser.add_argument("--pore-value", type=float, default=None,
                        help="stored value that marks pore (required unless the data is 0/1 with 1 = pore)")
    parser.add_argument("--key", default=None, help="array name inside an .npz with several arrays")
    parser.add_argument("--shape", type=shape_tuple, default=None,
                        help="shape of a raw file, e.g. 400,400,400")
    parser.add_argument("--dtype", default=None, help="dtype of a raw file, e.g. uint8")
    parser.add_argument("--volume", action="store_true",
                        help=volume_help or "the input is one 3D volume (D, H, W), not a stack of 2D images")


def read_images(args, path=None):
    """Load ``args.input`` (or ``path``) as a binary batch per the input options.

    Returns ``(images, ndim)`` with images shaped ``(N, H, W)`` or ``(N, D, H, W)``.
    """
    from ..io import as_image_stack, load

    data = load(path or args.input, pore_value=args.pore_value, shape=args.shape, dtype=args.dtype, key=args.key)
    return as_image_stack(data, volume=args.volume)


def check_outputs(args, *outputs, inputs=(), images=None):
    """Check every output path before any work, so that a command never writes one output and
    then fails on the next (nothing partial is left behind).

    Each path (``None`` skipped) must differ from the inputs and from the other outputs, must
    not be a folder, must not exist unless ``args.overwrite``, and its folder (or the nearest
    existing parent) must be writable. ``images``, one of the outputs, is written by
    :func:`microvae.io.save` and needs its suffix.
    """
    import os
    from pathlib import Path

    from ..io import SAVE_SUFFIXES

    if images is not None and str(images) != "-" and Path(images).suffix.lower() not in SAVE_SUFFIXES:
        raise ValueError(f"{images}: cannot write images as {Path(images).suffix or 'a file without suffix'!r}; "
                         f"use {', '.join(SAVE_SUFFIXES)}")

    if any(str(p) == "-" for p in outputs):
        # "-" means standard output to most tools; microvae's outputs are files (written atomically).
        raise ValueError("an output named '-' would be a file called '-', not standard output; microvae writes "
                         "files only: give a file name")
    given = [Path(p) for p in inputs if p is not None]
    outs = [Path(p) for p in outputs if p is not None]
    for i, out in enumerate(outs):
        if out.absolute() in (o.absolute() for o in outs[:i]):
            raise ValueError(f"two outputs name the same file {out}; give each its own path")
        if out.is_dir():
            raise IsADirectoryError(f"output {out} is a folder; give a file path")
        for src in given:
            if src.exists() and out.exists() and os.path.samefile(src, out):
                raise ValueError(f"output {out} is the input file; write to another path (the input is never "
                                 "replaced, --overwrite or not)")
        if out.exists() and not getattr(args, "overwrite", False):
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
        parent = out.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write {out}: the folder {parent} is not writable (read-only file system "
                                  "or no permission); choose another output path")


def device(text):
    """argparse type of ``--device``: a torch device string that exists on this machine."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is available here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA device(s), "
                                             f"cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: microvae runs on cpu, cuda or mps devices")
    return text


def flag_names(parser, args, message):
    """``message`` with the Python keywords of the invoked command's options written as its
    flags (``size=8 does not fit`` -> ``--size 8 does not fit``, ``r_max must`` -> ``--r-max must``):
    library errors then name what the user typed."""
    import re

    while True:  # descend to the parser of the invoked (sub)command
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, sub.dest, None) not in sub.choices:
            break
        parser = sub.choices[getattr(args, sub.dest)]
    names, switches, negatable, given = {}, set(), set(), set()
    for action in parser._actions:
        flags = [o for o in action.option_strings if o.startswith("--")] or action.option_strings
        if flags and action.dest not in ("help", "overwrite"):
            names[action.dest] = flags[0]
            if action.nargs == 0 and action.const is True:  # store_true: volume=True is the bare flag
                switches.add(action.dest)
            if isinstance(action, argparse.BooleanOptionalAction):  # extrapolate=False is --no-extrapolate
                negatable.add(action.dest)
            if getattr(args, action.dest, action.default) != action.default:
                given.add(flags[0])
    # Library keywords a command sets from differently named flags (set_defaults(cli_keywords=...)).
    names.update(getattr(args, "cli_keywords", {}))
    for keyword, flag in names.items():
        key = re.escape(keyword)
        if keyword in switches or keyword in negatable:
            message = re.sub(rf"(?<![\w-]){key}=True\b", flag, message)
        if keyword in negatable:
            message = re.sub(rf"(?<![\w-]){key}=False\b", "--no-" + flag[2:], message)
        message = re.sub(rf"(?<![\w-]){key}=(?=[^\s,;)])", f"{flag} ", message)
        message = re.sub(rf"(?<![\w-]){key}=", flag, message)
        message = re.sub(rf"(?<![\w.-]){key}(?= must\b)", flag, message)
        # "n_generated (1000)" is the option and its value; "planes of shape (400, 400)" is English,
        # unless --shape was given: a plain word before "(" names the option only if the user typed it.
        if "_" in keyword or flag.split()[0] in given:
            message = re.sub(rf"(?<![\w.-]){key}(?= \()", flag, message)
        # A library message that already names the flag after the keyword: say it once.
        message = message.replace(f"{flag} ({flag})", flag)
    return message
