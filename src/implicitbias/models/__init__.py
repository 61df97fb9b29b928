"""Homogeneous models: built-in networks and a wrapper for any user module."""

from implicitbias.models.diagonal_net import DiagonalNet
from implicitbias.models.homogeneous import Homogeneous, flat_parameters, homogeneity_degree
from implicitbias.models.matrix_factorization import MatrixFactorization, QuadraticNet
from implicitbias.models.mlp import HomogeneousMLP

__all__ = [
    "DiagonalNet",
    "HomogeneousMLP",
    "MatrixFactorization",
    "QuadraticNet",
    "Homogeneous",
    "homogeneity_degree",
    "flat_parameters",
]
