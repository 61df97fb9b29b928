"""Homogeneous models: built-in networks, a wrapper for any user module, and what they declare."""

from implicitbias.models._inputs import prepare_input
from implicitbias.models.capabilities import (
    check_input,
    closed_form_ntk,
    convex_surrogate,
    input_spec,
    ntk_parts,
)
from implicitbias.models.diagonal_net import DiagonalNet
from implicitbias.models.homogeneous import Homogeneous, flat_parameters, homogeneity_degree
from implicitbias.models.matrix_factorization import MatrixFactorization, QuadraticNet
from implicitbias.models.mlp import HomogeneousMLP
from implicitbias.models.symmetrized import Symmetrized

__all__ = [
    "DiagonalNet",
    "HomogeneousMLP",
    "MatrixFactorization",
    "QuadraticNet",
    "Symmetrized",
    "Homogeneous",
    "homogeneity_degree",
    "flat_parameters",
    "prepare_input",
    "convex_surrogate",
    "input_spec",
    "check_input",
    "closed_form_ntk",
    "ntk_parts",
]
