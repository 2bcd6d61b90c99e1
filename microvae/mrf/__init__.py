"""MRF baseline generator (Bostanabad et al. 2016): a classification tree learns P(pore | causal
neighbourhood) from training images, a compiled raster scan draws new ones. 1 = pore."""
from .features import causal_offsets, neighbourhood_table, noncausal_offsets
from .model import MRF
from .sampling import match_porosity
from .trees import export_tree

__all__ = ["MRF", "match_porosity", "export_tree", "causal_offsets", "noncausal_offsets", "neighbourhood_table"]
