"""The paper's modular-addition figures: Fig. 2(a) (plain He init), Fig. 4 (no weight decay, the
step on log L), and the configs they need (α = 1, λ = 0, a horizon in GD steps)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import implicitbias as ib
import implicitbias.experiments.modular_no_wd as nowd
from implicitbias import InvalidArgumentError
from implicitbias.cli import main
from implicitbias.experiments import get_config, run
from implicitbias.experiments.modular_addition import milestone_checks, modular_network


# ------------------------------------------------------------------ the step on log L
def _softmax_grad(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits X Wᵀ and its gradient in W, by hand."""
    Z = X @ W.T
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    n = X.shape[0]
    L = float(-np.log(P[np.arange(n), y]).mean())
    P[np.arange(n), y] -= 1.0
    return L, P.T @ X / n


@pytest.mark.parametrize("switch", [-50.0, 5.0], ids=["on-c-L", "on-log-L"])
def test_log_loss_step_against_a_hand_computation(switch: float) -> None:
    X = np.array([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.2]])
    y = np.array([0, 2, 1])
    W = np.array([[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]])
    lr, c = 0.05, 10.0
    L, G = _softmax_grad(W, X, y)
    eta = c * lr if math.log(L) > switch else lr / L
    expected = W - eta * G

    model = torch.nn.Linear(2, 3, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(W))
    log_l, log_eta = nowd.log_loss_step(
        model, torch.from_numpy(X), torch.from_numpy(y), lr=lr, lr_factor=c,
        switch_log_loss=switch,
    )  # fmt: skip
    assert log_l == pytest.approx(math.log(L), rel=1e-12)
    assert math.exp(log_eta) == pytest.approx(eta, rel=1e-12)
    np.testing.assert_allclose(model.weight.detach().numpy(), expected, rtol=1e-12)
    # the two branches really differ here: c·η = 0.5, η/L = 0.05/L
    assert (math.exp(log_eta) == pytest.approx(0.5)) == (switch < 0)


def test_log_mean_cross_entropy_where_the_loss_underflows() -> None:
    # margins of 800: every per-example loss is e^-800 < 1e-300 (0 in float64)
    z = torch.tensor([[800.0, 0.0, 0.0], [0.0, 810.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    assert float(torch.nn.functional.cross_entropy(z, y)) == 0.0
    # L = (1/2)(2e^-800 + 2e^-810), by hand
    expected = math.log(math.exp(-800.0 + 800.0) + math.exp(-810.0 + 800.0)) - 800.0
    assert float(nowd.log_mean_cross_entropy(z, y)) == pytest.approx(expected, rel=1e-12)
    # and where it does not underflow, the same as log(cross_entropy)
    z = torch.tensor([[2.0, -1.0, 0.5], [0.3, 0.2, 4.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    ce = torch.nn.functional.cross_entropy(z, y)
    assert float(nowd.log_mean_cross_entropy(z, y)) == pytest.approx(math.log(ce), rel=1e-12)


def test_effective_lr_rule() -> None:
    kw = {"lr": 0.01, "lr_factor": 10.0, "switch_log_loss": -5.0}
    assert nowd.log_effective_lr(-4.999, **kw) == pytest.approx(math.log(0.1))
    assert nowd.log_effective_lr(-5.0, **kw) == pytest.approx(math.log(0.01) + 5.0)
    # where η/L itself overflows (margins of ~1000), its log is finite
    assert nowd.log_effective_lr(-1000.0, **kw) == pytest.approx(math.log(0.01) + 1000.0)


# ------------------------------------------------------------------ configs
def test_configs_without_a_transition_time() -> None:
    he = get_config("modular-addition-he-init", "paper")
    assert (he.alpha, he.weight_decay, he.zero_last_layer, he.lr, he.steps) == (
        1.0, 1e-4, False, 0.002, 100_000_000,
    )  # fmt: skip
    assert math.isnan(he.t_star) and he.t_max == pytest.approx(1e8 * 0.002)
    nw = get_config("modular-addition-no-wd", "paper")
    assert (nw.weight_decay, nw.lr, nw.lr_factor, nw.switch_log_loss) == (0.0, 0.01, 10.0, -5.0)
    assert (nw.p, nw.width, nw.zero_last_layer, nw.alpha) == (97, 1024, False, 1.0)
    # alpha = 1 needs an absolute horizon, and only modular addition takes it
    with pytest.raises(InvalidArgumentError, match="'alpha'.*Or give an absolute horizon"):
        get_config("modular-addition", "quick", {"alpha": 1.0})
    assert get_config("modular-addition", "quick", {"alpha": 1.0, "steps": 10}).t_max == 1.0
    with pytest.raises(InvalidArgumentError, match="'alpha' argument of get_config"):
        get_config("sparse-linear", "quick", {"alpha": 1.0, "steps": 10})
    with pytest.raises(InvalidArgumentError, match="'weight_decay'.*without weight decay"):
        get_config("modular-addition-no-wd", "quick", {"weight_decay": 1e-3})
    with pytest.raises(ib.InvalidArgumentTypeError, match="'zero_last_layer'.*True or False"):
        get_config("modular-addition", "quick", {"zero_last_layer": 1})


def test_plain_he_init_has_the_paper_code_scales() -> None:
    cfg = get_config("modular-addition-he-init", "quick", {"width": 4000})
    net = modular_network(cfg, seed=0, dtype=torch.float64, device="cpu")
    w1, w2 = net.layers[0].weight.detach(), net.layers[-1].weight.detach()
    assert float(w1.std()) == pytest.approx(math.sqrt(2.0 / (2 * cfg.p)), rel=0.02)
    assert float(w2.std()) == pytest.approx(math.sqrt(1.0 / cfg.width), rel=0.02)
    zeroed = modular_network(get_config("modular-addition", "quick"), seed=0, dtype=torch.float64,
                             device="cpu")  # fmt: skip
    assert float(zeroed.layers[-1].weight.detach().abs().max()) == 0.0


# ------------------------------------------------------------------ runs
def test_milestone_checks_fail_on_a_run_that_generalizes_first() -> None:
    def hist(train: list[float], test: list[float]) -> ib.History:
        h = ib.History()
        for k, (a, b) in enumerate(zip(train, test)):
            h.append({"step": float(10**k), "train_acc": a, "test_acc": b})
        return h

    good = milestone_checks(hist([0.2, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.5, 0.95]))
    assert {k: c["result"] for k, c in good.items()} == dict.fromkeys(good, "PASS")
    # test accuracy rises with the training fit: no memorization phase, no delay
    bad = milestone_checks(hist([0.2, 1.0, 1.0, 1.0, 1.0], [0.1, 0.95, 0.95, 0.95, 0.95]))
    assert bad["memorization_first"]["result"] == "FAIL"
    assert bad["delayed_generalization"]["result"] == "FAIL"


def test_tiny_he_init_run_measures_in_steps(tmp_path: Path) -> None:
    res = run("modular-addition-he-init", scale="tiny", out_dir=tmp_path / "a", figure=True)
    assert res.status == "completed"
    s = res.summary
    assert s["t_star"] is None or math.isnan(s["t_star"])
    assert set(s["checks"]) == {"memorization_first", "delayed_generalization",
                                "final_train_acc", "final_test_acc"}  # fmt: skip
    assert {c["result"] for c in s["checks"].values()} <= {"PASS", "FAIL"}
    assert s["milestones"]["final_step"] == 400.0
    assert np.isnan(res.history["rescaled_time"]).all()
    assert (tmp_path / "a" / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_modular_addition_without_t_star_reports_its_checks_na(tmp_path: Path) -> None:
    res = run("modular-addition", scale="tiny", out_dir=tmp_path / "m", figure=False,
              overrides={"alpha": 1.0, "steps": 50, "method": "gd"})  # fmt: skip
    assert res.status == "completed"
    assert {c["result"] for c in res.summary["checks"].values()} == {"n/a"}
    assert "no transition time" in next(iter(res.summary["checks"].values()))["reason"]


def test_tiny_no_weight_decay_run(tmp_path: Path) -> None:
    res = run("modular-addition-no-wd", scale="tiny", out_dir=tmp_path / "nw")
    assert res.status == "completed"
    h = res.history
    for col in ("log_lr_effective", "log_train_loss", "log_flow_time", "normalized_margin"):
        assert col in h.columns, col
    assert h["step"][-1] == 300.0
    cfg = res.config
    # the tiny run crosses the switch: steps at rate c·η, then at η/L ≥ η·e^{-s}
    log_eta = h["log_lr_effective"][1:]
    early = np.isclose(log_eta, math.log(cfg.lr * cfg.lr_factor), rtol=0, atol=1e-12)
    assert early[0] and not early[-1] and early.sum() >= 3
    assert (log_eta[~early] >= math.log(cfg.lr) - cfg.switch_log_loss).all()
    assert h["log_train_loss"][-1] < cfg.switch_log_loss < h["log_train_loss"][0]
    # Σ η_k at least the steps before the switch at c·η, plus one step at η/L
    switch = res.summary["switch_step"]
    floor = switch * cfg.lr * cfg.lr_factor + cfg.lr * math.exp(-cfg.switch_log_loss)
    assert math.exp(h["log_flow_time"][-1]) >= floor
    summary = json.loads((tmp_path / "nw" / "summary.json").read_text())
    assert summary["t_star"] is None and set(summary["checks"]) == set(nowd.NO_WD_SPECS)


def test_no_weight_decay_run_resumes_to_the_same_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["reproduce", "modular-addition-no-wd", "--scale", "tiny", "--no-progress",
            "--no-figure"]  # fmt: skip
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert main([*argv, "--out", str(ref)]) == 0
    real, calls = nowd.log_loss_step, [0]

    def interrupting(*args: object, **kwargs: object) -> tuple[float, float]:
        calls[0] += 1
        if calls[0] == 170:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nowd, "log_loss_step", interrupting)
    assert main([*argv, "--out", str(out)]) == 130
    monkeypatch.undo()
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert (out / "checkpoint.pt").exists()
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    a = ib.History.from_csv(ref / "history.csv")
    b = ib.History.from_csv(out / "history.csv")
    for col in ("step", "train_loss", "test_acc", "theta_norm", "log_lr_effective"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-12, err_msg=col)


# ------------------------------------------------------------------ quick scale (slow)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["modular-addition-he-init", "modular-addition-no-wd"])
def test_quick_figure_runs_pass_their_checks(name: str, tmp_path: Path) -> None:
    # measured on the loaded 2-core machine: 374 s (he-init) and 177 s (no-wd)
    res = run(name, scale="quick", out_dir=tmp_path / "run", figure=False)
    failed = {k: c for k, c in res.summary["checks"].items() if not c["passed"]}
    assert res.status == "completed" and not failed, failed


@pytest.mark.slow
@pytest.mark.parametrize("key", ["alpha", "weight_decay"])
def test_quick_sweeps_show_the_papers_orderings(key: str, tmp_path: Path) -> None:
    # measured with jobs=2 on the loaded 2-core machine: 509 s (alpha) and 631 s (weight_decay)
    from implicitbias.experiments import run_sweep

    res = run_sweep("modular-addition", key, scale="quick", out_dir=tmp_path / "s", jobs=2)
    failed = {k: c["detail"] for k, c in res.checks.items() if not c["passed"]}
    assert res.status == "completed" and not failed, failed
