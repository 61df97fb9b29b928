"""Bad-input tests that cross packages: one label policy, one dtype policy, one device policy
(issue 8), and the size of the whole bad-input battery (every tests/test_bad_input_*.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

import implicitbias as ib
from conftest import ARG, F64, K4, X4, Xt, diag3, mlp, sym_mlp, train_kw, y4, yt

pytestmark = pytest.mark.usefixtures("one_thread")


def test_battery_size() -> None:
    """The battery's size over all its files, kept visible (update when adding rows)."""
    sizes: dict[str, int] = {}
    for path in sorted(Path(__file__).parent.glob("test_bad_input_*.py")):
        battery = getattr(importlib.import_module(path.stem), "case", None)
        if battery is not None:
            sizes[path.stem] = len(battery)
    assert all(sizes.values()), sizes
    assert sum(sizes.values()) >= 300, sizes


def test_zero_one_label_policy_is_the_same_everywhere() -> None:
    """{0, 1} labels are never converted silently, and every binary entry point says how."""
    y01 = (y4() + 1) / 2
    calls = {
        "kernel_svm": lambda: ib.kernel_svm(K4(), y01),
        "l1_max_margin": lambda: ib.l1_max_margin(X4(), y01),
        "l2_max_margin": lambda: ib.l2_max_margin(X4(), y01),
        "lp_max_margin": lambda: ib.lp_max_margin(X4(), y01, p=3.0),
        "ntk_predictor": lambda: ib.ntk_predictor(sym_mlp(), Xt(), (yt() + 1) / 2),
        "normalized_margin": lambda: ib.normalized_margin(mlp(), Xt(), (yt() + 1) / 2),
        "smoothed_margin": lambda: ib.smoothed_margin(mlp(), Xt(), (yt() + 1) / 2),
        "kkt_residuals": lambda: ib.kkt_residuals(mlp(), Xt(), (yt() + 1) / 2),
        "train": lambda: ib.train(diag3(), Xt(), (yt() + 1) / 2, **train_kw()),
    }
    for func, call in calls.items():
        with pytest.raises(ARG, match=rf"The 'y' argument of {func} .*y = 2\*y - 1"):
            call()


def test_regression_targets_in_01_are_accepted() -> None:
    """The {±1} policy is for classification only: regression accepts any real targets."""
    res = ib.train(diag3(), Xt(), (yt() + 1) / 2, loss="squared", **train_kw())
    assert res.status == "completed"
    np.testing.assert_allclose(
        ib.kernel_regression(K4(), (y4() + 1) / 2).max_violation, 0.0, atol=1e-12
    )


def test_mixed_dtypes_through_library_functions() -> None:
    """Policy (from the code): library functions cast X to the model's dtype; results of the
    reference solvers are float64 whatever the input dtype."""
    net32 = ib.DiagonalNet(3, alpha=0.7)  # float32 parameters
    K = ib.empirical_ntk(net32, Xt())  # float64 data
    assert K.dtype == torch.float32
    net64 = diag3()
    K64 = ib.empirical_ntk(net64, Xt().float())  # float32 data, float64 model
    assert K64.dtype == torch.float64
    res = ib.train(net64, Xt().float(), yt().float(), **train_kw())
    assert res.status == "completed"
    for r in (
        ib.kernel_svm(torch.tensor(K4(), dtype=torch.float32), torch.tensor(y4())).coef,
        ib.l1_max_margin(X4().astype(np.float32), y4().astype(np.float32)).w,
        ib.kernel_regression(K4().astype(np.float32), y4()).coef,
    ):
        assert r.dtype == np.float64


@pytest.mark.gpu
def test_mixed_devices_are_rejected_with_a_clear_message() -> None:
    net = ib.DiagonalNet(3, dtype=F64, device="cuda")
    with pytest.raises(
        ARG, match=r"The 'X1' argument of empirical_ntk must be on the model's device"
    ):
        ib.empirical_ntk(net, Xt())
    with pytest.raises(ARG, match=r"The 'X' argument of train must be on the model's device"):
        ib.train(net, Xt(), yt(), **train_kw())
    with pytest.raises(ARG, match=r"The 'X' argument of check_zero_output must be on the model"):
        ib.check_zero_output(net, Xt())


# A model on the "meta" device (no data) is refused by every consumer before any computation,
# naming the model and 'meta' (issue 11); mixed real devices are tested by the gpu-marked test.
def _meta_net() -> ib.DiagonalNet:
    return ib.DiagonalNet(3, dtype=F64, device="meta")


MIXED_DEVICE = {
    "empirical_ntk": (lambda: ib.empirical_ntk(_meta_net(), Xt()), "X1"),
    "check_zero_output": (lambda: ib.check_zero_output(_meta_net(), Xt()), "X"),
    "train": (lambda: ib.train(_meta_net(), Xt(), yt(), **train_kw()), "X"),
    "ntk_predictor": (lambda: ib.ntk_predictor(_meta_net(), Xt(), yt()), "X"),
    "homogeneity_degree": (lambda: ib.homogeneity_degree(_meta_net(), Xt()), "X"),
    "kkt_residuals": (lambda: ib.kkt_residuals(_meta_net(), Xt(), yt()), "X"),
    "normalized_margin": (lambda: ib.normalized_margin(_meta_net(), Xt(), yt()), "X"),
    "smoothed_margin": (lambda: ib.smoothed_margin(_meta_net(), Xt(), yt()), "X"),
}


@pytest.mark.parametrize(
    "func",
    [f for f in MIXED_DEVICE],
)
def test_mixed_devices_name_the_argument_and_the_device(func: str) -> None:
    call, _ = MIXED_DEVICE[func]
    with pytest.raises(
        ARG,
        match=rf"The 'model' argument of {func} must be a module whose parameters hold data; "
        r"got parameter 'u' on the 'meta' device instead",
    ):
        call()
