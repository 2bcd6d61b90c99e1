"""Morphology descriptors of binary microstructures that the two-point function S2 does not fix.

Every function takes a batch (``(H, W)``, ``(N, H, W)``, or ``(N, D, H, W)``; pass ``ndim=3``
for a single volume ``(D, H, W)``, as in :func:`microvae.correlations.s2`) and returns one value
or one curve per image.

Conventions
-----------
- 1 = pore, 0 = solid; ``phase`` selects which phase a descriptor is about.
- Lengths are in pixels (voxels); "per area" means per pixel of the image (per voxel in 3D).
- Estimators are non-periodic: a segment or pixel pair counts only when it lies wholly inside the
  image, and clusters are not joined across the image boundary. Exceptions are stated where they
  occur (the scikit-image perimeter and Euler number see the outside of the image as solid).
- "Along the axes": curves are computed along each spatial axis; ``axis=None`` averages the
  axes with equal weight, ``axis=k`` keeps spatial axis ``k`` (0 = first spatial axis).
- Sample statistics over images (here and in :mod:`microvae.compare`) use ``std(ddof=1)``.

Modules: :mod:`.lines` (lineal path, chord lengths), :mod:`.clusters` (clusters, cluster
function, percolation, Euler characteristic, pore solidity), :mod:`.surface` (specific surface,
perimeter), :mod:`.patterns` (local pixel configurations) and :mod:`.combined` (all of them at
once). Every public name is importable from ``microvae.morphology``.
"""
# check_connectivity, check_r_max and spatial_axes: the argument checks the package shares with
# microvae.compare and microvae.compat (re-exported, not listed in the API).
from .clusters import check_connectivity as check_connectivity
from .clusters import cluster_function, cluster_statistics, euler_density, label_clusters, pore_solidity
from .combined import descriptors
from .lines import ChordLengths, chord_lengths, lineal_path
from .lines import check_r_max as check_r_max
from .lines import spatial_axes as spatial_axes
from .patterns import pattern_histogram
from .surface import perimeter_density, specific_surface

__all__ = ["lineal_path", "chord_lengths", "ChordLengths", "cluster_function", "specific_surface",
           "euler_density", "perimeter_density", "cluster_statistics", "label_clusters", "descriptors",
           "pattern_histogram", "pore_solidity"]
