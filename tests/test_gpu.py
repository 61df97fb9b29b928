"""The pipeline is device-agnostic: on CUDA it gives the CPU's answers (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import implicitbias as ib

pytestmark = pytest.mark.gpu
DT = torch.float64


def _data(n: int = 24, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=DT)
    y = torch.sign(X[:, 0] + 0.5 * X[:, 1])
    return X, y


def test_models_jacobian_and_ntk_match_cpu() -> None:
    X, _ = _data()
    net = ib.mirror_init(ib.HomogeneousMLP(6, [32, 32], first_layer_bias=True, seed=0, dtype=DT))
    cuda = ib.mirror_init(
        ib.HomogeneousMLP(6, [32, 32], first_layer_bias=True, seed=0, dtype=DT)
    ).cuda()
    Xc = X.cuda()
    assert ib.homogeneity_degree(cuda, Xc) == 3
    torch.testing.assert_close(
        ib.Homogeneous(cuda).jacobian(Xc).cpu(), ib.Homogeneous(net).jacobian(X)
    )
    for method in ("structured", "jacobian"):
        K = ib.empirical_ntk(cuda, Xc, method=method)
        assert K.device.type == "cuda"
        torch.testing.assert_close(
            K.cpu(), ib.empirical_ntk(net, X, method="structured"), rtol=1e-10, atol=1e-10
        )


def test_predictor_training_and_kkt_on_cuda() -> None:
    X, y = _data()
    Xc, yc = X.cuda(), y.cuda()
    net = ib.DiagonalNet(6, alpha=4.0, dtype=DT).cuda()
    ntk = ib.ntk_predictor(net, Xc, yc)
    ref = ib.l2_max_margin(X.numpy(), y.numpy())
    np.testing.assert_allclose(ntk.margin, np.sqrt(8.0) * 4.0 * ref.margin, rtol=1e-6)
    lam = 1e-2
    t_star = np.log(4.0) / lam
    result = ib.train(
        net,
        Xc,
        yc,
        loss="logistic",
        weight_decay=lam,
        method="flow",
        lr=1e-2,
        t_max=3 * t_star,
        progress=False,
    )
    assert result.status == "completed"
    report = ib.kkt_residuals(net, Xc, yc, weight_decay=lam)
    cpu_net = ib.DiagonalNet(6, dtype=DT)
    cpu_net.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
    cpu_report = ib.kkt_residuals(cpu_net, X, y, weight_decay=lam)
    np.testing.assert_allclose(report.epsilon_rel, cpu_report.epsilon_rel, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(report.normalized_margin, cpu_report.normalized_margin, rtol=1e-10)


@pytest.mark.parametrize("task", ["multiclass", "classification"])
def test_kkt_working_set_route_on_cuda_matches_cpu(task: str) -> None:
    """Issue 13: the working-set certificate runs on CUDA tensors (chunks sized by the
    device's free memory) and gives the CPU's ε, δ and ε_min."""
    d_out = 5 if task == "multiclass" else 1
    net = ib.HomogeneousMLP(6, [32], d_out, first_layer_bias=True, seed=3, dtype=DT)
    X, _ = _data(n=40)
    out = net(X).detach()
    y = out.argmax(1).numpy() if d_out > 1 else np.sign(out.numpy())
    cpu = ib.kkt_residuals(net, X, y, nnls_route="working_set", weight_decay=0.01)
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense", weight_decay=0.01)
    cuda = ib.kkt_residuals(net.cuda(), X.cuda(), y, nnls_route="working_set", weight_decay=0.01)
    assert cuda.nnls_route == "working_set"
    for field in ("epsilon_min", "epsilon_rel", "delta", "wd_epsilon"):
        np.testing.assert_allclose(getattr(cuda, field), getattr(cpu, field), rtol=1e-8)
        np.testing.assert_allclose(getattr(cuda, field), getattr(dense, field), rtol=1e-6)
    assert cuda.constraints_touched == cpu.constraints_touched
