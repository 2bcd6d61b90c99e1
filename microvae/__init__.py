"""microvae: microstructure-informed materials design.

Fast correlation functions and strong-contrast property labels for large image sets, a
morphology-aware VAE and an MRF baseline to generate more microstructures, and the study
that measures how much generated data helps a structure-property CNN.

Convention everywhere: binary images with **1 = pore** (void), 0 = solid (rock).
"""
from ._version import __version__
from .properties import label

__all__ = ["__version__", "label"]
