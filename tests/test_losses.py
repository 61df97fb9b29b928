"""Losses against closed forms, autograd, and at huge margins (no NaN or inf)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import tol
from implicitbias import InvalidArgumentError
from implicitbias.dynamics import LOSSES, loss_function

DT = torch.float64


def _binary(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    out = 3 * torch.randn(11, generator=gen, dtype=DT)
    y = torch.where(torch.rand(11, generator=gen, dtype=DT) < 0.5, -1.0, 1.0).to(DT)
    return out, y


def test_binary_losses_closed_form(gen: torch.Generator) -> None:
    out, y = _binary(gen)
    q = (y * out).numpy()
    np.testing.assert_allclose(
        loss_function("logistic").values(out, y).numpy(), np.log1p(np.exp(-q)), rtol=tol(DT)
    )
    np.testing.assert_allclose(
        loss_function("exponential").values(out, y).numpy(), np.exp(-q), rtol=tol(DT)
    )
    np.testing.assert_allclose(
        loss_function("logistic")(out, y).item(), np.log1p(np.exp(-q)).mean(), rtol=tol(DT)
    )


def test_squared_and_cross_entropy_closed_form(gen: torch.Generator) -> None:
    out = torch.randn(7, generator=gen, dtype=DT)
    target = torch.randn(7, generator=gen, dtype=DT)
    np.testing.assert_allclose(
        loss_function("squared").values(out, target).numpy(),
        ((out - target) ** 2).numpy(),
        rtol=tol(DT),
    )
    logits = torch.randn(7, 4, generator=gen, dtype=DT)
    labels = torch.randint(0, 4, (7,), generator=gen)
    ref = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(loss_function("cross_entropy").values(logits, labels), ref)


@pytest.mark.parametrize("name", LOSSES)
def test_derivative_matches_autograd(name: str, gen: torch.Generator) -> None:
    ell = loss_function(name)
    if name == "cross_entropy":
        out = torch.randn(6, 3, generator=gen, dtype=DT)
        y = torch.randint(0, 3, (6,), generator=gen)
    elif name == "squared":
        out, y = torch.randn(6, generator=gen, dtype=DT), torch.randn(6, generator=gen, dtype=DT)
    else:
        out, y = _binary(gen)
    out = out.requires_grad_(True)
    (auto,) = torch.autograd.grad(ell.values(out, y).sum(), out)
    torch.testing.assert_close(ell.derivative(out.detach(), y), auto, rtol=tol(DT), atol=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["logistic", "exponential"])
def test_binary_losses_finite_at_huge_margins(name: str, dtype: torch.dtype) -> None:
    ell = loss_function(name)
    out = torch.tensor([-1e8, -1e4, -50.0, 0.0, 50.0, 1e4, 1e8], dtype=dtype)
    y = torch.ones(7, dtype=dtype)
    values, deriv = ell.values(out, y), ell.derivative(out, y)
    assert bool(torch.isfinite(values).all()) and bool(torch.isfinite(deriv).all())
    assert bool(torch.isfinite(ell(out, y)))
    assert values[-1].item() == 0.0 and deriv[-1].item() == 0.0  # e^{-1e8} underflows to 0
    # monotone: a larger margin never has a larger loss
    assert bool((values[1:] <= values[:-1]).all())
    if name == "logistic":
        assert values[0].item() == pytest.approx(1e8, rel=1e-7)  # softplus(q) = q for large q
        assert deriv[0].item() == -1.0
        assert values[3].item() == pytest.approx(math.log(2.0), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_entropy_finite_at_huge_logits(dtype: torch.dtype) -> None:
    ell = loss_function("cross_entropy")
    logits = torch.tensor([[1e8, -1e8, 0.0], [-1e8, 1e8, 0.0]], dtype=dtype)
    y = torch.tensor([0, 0])
    values, deriv = ell.values(logits, y), ell.derivative(logits, y)
    assert bool(torch.isfinite(values).all()) and bool(torch.isfinite(deriv).all())
    assert values[0].item() == 0.0
    assert values[1].item() == pytest.approx(2e8, rel=1e-6)
    np.testing.assert_allclose(ell.margins(logits, y).numpy(), [1e8, -2e8], rtol=1e-6)


def test_margins_and_accuracy_count_ties_half() -> None:
    ell = loss_function("logistic")
    out = torch.tensor([1.0, -2.0, 0.0, 3.0], dtype=DT)
    y = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=DT)
    np.testing.assert_allclose(ell.margins(out, y).numpy(), [1.0, -2.0, 0.0, -3.0])
    assert ell.accuracy(out, y) == pytest.approx(1.5 / 4)
    ce = loss_function("cross_entropy")
    logits = torch.tensor([[2.0, 2.0, 0.0], [0.0, 1.0, 3.0]], dtype=DT)
    assert ce.accuracy(logits, torch.tensor([0, 2])) == pytest.approx((0.5 + 1.0) / 2)
    np.testing.assert_allclose(ce.margins(logits, torch.tensor([0, 2])).numpy(), [0.0, 2.0])


def test_regression_loss_has_no_margin() -> None:
    ell = loss_function("squared")
    assert not ell.is_classification
    with pytest.raises(InvalidArgumentError, match="regression loss: margins are not defined"):
        ell.margins(torch.zeros(2, dtype=DT), torch.zeros(2, dtype=DT))
    with pytest.raises(InvalidArgumentError, match="regression loss: accuracy is not defined"):
        ell.accuracy(torch.zeros(2, dtype=DT), torch.zeros(2, dtype=DT))
    assert ell.mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])) == pytest.approx(2.5)


def test_unknown_loss_names_the_argument() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"The 'name' argument of loss_function must be one of"
    ):
        loss_function("hinge")
