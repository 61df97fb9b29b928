"""Shared test configuration: dtype-keyed tolerances, the gpu marker, fixed seeds, and the
shared parts of the bad-input battery (tiny inputs, toy modules, the row table)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib

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


# ============================================================ the bad-input battery's shared parts
# Used by the tests/test_bad_input_<package>.py files (one per package of src/implicitbias):
# the tiny inputs, the toy modules, the house-message regexes and the table of rows.


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ARG = ib.InvalidArgumentError
TYP = ib.InvalidArgumentTypeError
F64 = torch.float64


def arg(func: str, name: str) -> str:
    """Regex prefix of the house message: "The 'name' argument of func"."""
    return rf"The '{name}' argument of {func}\b"


Y01 = r"got values \[0\.0, 1\.0\] instead\. Convert \{0, 1\} labels with y = 2\*y - 1"
NONFINITE = r"must be finite \(no NaN or inf\); got .*non-finite entries"


class Battery:
    """One file's table of bad-input rows.

    Each row is ``case(id, call, exception, match)``: ``call`` runs the misuse on tiny inputs,
    ``exception`` is the class from the library's hierarchy that must come out, and ``match`` is
    a regex over the message that names the argument (and, where it is cheap to pin, what was
    received). The test id is ``<entry point>-<misuse>``. Rows given ``bug=...`` are known
    library bugs (``xfail(strict=True)``). ``params`` feeds ``pytest.mark.parametrize``.
    """

    def __init__(self) -> None:
        self.params: list[Any] = []

    def __call__(
        self,
        cid: str,
        call: Callable[[], Any],
        exc: type[BaseException],
        match: str,
        *,
        bug: str | None = None,
    ) -> None:
        marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
        self.params.append(pytest.param(call, exc, match, id=cid, marks=marks))

    def __len__(self) -> int:
        return len(self.params)


def check_bad_input(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    """The assertion of every battery row: ``call()`` raises ``exc`` matching ``match``."""
    with pytest.raises(exc, match=match) as info:
        call()
    err = info.value
    if exc is not AssertionError:
        assert isinstance(err, ib.ImplicitBiasError), type(err)
    if isinstance(err, (ib.InvalidArgumentError, ib.InvalidArgumentTypeError)):
        # argument errors keep working with `except ValueError` / `except TypeError`
        assert isinstance(err, (ValueError, TypeError))


# ------------------------------------------------------------------------------- tiny data
def X4() -> np.ndarray:
    return np.array([[1.0, 0.5], [0.2, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def y4() -> np.ndarray:
    return np.array([1.0, 1.0, -1.0, -1.0])


def K4() -> np.ndarray:
    X = X4()
    return X @ X.T + np.eye(4)


def Xu() -> np.ndarray:
    """Under-determined (2 x 4, full row rank): interpolation is feasible."""
    return np.array([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 1.0, 3.0]])


def yu() -> np.ndarray:
    return np.array([1.0, -2.0])


def with_nan(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[1] = np.nan
    return a


def with_inf(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[0] = np.inf
    return a


DUP_X = np.array([[1.0, 0.0], [1.0, 0.0]])  # the same input twice...
DUP_Y = np.array([1.0, -1.0])  # ...with opposite labels: never separable


def Xt() -> torch.Tensor:
    return torch.tensor(
        [[1.0, 0.5, -0.3], [0.2, 1.0, 0.4], [-1.0, 0.1, 0.2], [0.3, -1.0, 0.5], [0.7, 0.7, -1.0]],
        dtype=F64,
    )


def yt() -> torch.Tensor:
    return torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=F64)


def mlp(**kw: Any) -> ib.HomogeneousMLP:
    return ib.HomogeneousMLP(3, [4], seed=0, dtype=F64, **kw)


def sym_mlp() -> ib.Symmetrized:
    return ib.symmetrize(ib.HomogeneousMLP(3, [6], seed=0, dtype=F64))


def diag3() -> ib.DiagonalNet:
    return ib.DiagonalNet(3, dtype=F64)


def separating_diag() -> ib.DiagonalNet:
    """A depth-2 diagonal net realizing the ℓ1 max-margin w of (Xt, yt): it separates them."""
    w = ib.l1_max_margin(Xt().numpy(), yt().numpy()).w
    return ib.diagonal_net_from_w(w)


class BiasedNet(nn.Module):
    """ReLU net with a bias on the *second* layer: not homogeneous."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(3, 4, dtype=F64)
        self.l2 = nn.Linear(4, 1, dtype=F64)
        with torch.no_grad():
            self.l2.bias.fill_(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x))).squeeze(-1)


class TanhNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(3, 4, bias=False, dtype=F64)
        self.l2 = nn.Linear(4, 1, bias=False, dtype=F64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x))).squeeze(-1)


class NoParams(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1)


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1, bias=False, dtype=F64)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.lin(x),)


def plain_relu_seq() -> nn.Sequential:
    """A bias-free ReLU net, 2-homogeneous, not wrapped in ib.Homogeneous."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False), nn.Flatten(0)
    ).double()


def zero_param_linear() -> nn.Module:
    lin = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(lin.weight)
    return lin


def predictor() -> ib.NTKPredictor:
    return ib.ntk_predictor(sym_mlp(), Xt(), yt())


def train_kw(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(weight_decay=0.1, lr=0.1, steps=4, num_evals=2)
    base.update(kw)
    return base
