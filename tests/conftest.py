"""Shared test configuration: dtype-keyed tolerances, the gpu marker, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# Tolerances keyed by dtype, in one place (neural-tangents style).
RTOL = {torch.float64: 1e-10, torch.float32: 1e-4, np.float64: 1e-10, np.float32: 1e-4}


def tol(dtype: object) -> float:
    """Relative tolerance for comparisons of two routes computed in ``dtype``."""
    return RTOL[dtype]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
