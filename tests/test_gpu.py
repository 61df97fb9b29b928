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


def test_kkt_matrix_free_route_on_cuda_matches_cpu() -> None:
    """Issue 13: the matrix-free route runs its products on CUDA and reaches the CPU's (and
    the dense route's) ε_min, certified."""
    net = ib.HomogeneousMLP(6, [32], 5, first_layer_bias=True, seed=3, dtype=DT)
    X, _ = _data(n=40)
    y = net(X).detach().argmax(1).numpy()
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    cpu = ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=5000)
    cuda = ib.kkt_residuals(net.cuda(), X.cuda(), y, nnls_route="matrix_free",
                            matrix_free_steps=5000)  # fmt: skip
    assert cuda.nnls_route == "matrix_free"
    np.testing.assert_allclose(cuda.epsilon_min, cpu.epsilon_min, rtol=1e-6)
    np.testing.assert_allclose(cuda.epsilon_min, dense.epsilon_min, rtol=1e-6)
    assert cuda.epsilon_min_lower <= dense.epsilon_min * (1 + 1e-12)


# ---------------------------------------------------------------- the GD loop on CUDA (issue 15)
def _modular_net(device: str, p: int = 23, width: int = 128):
    """The modular-addition ReLU net (He·2, last layer zeroed) in float32, and its data."""
    from implicitbias.experiments.configs import ModularConfig
    from implicitbias.experiments.data import modular_addition_data
    from implicitbias.experiments.modular_addition import modular_network

    cfg = ModularConfig(p=p, train_fraction=0.5, width=width, alpha=2.0, steps=1)
    data = modular_addition_data(p, train_fraction=0.5, seed=0)
    X = torch.as_tensor(data.X_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    net = modular_network(cfg, seed=0, dtype=torch.float32, device=torch.device(device))
    return net, X, y


MODULAR_GD = dict(loss="cross_entropy", weight_decay=2e-3, lr=0.5, progress=False)


def test_gd_modular_addition_float32_on_cuda_matches_cpu() -> None:
    """400 GD steps with the deferred guard (read every 64 steps on CUDA) fit the training set:
    the same accuracy curve as on the CPU (up to 2 examples), losses and θ within float32
    rounding as GD amplifies it (a 1e-6 relative change of the initialization moves the CPU's
    final θ by 7e-4 relative and its losses by 1e-5)."""
    from implicitbias.dynamics._gd_loop import guard_every

    assert guard_every(torch.device("cuda")) > 1
    runs = {}
    for device in ("cpu", "cuda"):
        net, X, y = _modular_net(device)
        runs[device] = ib.train(net, X, y, steps=400, num_evals=20, **MODULAR_GD)
    cpu, cuda = runs["cpu"], runs["cuda"]
    assert cpu.status == cuda.status == "completed" and cuda.iterations == 400
    n = len(_modular_net("cpu")[2])
    assert float(cpu.history["train_acc"][-1]) > 0.9  # it learned
    np.testing.assert_allclose(cuda.history["train_acc"], cpu.history["train_acc"], atol=2.5 / n)
    np.testing.assert_allclose(cuda.history["train_loss"], cpu.history["train_loss"], rtol=1e-3)
    a, b = cuda.model.theta().cpu(), cpu.model.theta()
    assert float((a - b).norm() / b.norm()) < 1e-2


def test_gd_divergence_on_cuda_with_the_deferred_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """A too-large step (squared loss, linear model, float64): read every 64 steps or every
    step, the CUDA run stops at the CPU's step with the CPU's last finite θ."""
    from torch import nn

    from implicitbias.dynamics import _gd_loop

    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(8, 3, generator=g, dtype=DT), torch.randn(8, generator=g, dtype=DT)

    def run(device: str):
        lin = nn.Linear(3, 1, bias=False).to(DT)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]], dtype=DT))
        model = ib.Homogeneous(lin.to(device), degree=1)
        with pytest.warns(RuntimeWarning, match="diverged"):
            return ib.train(model, X.to(device), y.to(device), loss="squared", weight_decay=0.0,
                            lr=5.0, steps=2000, num_evals=2, progress=False)  # fmt: skip

    cpu = run("cpu")
    deferred = run("cuda")
    monkeypatch.setattr(_gd_loop, "_DEVICE_GUARD_EVERY", 1)
    per_step = run("cuda")
    for res in (deferred, per_step):
        assert res.status == "diverged" and res.iterations == cpu.iterations
        theta = res.model.theta()
        assert bool(torch.isfinite(theta).all())
        torch.testing.assert_close(theta.cpu(), cpu.model.theta(), rtol=1e-10, atol=0.0)


def test_gd_loop_on_cuda_syncs_only_where_it_reads_the_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With CUDA's sync debug mode on, no step between two reads of the guard (every 64
    steps; records only at the first and last step) synchronizes with the host."""
    import warnings

    from implicitbias.dynamics._problem import Problem

    net, X, y = _modular_net("cuda")
    marks: list[int] = []
    real = Problem.sgd_step

    def update(self: Problem, grads: list[torch.Tensor], lr: float) -> None:
        marks.append(len(caught))
        real(self, grads, lr)

    monkeypatch.setattr(Problem, "sgd_step", update)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            res = ib.train(net, X, y, steps=256, num_evals=2, **MODULAR_GD)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert res.status == "completed" and len(marks) == 256
    syncing = [i + 1 for i, n in enumerate(np.diff(marks)) if n]
    assert syncing == [64, 128, 192]


# ------------------------------------------------- modular-addition-no-wd on CUDA (issue 15)
def test_no_wd_loop_on_cuda_syncs_only_where_it_reads_log_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fig. 4's loop in float32 (the step on c·L, then on log L) on CUDA: with the sync debug
    mode on, no step between two host reads of log L (every 64 steps; records only at the first
    and last step) synchronizes; the run crosses the switch where the CPU's does and ends at
    its log L to float32 rounding (a 1e-6 relative change of the initialization moves the CPU's
    final log L by 4e-5 relative and not its switch step)."""
    import dataclasses
    import warnings

    import implicitbias.experiments.modular_no_wd as nowd
    from implicitbias.experiments import get_config
    from implicitbias.experiments._no_wd_loop import read_every

    assert read_every(torch.device("cuda")) == 64
    cfg = dataclasses.replace(
        get_config("modular-addition-no-wd", "tiny"), dtype="float32", p=11, width=48,
        steps=400, lr=0.05, switch_log_loss=-1.0, num_evals=2,
    )  # fmt: skip
    cpu = nowd.run_no_weight_decay(cfg)
    marks: list[int] = []
    real = nowd._descend

    def update(*args: object) -> None:
        marks.append(len(caught))
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(nowd, "_descend", update)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            cuda = nowd.run_no_weight_decay(cfg, device="cuda")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert cuda.train_info["status"] == "completed" and len(marks) == 400
    syncing = [i + 1 for i, n in enumerate(np.diff(marks)) if n]
    assert syncing == list(range(64, 400, 64))
    assert 10 < cpu.summary["switch_step"] < 390
    assert abs(cuda.summary["switch_step"] - cpu.summary["switch_step"]) <= 1
    for col, rtol in (("log_train_loss", 1e-3), ("theta_norm", 1e-4)):
        np.testing.assert_allclose(cuda.history[col], cpu.history[col], rtol=rtol, err_msg=col)
    n = cpu.summary["n_train"]
    assert float(cpu.history["train_acc"][-1]) > 0.9  # it fitted
    np.testing.assert_allclose(cuda.history["train_acc"], cpu.history["train_acc"], atol=2.5 / n)
