"""Physics-based labels of binary microstructures (1 = pore): the three-point parameters ζ2, η2
(exact FFT harmonic method, with an independent quadrature path), third-order strong-contrast
elastic moduli and diffusivity, and the two-point permeability bound. Formulas: PHYSICS.md;
method and convergence study: docs/properties.md."""
from .label import LABEL_KEYS, label
from .quadrature import parameters_from_functions, parameters_from_samples, three_point_quadrature
from .strong_contrast import (diffusivity, elastic_moduli, permeability, rock_youngs_modulus, validity,
                              youngs_modulus)
from .harmonic import eta2, slice_truncation_bound, three_point_parameters, zeta2

__all__ = ["label", "LABEL_KEYS", "three_point_parameters", "zeta2", "eta2", "slice_truncation_bound",
           "elastic_moduli", "youngs_modulus", "diffusivity", "permeability", "rock_youngs_modulus", "validity",
           "parameters_from_functions", "parameters_from_samples", "three_point_quadrature"]
