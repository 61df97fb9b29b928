"""Settings of the experiments at each scale (THEORY §6).

``"paper"`` is the paper's setting (Lyu et al., ICLR 2024, arXiv:2311.18817, Figures 1–4 and
Appendix F); ``"quick"`` is a small default that shows the same effect on a 2-core CPU in
minutes (docs/reproduce.md); ``"tiny"`` is a seconds-long smoke setting for tests (its plots
are not meant to show anything). A run's horizon is given in units of the transition time t* = (1/λ)·log α, or, with
``steps > 0``, in GD steps (the common x axis of a sweep; the only choice where α ≤ 1 or λ = 0
leave t* undefined, which the modular-addition configs allow).

Every config is a frozen dataclass derived from :class:`ExperimentConfig`, which holds the
settings all experiments share (α, λ, η, horizon, schedule, method, tolerances, precision).
Each experiment module declares its presets (one config per scale) in its
:func:`~implicitbias.experiments.registry.register` call; :func:`get_config` returns the preset
of a scale with optional field overrides.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from implicitbias._validation import (
    check_bool,
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.dynamics import Method
from implicitbias.dynamics import t_star as transition_time
from implicitbias.experiments._reference_data import DATA_SOURCES, reference_count
from implicitbias.experiments.registry import ALL_SCALES, EXPERIMENTS, SCALES, get_experiment

__all__ = [
    "SCALES",
    "ALL_SCALES",
    "EXPERIMENTS",
    "ExperimentConfig",
    "DiagonalConfig",
    "CompletionConfig",
    "ModularConfig",
    "NoDecayConfig",
    "get_config",
]


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """The settings every experiment has; each experiment's config adds its own fields.

    All fields are keyword-only. A subclass re-declares a field only to change its default.

    Attributes
    ----------
    alpha : float
        The initialization scale α > 1 (its meaning is the experiment's: the initial norm of
        the diagonal net, the scale of U = V = α I, the factor of a He initialization). Configs
        with ``requires_transition = False`` accept any α > 0 when ``steps > 0``.
    weight_decay, lr : float
        λ and the GD step η (flow: the unit of steps-equivalent t/η). λ > 0, or λ ≥ 0 where α
        may be ≤ 1.
    horizon : float
        Training time in units of t* = log(α)/λ (used when ``steps`` is 0).
    steps : int, default 0
        When > 0, the training time in GD steps, t_max = steps·η, instead of ``horizon``·t*:
        runs of different α or λ then share one x axis (sweeps), and a run without a transition
        time (α ≤ 1 or λ = 0) has a horizon at all.
    num_evals : int
        Size of the log-spaced evaluation schedule.
    kkt_evals : int
        Number of (log-spaced) evaluations at which the KKT residual is also computed.
    method : {"gd", "flow"}
        Default dynamics.
    rtol, atol : float
        Flow tolerances.
    dtype : {"float64", "float32"}
        Training precision.
    data_source : {"library", "reference"}
        ``"library"`` (default): the library's seeded data generator. ``"reference"``: the
        exact samples the paper's published code draws on the CPU for the run's seed (its torch
        random-call sequence; see :mod:`implicitbias.experiments.data`). Either way the data
        depend only on the seed.
    """

    alpha: float = 128.0
    weight_decay: float = 1e-3
    lr: float = 0.01
    horizon: float = 3.0
    num_evals: int = 120
    kkt_evals: int = 16
    method: Method = "flow"
    rtol: float = 1e-5
    atol: float = 1e-9
    dtype: str = "float64"
    data_source: Literal["library", "reference"] = "library"
    steps: int = 0

    #: Whether α > 1 and λ > 0 are required even with an absolute horizon (``steps > 0``):
    #: True for the experiments whose measurements are made in units of t*.
    requires_transition: ClassVar[bool] = True

    @property
    def t_star(self) -> float:
        """t* = log(α)/λ, in gradient-flow time (:func:`~implicitbias.t_star`)."""
        return transition_time(self.alpha, self.weight_decay)

    @property
    def t_max(self) -> float:
        """The end of training: steps·η when ``steps > 0``, else horizon · t*."""
        if self.steps > 0:
            return self.steps * self.lr
        return self.horizon * self.t_star


@dataclass(frozen=True, kw_only=True)
class DiagonalConfig(ExperimentConfig):
    """A diagonal-net linear-classification run (sparse-linear grokking or misgrokking).

    Attributes
    ----------
    task : {"sparse", "large_margin"}
        The data law (see :mod:`implicitbias.experiments.data`).
    d, n, n_test : int
        Dimension, training and test set sizes.
    k : int
        Sparsity of w* (sparse task).
    gamma : float
        γ of the large-margin task.
    l1_screen : int
        0: the ℓ1 max-margin baseline is solved exactly over all ``d`` features. K > 0: it is
        solved over the K features with the largest ``|Xᵀy|`` only (a feasible, not certified,
        solution; the summary reports its dual violation over all features). The default 0 is
        exact at every scale: column generation solves the paper's 256 × 10⁵ instance in
        under a second.
    alpha, weight_decay, lr, horizon, num_evals, kkt_evals, method, rtol, atol, dtype :
        As in :class:`ExperimentConfig`; ``alpha`` is the initial norm ‖θ(0)‖₂
        (``u = v = α/√(2d)``, the paper's convention).
    """

    task: str
    d: int
    n: int
    n_test: int
    k: int = 3
    gamma: float = 25.0
    l1_screen: int = 0


@dataclass(frozen=True, kw_only=True)
class CompletionConfig(ExperimentConfig):
    """A matrix-completion run (multiplication table, U = V = α·I, squared loss).

    Attributes
    ----------
    d : int
        Matrix size.
    fraction : float
        Fraction of the d² entries observed.
    alpha, weight_decay, lr, horizon, num_evals, kkt_evals, method, rtol, atol, dtype :
        As in :class:`ExperimentConfig` (``alpha`` is the scale of ``U = V = α I``).
    """

    d: int
    fraction: float = 0.05
    # defaults of this experiment
    alpha: float = 10.0
    weight_decay: float = 1e-4
    lr: float = 0.1
    horizon: float = 10.0
    kkt_evals: int = 12
    rtol: float = 1e-6
    atol: float = 1e-10


@dataclass(frozen=True, kw_only=True)
class ModularConfig(ExperimentConfig):
    """A modular-addition run: two-layer ReLU net (first-layer bias), cross-entropy.

    He-normal init scaled by α, last layer zeroed (THEORY §6.4), or not (Fig. 2(a), §6.5).

    Attributes
    ----------
    p : int
        Modulus.
    train_fraction : float
        Fraction of the p² pairs used for training.
    width : int
        Hidden width.
    zero_last_layer : bool, default True
        Zero the last layer (output 0 at init). False: the plain He initialization of the
        paper's code, ``std = sqrt(2/fan_in)`` in the first layer and ``sqrt(1/fan_in)`` in the
        last (both times α).
    alpha, weight_decay, lr, horizon, steps, num_evals, kkt_evals, method, rtol, atol, dtype :
        As in :class:`ExperimentConfig`; ``alpha`` multiplies the He initialization and t* is
        log(α)/λ. With ``steps > 0`` any α > 0 and λ ≥ 0 are allowed (t* is then NaN for
        α ≤ 1 or λ = 0).
    """

    requires_transition: ClassVar[bool] = False

    p: int
    train_fraction: float = 0.4
    width: int = 1024
    zero_last_layer: bool = True
    # defaults of this experiment
    alpha: float = 1.0
    weight_decay: float = 1e-4
    lr: float = 0.002
    num_evals: int = 100
    kkt_evals: int = 0
    method: Method = "gd"
    rtol: float = 1e-4
    atol: float = 1e-8
    dtype: str = "float32"

    @property
    def t_star(self) -> float:
        """t* = log(α)/λ (:func:`~implicitbias.t_star`; NaN for α ≤ 1 or λ = 0: no transition)."""
        if self.alpha > 1 and self.weight_decay > 0:
            return transition_time(self.alpha, self.weight_decay)
        return float("nan")


@dataclass(frozen=True, kw_only=True)
class NoDecayConfig(ModularConfig):
    r"""Modular addition without weight decay, steps on log L once the loss is small (App. B.1).

    GD on the mean cross-entropy L with λ = 0 and the step rule of the paper's code:

    .. math::

        \theta \leftarrow \theta - \eta_k \nabla L(\theta), \qquad
        \eta_k = \begin{cases} c\,\eta & \log L(\theta) > s \\
                                 \eta / L(\theta) & \text{otherwise}, \end{cases}

    i.e. GD with rate η on c·L early and on log L late (∇ log L = ∇L / L): the normalized-GD
    regime in which the normalized margin keeps growing without weight decay.

    Attributes
    ----------
    lr_factor : float, default 10
        c, the factor on the loss while log L > s (an effective rate c·η).
    switch_log_loss : float, default -5
        s, the value of log L below which the step is taken on log L.
    p, train_fraction, width, zero_last_layer, alpha, lr, steps, num_evals, dtype :
        As in :class:`ModularConfig`; ``weight_decay`` must be 0 and ``method`` ``"gd"``.
    """

    lr_factor: float = 10.0
    switch_log_loss: float = -5.0
    # defaults of this experiment
    weight_decay: float = 0.0
    lr: float = 0.01
    zero_last_layer: bool = False


def get_config(name: str, scale: str = "quick", overrides: Mapping[str, Any] | None = None) -> Any:
    """The config of experiment ``name`` at ``scale``, with fields replaced by ``overrides``.

    Parameters
    ----------
    name : str
        One of ``"sparse-linear"``, ``"misgrokking"``, ``"matrix-completion"``,
        ``"modular-addition"``, ``"modular-addition-he-init"``, ``"modular-addition-no-wd"``.
    scale : {"quick", "paper", "tiny"}, default "quick"
    overrides : mapping, optional
        Field values to replace (e.g. ``{"d": 500, "horizon": 2.0}``).

    Returns
    -------
    ExperimentConfig
        The experiment's config class (e.g. :class:`DiagonalConfig`).

    Examples
    --------
    >>> from implicitbias.experiments.configs import get_config
    >>> cfg = get_config("sparse-linear", "paper")
    >>> cfg.d, cfg.n, cfg.alpha, cfg.weight_decay, round(cfg.t_max / cfg.lr)
    (100000, 256, 128.0, 0.001, 2000000)
    """
    return build_config(name, scale, overrides, func="get_config")


def build_config(name: str, scale: str, overrides: Mapping[str, Any] | None, *, func: str) -> Any:
    """:func:`get_config` with error messages under the caller's name (``run``, the CLI).

    Every field is validated (type and range), so that a bad setting is refused here, before a
    run writes anything, and never half-way through a run.
    """
    cfg = get_experiment(name, func).preset(scale, func)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise fail_type(func, "overrides", "a mapping of field names to values", overrides)
    if overrides:
        fields = {f.name for f in dataclasses.fields(cfg)}
        bad_keys = [k for k in overrides if not isinstance(k, str)]
        if bad_keys:
            raise fail_type(func, "overrides", "a mapping with str keys", bad_keys[0])
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise fail(
                func,
                "overrides",
                f"fields of {type(cfg).__name__} ({sorted(fields)})",
                f"unknown fields {unknown}",
            )
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            default = getattr(cfg, key)
            if isinstance(default, bool):
                values[key] = check_bool(value, func, key)
            elif isinstance(default, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)  # "d=1e5" on a command line
                values[key] = check_int(value, func, key)
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise fail_type(func, key, "a number", value)
                values[key] = float(value)
            else:
                if not isinstance(value, str):
                    raise fail_type(func, key, "a string", value)
                values[key] = value
        cfg = dataclasses.replace(cfg, **values)
    _check_fields(cfg, func)
    return cfg


#: Smallest value of each integer field.
_INT_MINIMUM = {
    "d": 1,
    "n": 1,
    "n_test": 1,
    "k": 1,
    "num_evals": 2,
    "kkt_evals": 0,
    "l1_screen": 0,
    "p": 2,
    "width": 1,
    "steps": 0,
}
#: Float fields that must be positive and finite (alpha and weight_decay: see below).
_POSITIVE = ("lr", "horizon", "rtol", "atol")
#: Fractions, in the open interval (0, 1).
_FRACTIONS = ("fraction", "train_fraction")
#: String fields and their choices.
_CHOICES = {
    "method": ("gd", "flow"),
    "dtype": ("float64", "float32"),
    "task": ("sparse", "large_margin"),
    "data_source": DATA_SOURCES,
}


def _check_fields(cfg: Any, func: str) -> None:
    """Range checks of every field of a config (the types are already right)."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    alpha = check_positive(cfg.alpha, func, "alpha")
    wd = check_nonnegative(cfg.weight_decay, func, "weight_decay")
    steps = check_int(cfg.steps, func, "steps", minimum=0)
    _check_no_decay(cfg, fields, func)
    # the horizon is in units of t* (or the experiment measures in them): t* must exist
    needs_transition = cfg.requires_transition or steps == 0
    hint = None if cfg.requires_transition else "Or give an absolute horizon with steps > 0."
    if needs_transition and not alpha > 1.0:
        raise fail(
            func,
            "alpha",
            "> 1 (the transition time t* = log(alpha)/lambda must be positive)",
            repr(cfg.alpha),
            hint,
        )
    if needs_transition and not wd > 0:
        raise fail(
            func,
            "weight_decay",
            "> 0 (the transition time t* = log(alpha)/lambda needs lambda > 0)",
            repr(cfg.weight_decay),
            hint,
        )
    if needs_transition and not math.isfinite(math.log(alpha) / wd):
        # t_star would refuse it under its own name
        raise fail(
            func,
            "weight_decay",
            "large enough that t* = log(alpha)/lambda is finite",
            repr(cfg.weight_decay),
        )
    for key in _POSITIVE:
        check_positive(getattr(cfg, key), func, key)
    for key, minimum in _INT_MINIMUM.items():
        if key in fields:
            check_int(getattr(cfg, key), func, key, minimum=minimum)
    for key in _FRACTIONS:
        if key in fields:
            v = check_positive(getattr(cfg, key), func, key)
            if not v < 1.0:
                raise fail(func, key, "in the open interval (0, 1)", repr(getattr(cfg, key)))
    for key, choices in _CHOICES.items():
        if key in fields:
            check_choice(getattr(cfg, key), func, key, choices)
    if "gamma" in fields:
        check_nonnegative(cfg.gamma, func, "gamma")
    if "k" in fields and cfg.k > cfg.d:
        raise fail(func, "k", f"at most d = {cfg.d}", repr(cfg.k))
    ref = cfg.data_source == "reference"
    if "fraction" in fields:
        _check_split(func, "fraction", cfg.fraction, cfg.d * cfg.d, "observed entries", ref)
    if "train_fraction" in fields:
        _check_split(
            func, "train_fraction", cfg.train_fraction, cfg.p * cfg.p, "training pairs", ref
        )
    if not math.isfinite(cfg.t_max):
        raise fail(func, "horizon", "small enough that horizon * t* is finite", repr(cfg.horizon))


def _check_no_decay(cfg: Any, fields: set[str], func: str) -> None:
    """The fields of :class:`NoDecayConfig`: λ = 0, GD, a positive factor, a finite switch."""
    if "lr_factor" not in fields:
        return
    check_positive(cfg.lr_factor, func, "lr_factor")
    s = cfg.switch_log_loss
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
        raise fail(func, "switch_log_loss", "a finite number (a value of log L)", repr(s))
    if cfg.weight_decay != 0:
        raise fail(
            func,
            "weight_decay",
            "0 (this experiment trains without weight decay)",
            repr(cfg.weight_decay),
        )
    if cfg.method != "gd":
        raise fail(
            func,
            "method",
            "'gd' (the step on log L is a gradient-descent rule)",
            repr(cfg.method),
        )
    if cfg.steps < 1:
        raise fail(
            func,
            "steps",
            "an integer >= 1 (without weight decay there is no t* to measure a horizon in)",
            repr(cfg.steps),
        )


def _check_split(
    func: str, key: str, fraction: float, total: int, what: str, reference: bool
) -> None:
    # the paper's code truncates the count; the library rounds it
    n_train = reference_count(fraction, total) if reference else int(round(fraction * total))
    if not 1 <= n_train < total:
        raise fail(func, key, f"giving between 1 and {total - 1} {what}", repr(fraction))
