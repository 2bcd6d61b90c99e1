"""The ``microvae`` command. Each subcommand lives in its own module exposing
``register(subparsers)``; heavy imports happen inside the command functions so that
``microvae --help`` stays fast."""
import argparse
import importlib
import os
import sys

from .._version import __version__
from .common import thread_count

# Module names under microvae.cli, in the order shown by --help.
COMMAND_MODULES = ("data", "correlate", "train", "reproduce", "label", "mrf", "compare", "info", "bench")

# Errors that mean "bad input or environment", reported in one line without a traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
               NotADirectoryError, PermissionError, KeyError)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="microvae",
        description="Microstructure-informed materials design: correlation functions, property labels, "
                    "a morphology-aware VAE, an MRF baseline and the augmentation study. "
                    "Images are binary with 1 = pore.",
    )
    parser.add_argument("--version", action="version", version=f"microvae {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("--threads", dest="global_threads", type=thread_count, default=None, metavar="N",
                        help="threads of every kernel family: torch, numba, OpenMP, FFT (default: "
                             "MICROVAE_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this process may use)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        from ..threads import set_threads

        # Before the command imports torch or numba, so that their pools start with the count.
        set_threads(args.global_threads if args.global_threads is not None else getattr(args, "threads", None))
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("microvae: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of the output went away (`| head`). Point stdout at /dev/null so that the
        # interpreter's final flush does not fail again with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"microvae {args.command}: output pipe closed by the reader", file=sys.stderr)
        return 141
    except USER_ERRORS as exc:
        if args.debug:
            raise
        from .common import flag_names

        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        _error(args, flag_names(parser, args, _one_line(msg)))
        return 2
    except OSError as exc:  # read-only file system, disk full, ...: the system's words and the path
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _error(args, f"{where}{_one_line(exc.strerror or exc)}")
        return 1
    except MemoryError as exc:  # microvae's own size checks name the limit; NumPy's say the size
        if args.debug:
            raise
        _error(args, _one_line(exc) if "microvae may use" in str(exc) else f"out of memory ({_one_line(exc)})")
        return 1
    except Exception as exc:  # anything else is a bug or a peer's surprise: one line still
        if args.debug:
            raise
        _error(args, f"unexpected {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback, "
                     "and please report it)")
        return 1


def _one_line(message, limit=600):
    """A message on one line (peers' messages can span several), cut at ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _error(args, message):
    print(f"microvae {args.command}: error: {message}", file=sys.stderr)
