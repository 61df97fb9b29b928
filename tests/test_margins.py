"""Tests of normalized_margin and smoothed_margin: closed forms, invariances, bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import implicitbias as ib

F64 = torch.float64


def _mlp_and_labels(d_out: int = 1, n: int = 20, seed: int = 0):
    net = ib.HomogeneousMLP(4, [10, 10], d_out=d_out, seed=seed, dtype=F64)
    X = torch.randn(n, 4, dtype=F64, generator=torch.Generator().manual_seed(seed + 1))
    out = net(X).detach().numpy()
    y = np.sign(out) if d_out == 1 else out.argmax(axis=1)
    return net, X, y, out


def test_normalized_margin_closed_form_binary():
    net, X, y, out = _mlp_and_labels()
    theta_norm = float(ib.Homogeneous(net).theta().norm())
    expected = (y * out).min() / theta_norm**3
    np.testing.assert_allclose(ib.normalized_margin(net, X, y), expected, rtol=1e-12)


def test_normalized_margin_closed_form_multiclass():
    net, X, y, out = _mlp_and_labels(d_out=4)
    srt = np.sort(out, axis=1)
    theta_norm = float(ib.Homogeneous(net).theta().norm())
    expected = (srt[:, -1] - srt[:, -2]).min() / theta_norm**3
    np.testing.assert_allclose(ib.normalized_margin(net, X, y), expected, rtol=1e-12)


@pytest.mark.parametrize("d_out", [1, 3])
@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_margins_scale_invariant(d_out, loss):
    net, X, y, _ = _mlp_and_labels(d_out=d_out)
    g1 = ib.normalized_margin(net, X, y)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.5)
    g2 = ib.normalized_margin(net, X, y)
    np.testing.assert_allclose(g2, g1, rtol=1e-12)
    # the smoothed margin is not scale invariant, but increases towards γ̄ with the scale
    s_small = ib.smoothed_margin(net, X, y, loss=loss)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)
    s_large = ib.smoothed_margin(net, X, y, loss=loss)
    assert s_small <= s_large <= g1 * (1 + 1e-12)


def test_smoothed_margin_exponential_closed_form_and_bounds():
    net, X, y, out = _mlp_and_labels()
    theta_norm = float(ib.Homogeneous(net).theta().norm())
    q = y * out
    expected = -math.log(np.exp(-q).sum()) / theta_norm**3
    got = ib.smoothed_margin(net, X, y)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    gbar = ib.normalized_margin(net, X, y)
    assert gbar - math.log(len(y)) / theta_norm**3 <= got <= gbar


def test_smoothed_margin_logistic_closed_form():
    net, X, y, out = _mlp_and_labels()
    theta_norm = float(ib.Homogeneous(net).theta().norm())
    v = np.log1p(np.exp(-(y * out))).sum()
    expected = -math.log(math.expm1(v)) / theta_norm**3
    np.testing.assert_allclose(ib.smoothed_margin(net, X, y, loss="logistic"), expected, rtol=1e-10)


def test_smoothed_margin_large_margins_do_not_underflow():
    # margins ~ 1e4: every e^{-q_i} underflows, logsumexp / log-space inversion must not
    net = ib.DiagonalNet(2, dtype=F64)
    with torch.no_grad():
        net.u.copy_(torch.tensor([100.0, 0.0], dtype=F64))
        net.v.zero_()
    X = torch.tensor([[1.0, 0.0], [-1.0, 3.0], [2.0, 1.0]], dtype=F64)
    y = [1, -1, 1]
    q = np.array([1e4, 1e4, 2e4])
    expected = -(-1e4 + math.log(2 + math.exp(-1e4))) / 1e4
    for loss in ("exponential", "logistic"):
        got = ib.smoothed_margin(net, X, y, loss=loss)
        assert math.isfinite(got)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(ib.normalized_margin(net, X, y), q.min() / 1e4, rtol=1e-12)


def test_smoothed_margin_multiclass_pairs():
    net, X, y, out = _mlp_and_labels(d_out=3)
    theta_norm = float(ib.Homogeneous(net).theta().norm())
    q = out[np.arange(len(y)), y][:, None] - out
    mask = np.ones_like(q, dtype=bool)
    mask[np.arange(len(y)), y] = False
    expected = -math.log(np.exp(-q[mask]).sum()) / theta_norm**3
    np.testing.assert_allclose(ib.smoothed_margin(net, X, y), expected, rtol=1e-12)
    # cross-entropy version: ℓ⁻¹(Σ_i CE_i) with the logistic ℓ
    ce = np.log1p(np.where(mask, np.exp(-q), 0.0).sum(axis=1)).sum()
    expected_ce = -math.log(math.expm1(ce)) / theta_norm**3
    np.testing.assert_allclose(
        ib.smoothed_margin(net, X, y, loss="logistic"), expected_ce, rtol=1e-10
    )


def test_margin_bad_input():
    net, X, y, _ = _mlp_and_labels()
    with pytest.raises(ValueError, match="'loss'"):
        ib.smoothed_margin(net, X, y, loss="hinge")
    with pytest.raises(ValueError, match="'y'"):
        ib.normalized_margin(net, X, (y + 1) / 2)
    with pytest.raises(ValueError, match="'X' and 'y'"):
        ib.normalized_margin(net, X, y[:-1])
    with pytest.raises(ValueError, match="'y'"):
        ib.normalized_margin(net, X, np.linspace(-1, 1, len(y)) + 0.1)
