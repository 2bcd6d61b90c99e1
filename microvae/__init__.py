"""microvae: microstructure-informed materials design.

Fast correlation functions and strong-contrast property labels for large image sets, a
morphology-aware VAE and an MRF baseline to generate more microstructures, and the study
that measures how much generated data helps a structure-property CNN.

Convention everywhere: binary images with **1 = pore** (void), 0 = solid (rock).

``import microvae`` loads neither torch nor numba: the names below are resolved on first use
(``microvae.label`` imports the property code, which compiles numba kernels).
"""
from ._version import __version__
from .threads import get_threads, set_threads

__all__ = ["__version__", "label", "set_threads", "get_threads"]

# Public names living in submodules that import heavy dependencies: name -> module.
_LAZY = {"label": "microvae.properties"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'microvae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
