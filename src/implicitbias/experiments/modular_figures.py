"""The paper's modular-addition panels: Fig. 2(a) as an experiment, Fig. 2(b) and 2(c) as sweeps.

Same data and net as ``modular-addition`` (THEORY §6.5: p = 97, 40% of the pairs for training,
width 1024, first-layer bias, cross-entropy, full-batch GD with η = 0.002):

- ``modular-addition-he-init`` (Fig. 2(a)): the plain He initialization (×1, last layer **not**
  zeroed), λ = 10⁻⁴. Train accuracy climbs slowly to 100% while test accuracy sits at 0; it
  rises only much later. There is no t* (α = 1), so the horizon and the checks are in GD steps.
- ``modular-addition --sweep alpha`` (Fig. 2(b)): last layer zeroed, He × α, λ = 10⁻⁴. The larger
  α, the sooner the training set is fitted and the later the test accuracy rises.
- ``modular-addition --sweep weight_decay`` (Fig. 2(c)): He × 10, last layer zeroed. The larger
  λ, the sooner the test accuracy rises; at the largest λ the net does not fit the training set.

Every run of a sweep shares one horizon in GD steps (``steps``), the paper's common x axis.
The quick presets were found by measurement on the 2-core CPU (``docs/reproduce.md``): p = 31
with 70% of the pairs, width 256, λ = 2×10⁻³ and α up to 16 (GD with η = 0.08 is stable at
init up to α ≈ 15 at this width: the top Hessian eigenvalue of the loss at init is
8.6·(α/10)², so α = 100 would need η ≈ 0.002 and 10⁶ steps). At this λ the α = 1 run fits its
training set late (λt ≈ 1.5) and is itself limited by weight decay, so the quick α sweep
starts at 4.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, Figure 2.
"""

from __future__ import annotations

from typing import Any

from implicitbias.experiments._common import RunOutput
from implicitbias.experiments.configs import ModularConfig
from implicitbias.experiments.modular_addition import MILESTONE_SPECS, run_modular_addition
from implicitbias.experiments.registry import (
    Experiment,
    SweepCheckSpec,
    SweepPreset,
    register,
    register_sweep,
)

__all__: list[str] = []


def _paper(**settings: Any) -> ModularConfig:
    """The paper's settings shared by the panels (THEORY §6.5), and ``settings``."""
    return ModularConfig(p=97, train_fraction=0.4, width=1024, lr=0.002, **settings)


def _quick(**settings: Any) -> ModularConfig:
    """The quick settings shared by the panels (measured: docs/reproduce.md)."""
    return ModularConfig(p=31, train_fraction=0.7, width=256, num_evals=80, **settings)


def _tiny(**settings: Any) -> ModularConfig:
    """Seconds-long settings for tests."""
    return ModularConfig(
        p=7, train_fraction=0.5, width=32, lr=0.05, num_evals=20, dtype="float64", **settings
    )


def _launch(cfg: ModularConfig, *, name: str, workdir: Any, **kwargs: Any) -> RunOutput:
    """:func:`run_modular_addition` with the step-based checks, as the registry calls it."""
    return run_modular_addition(cfg, name=name, **kwargs)


register(
    Experiment(
        name="modular-addition-he-init",
        description=(
            "Fig. 2(a): modular addition from the plain He init (x1, last layer not zeroed): "
            "train accuracy reaches 100% long before test accuracy rises."
        ),
        presets={
            "paper": _paper(alpha=1.0, weight_decay=1e-4, zero_last_layer=False, steps=100_000_000),
            "quick": _quick(
                alpha=1.0, weight_decay=2e-3, lr=0.2, zero_last_layer=False, steps=45_000
            ),
            "tiny": _tiny(alpha=1.0, weight_decay=1e-2, zero_last_layer=False, steps=400),
        },
        runner=_launch,
        checks=MILESTONE_SPECS,
        metric="accuracy",
    )
)

_FIT_EARLIER = SweepCheckSpec(
    "fit_step", "decreasing", "the training set is fitted sooner as alpha grows"
)
_GENERALIZE_LATER = SweepCheckSpec(
    "test_acc_50_step", "increasing", "test accuracy reaches 50% later as alpha grows"
)
_GENERALIZE_SOONER = SweepCheckSpec(
    "test_acc_50_step",
    "decreasing",
    "test accuracy reaches 50% sooner as weight_decay grows (all but the largest)",
    exclude_largest=True,
)
_LARGEST_FAILS = SweepCheckSpec(
    "final_train_acc",
    "largest_below",
    "the largest weight_decay does not fit the training set (final train accuracy)",
    threshold=0.5,
)

register_sweep(
    SweepPreset(
        experiment="modular-addition",
        key="alpha",
        figure="Fig. 2(b)",
        description=(
            "init scale, last layer zeroed: larger alpha fits sooner and generalizes later"
        ),
        values={"paper": (1.0, 10.0, 100.0), "quick": (4.0, 8.0, 16.0), "tiny": (1.0, 4.0)},
        base={
            "paper": _paper(weight_decay=1e-4, steps=100_000_000),
            # eta = 0.08 is stable up to alpha ~ 15 at this width (top Hessian eigenvalue at
            # init 8.6 (alpha/10)^2); see docs/reproduce.md for why not alpha = 1
            "quick": _quick(weight_decay=2e-3, lr=0.08, steps=50_000),
            "tiny": _tiny(weight_decay=1e-2, steps=300),
        },
        checks={"fit_earlier": _FIT_EARLIER, "generalize_later": _GENERALIZE_LATER},
    )
)

register_sweep(
    SweepPreset(
        experiment="modular-addition",
        key="weight_decay",
        figure="Fig. 2(c)",
        description=(
            "weight decay at alpha = 10: larger lambda generalizes sooner; the largest does not fit"
        ),
        values={
            "paper": (1e-4, 3e-4, 1e-3, 3e-3),
            "quick": (1e-3, 2e-3, 4e-3, 2e-2),
            "tiny": (1e-3, 1e-1),
        },
        base={
            "paper": _paper(alpha=10.0, steps=100_000_000),
            "quick": _quick(alpha=10.0, lr=0.16, steps=45_000),
            "tiny": _tiny(alpha=4.0, steps=300),
        },
        checks={"generalize_sooner": _GENERALIZE_SOONER, "largest_fails": _LARGEST_FAILS},
    )
)
