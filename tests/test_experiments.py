"""Configured runs: a tiny sparse-linear run shows the kernel → rich dichotomy; files; configs.

The full quick-scale acceptance checks are ``@pytest.mark.slow`` (run with ``-m slow``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import implicitbias as ib
from implicitbias.experiments import get_config, list_experiments, run


def test_list_and_configs() -> None:
    names = list_experiments()
    assert set(names) == {
        "sparse-linear",
        "misgrokking",
        "matrix-completion",
        "modular-addition",
        "modular-addition-he-init",
        "modular-addition-no-wd",
    }
    paper = get_config("sparse-linear", "paper")
    assert (paper.d, paper.n, paper.n_test, paper.k) == (100_000, 256, 10_000, 3)
    assert (paper.alpha, paper.weight_decay, paper.lr) == (128.0, 1e-3, 0.01)
    assert round(paper.t_max / paper.lr) == 2_000_000
    mis = get_config("misgrokking", "paper")
    assert (mis.n, mis.gamma, round(mis.t_max / mis.lr)) == (32, 25.0, 20_000_000)
    mc = get_config("matrix-completion", "paper")
    assert (mc.d, mc.fraction, mc.alpha, mc.weight_decay, mc.lr) == (97, 0.05, 10.0, 1e-4, 0.1)
    assert round(mc.t_max / mc.lr) == 10_000_000
    ma = get_config("modular-addition", "paper")
    assert (ma.p, ma.train_fraction, ma.width, ma.lr, ma.weight_decay) == (
        97,
        0.4,
        1024,
        0.002,
        1e-4,
    )
    assert get_config("sparse-linear", "quick", {"d": 321}).d == 321


def test_bad_run_arguments(tmp_path) -> None:
    with pytest.raises(ValueError, match="'name'"):
        run("grokking", out_dir=tmp_path)
    with pytest.raises(ValueError, match="'scale'"):
        run("sparse-linear", scale="huge", out_dir=tmp_path)
    with pytest.raises(ValueError, match="'weight_decay'"):
        run("sparse-linear", scale="tiny", out_dir=tmp_path, overrides={"weight_decay": -1.0})
    with pytest.raises(ValueError, match="'alpha'"):
        run("sparse-linear", scale="tiny", out_dir=tmp_path, overrides={"alpha": 0.0})
    with pytest.raises(ValueError, match="unknown fields"):
        run("sparse-linear", scale="tiny", out_dir=tmp_path, overrides={"beta": 1.0})


@pytest.fixture(scope="module")
def tiny_sparse(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-sparse")
    return run("sparse-linear", scale="tiny", out_dir=out, seed=0)


def test_tiny_sparse_linear_shows_the_dichotomy(tiny_sparse) -> None:
    h = tiny_sparse.history
    r, acc = h["rescaled_time"], h["test_acc"]
    kernel = (r >= 0.1) & (r <= 0.5)
    assert kernel.sum() >= 3
    assert h["train_acc"][-1] == 1.0
    # kernel phase: near the l2 max-margin level, far below the end
    l2_acc = tiny_sparse.summary["l2_max_margin"]["test_acc"]
    l1_acc = tiny_sparse.summary["l1_max_margin"]["test_acc"]
    assert acc[kernel].max() < 0.8 < acc[-1]
    np.testing.assert_allclose(acc[kernel], l2_acc, atol=0.05)
    np.testing.assert_allclose(acc[-1], l1_acc, atol=0.03)
    assert h["cos_l2"][kernel].min() > 0.9
    assert h["cos_l1"][-1] > 0.95
    # ‖θ‖ shrinks by weight decay from α to O(1)
    assert h["theta_norm"][0] == pytest.approx(128.0)
    assert h["theta_norm"][-1] < 10.0


def test_tiny_run_writes_its_files(tiny_sparse) -> None:
    p = tiny_sparse.paths
    for key in ("history_csv", "history_json", "config", "summary", "figure", "train_log"):
        assert p[key].exists(), key
    hist = ib.History.from_csv(p["history_csv"])
    assert len(hist) == len(tiny_sparse.history)
    for col in ("t", "step", "rescaled_time", "train_acc", "test_acc", "theta_norm", "cos_l1"):
        assert col in hist.columns
    np.testing.assert_allclose(hist["test_acc"], tiny_sparse.history["test_acc"])
    config = json.loads(p["config"].read_text())
    assert config["experiment"] == "sparse-linear" and config["settings"]["d"] == 200
    summary = json.loads(p["summary"].read_text())
    assert set(summary["checks"]) >= {"final_cos_l1", "kernel_phase_test_acc_vs_l2"}
    assert summary["wall_time"] > 0
    assert p["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tiny_run_is_deterministic(tiny_sparse, tmp_path) -> None:
    again = run("sparse-linear", scale="tiny", out_dir=tmp_path, seed=0, figure=False)
    for col in ("train_loss", "test_acc", "cos_l1", "theta_norm"):
        np.testing.assert_array_equal(again.history[col], tiny_sparse.history[col])


def test_tiny_matrix_completion_leaves_the_zero_fill_plateau(tmp_path) -> None:
    res = run("matrix-completion", scale="tiny", out_dir=tmp_path, figure=False)
    h = res.history
    ker = res.summary["zero_fill"]["test_mse"]
    r = h["rescaled_time"]
    kernel = (r >= 0.1) & (r <= 0.5)
    np.testing.assert_allclose(h["test_mse"][kernel], ker, rtol=0.2)
    assert h["test_mse"][-1] < ker / 5
    assert h["dist_nuclear"][-1] < h["dist_nuclear"][kernel].min()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "sparse-linear",
        "misgrokking",
        "matrix-completion",
        "modular-addition",
    ],
)
def test_quick_scale_acceptance(name, tmp_path) -> None:
    res = run(name, scale="quick", out_dir=tmp_path)
    failed = {k: c for k, c in res.summary["checks"].items() if not c["passed"]}
    assert not failed, failed
    if name == "sparse-linear":
        assert res.wall_time < 120.0
    if name == "modular-addition":
        # grokking: the training set is memorized while test accuracy stays below chance,
        # and test accuracy only rises several t* later
        h = res.history
        r, train, test = h["rescaled_time"], h["train_acc"], h["test_acc"]
        memorized = (r >= 1.0) & (r <= 3.0)
        assert memorized.sum() >= 3
        assert train[memorized].min() == 1.0
        assert test[memorized].max() <= 1.0 / 31
        assert test[-1] >= 0.9 and train[-1] == 1.0
