r"""The early-phase (kernel-regime) predictor of a model at its initialization (THEORY §2)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np
import torch
from torch import nn

from implicitbias._errors import SolverError
from implicitbias._results import ResultRecord, match_input
from implicitbias._validation import (
    as_class_labels,
    as_float_array,
    as_pm1_labels,
    check_choice,
    describe,
    fail,
    fail_type,
)
from implicitbias.kernel_regime._kron_ntk import kron_ntk
from implicitbias.kernel_regime.multiclass_svm import MEMORY_BUDGET
from implicitbias.kernel_regime.ntk import NTKMethod, empirical_ntk
from implicitbias.models import check_input, prepare_input

__all__ = ["NTKPredictor", "ntk_predictor"]

#: The problems :func:`ntk_predictor` solves (its ``task`` argument).
NTKTask = Literal["classification", "regression", "multiclass"]
_TASKS: tuple[str, ...] = get_args(NTKTask)
#: How :func:`ntk_predictor` treats the multi-output NTK (its ``structure`` argument).
NTKStructure = Literal["auto", "kron", "full"]
_STRUCTURES: tuple[str, ...] = get_args(NTKStructure)


@dataclass(frozen=True)
class NTKPredictor(ResultRecord):
    r"""The kernel-regime predictor x ↦ ⟨φ(x), h*⟩ with φ(x) = ∇_θ f(θ̄; x) (THEORY §2).

    ``h*`` is the minimum-norm solution of (K1) (binary classification), of its multiclass
    version, or of (K2) (regression), written through the training features:
    ``h* = Σ_i coef_i φ(x_i)`` (multiclass: ``Σ_{i,a} coef_{i,a} φ_a(x_i)``).

    Attributes
    ----------
    task : {"classification", "regression", "multiclass"}
        The problem that was solved.
    coef : numpy.ndarray
        Expansion coefficients of ``h*`` in the training features, shape ``(n,)``; for
        multiclass shape ``(n, C)``. Classification: ``coef_i = a_i y_i`` from the SVM dual.
    norm : float
        ``‖h*‖ = sqrt(coefᵀ K coef)``. For (K1) at the optimum, ``‖h*‖ = 1/γ_ntk``.
    margin : float or None
        ``γ_ntk``, the margin of the *unit-norm* solution ``h*/‖h*‖`` on the training set:
        ``min_i y_i ⟨φ(x_i), h*⟩ / ‖h*‖`` (multiclass: the smallest score gap to another class).
        ``None`` for regression.
    kernel : torch.Tensor
        The NTK on the training inputs, ``(n, n)`` (multiclass: the full ``(n·C, n·C)`` kernel,
        or, with ``structure="kron"``, the per-class ``(n, n)`` kernel ``K`` of ``K ⊗ I_C``).
    solution : object
        The solver's own result record (``kernel_svm``, ``multiclass_kernel_svm`` or
        ``kernel_regression``).
    X_train : torch.Tensor
        The training inputs (kept to form the cross kernel K(X_new, X_train)).
    model : torch.nn.Module
        A frozen copy of the model at the parameters where the NTK was taken.
    method : str
        The ``empirical_ntk`` route used for new kernels.
    structure : {"full", "kron"}
        ``"kron"`` when the multi-output NTK was proven to be ``K ⊗ I_C`` and only ``K`` was
        computed (also for new points, where the proof is repeated; where it fails there, the
        full cross kernel is used); else ``"full"``.
    """

    task: NTKTask
    coef: np.ndarray
    norm: float
    margin: float | None
    kernel: torch.Tensor
    solution: Any
    X_train: torch.Tensor
    model: nn.Module = field(repr=False)
    method: NTKMethod = "auto"
    chunk_size: int | None = None
    structure: Literal["full", "kron"] = "full"

    @property
    def num_outputs(self) -> int:
        """``C`` for a multiclass predictor, else 1."""
        return 1 if self.coef.ndim == 1 else int(self.coef.shape[1])

    def cross_kernel(self, X_new: torch.Tensor) -> torch.Tensor:
        """``K(X_new, X_train)``: shape ``(m, n)``, or ``(m·C, n·C)`` for multiclass (``(m, n)``,
        the per-class kernel, for ``structure="kron"`` where ``K ⊗ I_C`` is proven on
        ``X_new`` too)."""
        func = "NTKPredictor.decision_function"
        X_new = prepare_input(self.model, X_new, func=func, arg="X_new")
        if X_new.shape[1:] != self.X_train.shape[1:]:
            raise fail(
                func,
                "X_new",
                f"inputs of shape (m, {', '.join(map(str, self.X_train.shape[1:]))}) like the "
                "training inputs",
                describe(X_new),
            )
        check_input(self.model, X_new, func=func, arg="X_new")  # e.g. index pairs in range
        if self.structure == "kron":
            K, _ = kron_ntk(self.model, X_new, self.X_train, self.num_outputs)
            if K is not None:
                return K
        return empirical_ntk(
            self.model, X_new, self.X_train, method=self.method, chunk_size=self.chunk_size
        )

    def decision_function(self, X_new: Any, *, normalized: bool = False) -> Any:
        r"""``⟨φ(x), h*⟩`` for each row x of ``X_new`` (computed in float64).

        Parameters
        ----------
        X_new : torch.Tensor
            Inputs, shape ``(m, ...)`` like the training inputs, on the model's device.
        normalized : bool, default False
            ``False``: the minimum-norm solution h* of (K1)/(K2), for which
            ``y_i ⟨φ(x_i), h*⟩ ≥ 1`` (classification) or ``= y_i`` (regression).
            ``True``: the unit-norm direction ``h*/‖h*‖`` (the paper's ``h*_ntk``; for
            classification ``f(θ(T⁻); x)/Z(α) → ⟨φ(x), h*_ntk⟩``).

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Shape ``(m,)``, or ``(m, C)`` scores for multiclass: a tensor on ``X_new``'s device
            (in its floating dtype; float64 for index inputs) when ``X_new`` is a tensor, a
            float64 array when it is an array.
        """
        if not isinstance(normalized, bool):
            raise fail_type("NTKPredictor.decision_function", "normalized", "a bool", normalized)
        return match_input(self._values(X_new, normalized), X_new)

    def _values(self, X_new: Any, normalized: bool = False) -> np.ndarray:
        Kx = self.cross_kernel(X_new).detach().to("cpu", torch.float64).numpy()
        if self.coef.ndim == 1 or Kx.shape[1] == self.coef.shape[0]:  # (m, n): K or K ⊗ I_C
            values = Kx @ self.coef
        else:
            C = self.coef.shape[1]
            values = (Kx @ self.coef.reshape(-1)).reshape(-1, C)
        return values / self.norm if normalized else values

    def predict(self, X_new: Any) -> Any:
        """Signs in {−1, 0, +1} (classification), class indices (multiclass) or values
        (regression); a tensor for a tensor ``X_new`` (class indices as int64), else an array.
        """
        values = self._values(X_new)
        if self.task == "classification":
            return match_input(np.sign(values), X_new)
        if self.task == "multiclass":
            return match_input(np.argmax(values, axis=1), X_new, dtype=torch.int64)
        return match_input(values, X_new)


def _checked_norm(squared: float | np.floating | np.ndarray) -> float:
    """‖h*‖ from ‖h*‖²; a zero or non-finite norm means the solver returned no classifier."""
    norm = float(np.sqrt(max(float(squared), 0.0)))
    if not np.isfinite(norm) or norm == 0.0:
        raise SolverError(f"ntk_predictor: the kernel solution has norm {norm}; nothing to predict")
    return norm


def _multiclass_coef(solution: Any, y: np.ndarray, n: int, C: int) -> np.ndarray:
    """Coefficients of h* in the features φ_a(x_i) from a multiclass SVM result."""
    coef = getattr(solution, "coef", None)
    if coef is not None:
        return np.asarray(coef, dtype=np.float64).reshape(n, C)
    mu = np.asarray(solution.svm_dual, dtype=np.float64).reshape(n, C)
    # h = Σ_{i, j ≠ y_i} μ_ij (φ_{y_i}(x_i) − φ_j(x_i))
    mu = mu.copy()
    mu[np.arange(n), y] = 0.0
    out = -mu
    out[np.arange(n), y] = mu.sum(axis=1)
    return out


def _solver_for(task: NTKTask) -> Callable[..., Any]:
    """The kernel solver of a task: ``solver(K, y, **solver_options)``."""
    if task == "classification":
        from implicitbias.kernel_regime.kernel_svm import kernel_svm

        return kernel_svm
    if task == "regression":
        from implicitbias.kernel_regime.kernel_regression import kernel_regression

        return kernel_regression
    import implicitbias.kernel_regime as kr

    solver = getattr(kr, "multiclass_kernel_svm", None)
    if solver is None:  # pragma: no cover - depends on the solver module
        from implicitbias.kernel_regime.multiclass_svm import multiclass_kernel_svm

        solver = multiclass_kernel_svm
    return cast("Callable[..., Any]", solver)


def _check_solver_options(options: dict[str, Any], solver: Callable[..., Any], func: str) -> None:
    """Every key of ``solver_options`` must be a keyword argument of the solver (other than the
    kernel and the labels, which the predictor passes itself)."""
    params = list(inspect.signature(solver).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    allowed = [p.name for p in params[2:] if p.kind in keyword]  # params[:2] are K and y
    unknown = [k for k in options if k not in allowed]
    if unknown:
        name = getattr(solver, "__name__", "the kernel solver")
        raise fail(
            func,
            "solver_options",
            f"a dict of keyword arguments of {name} (one of {allowed})",
            f"unknown key{'s' if len(unknown) > 1 else ''} {unknown}",
        )


def ntk_predictor(
    model: nn.Module,
    X: torch.Tensor,
    y: Any,
    *,
    task: NTKTask = "classification",
    method: NTKMethod = "auto",
    chunk_size: int | None = None,
    solver_options: dict[str, Any] | None = None,
    structure: NTKStructure = "auto",
) -> NTKPredictor:
    r"""The early-phase predictor: the NTK max-margin or min-norm interpolating solution.

    With NTK features φ(x) = ∇_θ f(θ̄; x) at the model's current parameters θ̄ (its
    initialization), kernel K(x, x') = ⟨φ(x), φ(x')⟩, this solves

    .. math::

        \text{(K1)}\quad \min_h \tfrac12 \lVert h \rVert^2
            \ \text{s.t.}\ y_i \langle \varphi(x_i), h \rangle \ge 1,
        \qquad
        \text{(K2)}\quad \min_h \tfrac12 \lVert h \rVert^2
            \ \text{s.t.}\ \langle \varphi(x_i), h \rangle = y_i,

    for ``task="classification"`` (a hard-margin kernel SVM without bias) and
    ``task="regression"`` (ridgeless kernel regression, h* = Σ_i (K⁻¹y)_i φ(x_i)); for
    ``task="multiclass"`` (a ``C``-output model, integer labels) the multiclass SVM
    ``⟨φ_{y_i}(x_i) − φ_j(x_i), h⟩ ≥ 1`` for all j ≠ y_i on the full multi-output kernel.
    Early in training, sign f(θ(t); x) = sign ⟨φ(x), h*⟩ (classification) and
    f(θ(T⁻); x) → ⟨φ(x), h*⟩ (regression) (Lyu et al. 2024, Theorems 3.2 and 4.1).

    ==============  =============================================================
    symbol          meaning / argument
    ==============  =============================================================
    θ̄               the model's current parameters (call this at initialization)
    x_i, y_i        rows of ``X`` and entries of ``y``
    K               ``empirical_ntk(model, X)`` (``method``, ``chunk_size``)
    h*              the min-norm solution; ``h*/‖h*‖`` the unit-norm one
    γ_ntk           margin of ``h*/‖h*‖``: ``min_i y_i⟨φ(x_i), h*⟩/‖h*‖ = 1/‖h*‖``
    ==============  =============================================================

    Parameters
    ----------
    model : torch.nn.Module
        The model at its initialization (single output; ``C`` outputs for multiclass). A
        frozen copy is kept, so later training of ``model`` does not change the predictor.
    X : torch.Tensor
        Training inputs, shape ``(n, ...)``.
    y : array-like
        Labels in {−1, +1} (classification), real targets (regression), or integer classes
        in {0, …, C−1} (multiclass); shape ``(n,)``.
    task : {"classification", "regression", "multiclass"}, default "classification"
    method, chunk_size :
        Passed to :func:`empirical_ntk`.
    solver_options : dict, optional
        Keyword arguments for the kernel solver (:func:`kernel_svm`,
        :func:`kernel_regression` or :func:`multiclass_kernel_svm`, by ``task``); an unknown
        key raises ``ValueError`` naming it. For multiclass, ``memory_budget`` also bounds the
        full multi-output kernel (about 24 bytes per entry with its copies).
    structure : {"auto", "kron", "full"}, default "auto"
        Multiclass only. The multi-output NTK is exactly ``K ⊗ I_C`` (the same ``n x n``
        kernel in every class block, nothing across classes) when the forward pass ends with
        a linear layer and every other trainable parameter gets zero gradient: at a
        last-layer-zero initialization (of a :class:`HomogeneousMLP`, an ``nn.Sequential``
        of linear layers and ReLUs, biases included, or a :class:`Symmetrized` pair of them),
        or when only the last layer trains. ``"auto"`` proves that structure on ``X`` (the
        layer chain of the structured NTK route, the last layer's weight exactly zero) and
        then computes only ``K`` (``n^2`` numbers, not ``(nC)^2``) and solves
        :func:`multiclass_kernel_svm` with ``structure="kron"``; otherwise, and with
        ``"full"``, it computes the full kernel. ``"kron"`` raises where the structure is
        not proven, saying why.

    Returns
    -------
    NTKPredictor
        Frozen record with ``decision_function``, ``predict``, ``margin``, ``norm``,
        ``coef``, ``kernel`` and the solver result ``solution``.

    Raises
    ------
    NotSeparableError
        From the SVM when the NTK features do not separate the data.
    ValueError
        On labels that do not match the task or the number of examples.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(2, dtype=torch.float64)  # K(x, x') = 8 <x, x'>
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    >>> pred = ib.ntk_predictor(net, X, [1, 1, -1])
    >>> round(pred.margin, 6)  # √8 · (ℓ2 max-margin 1/√2)
    2.0
    >>> pred.predict(torch.tensor([[2.0, 1.0]], dtype=torch.float64))  # a tensor in, a tensor out
    tensor([1.], dtype=torch.float64)

    References
    ----------
    Lyu, Jin, Li, Du, Lee & Hu, Dichotomy of Early and Late Phase Implicit Biases Can Provably
    Induce Grokking, ICLR 2024, arXiv:2311.18817, Section 2.
    Jacot, Gabriel & Hongler, Neural Tangent Kernel, NeurIPS 2018, arXiv:1806.07572.
    """
    func = "ntk_predictor"
    check_choice(task, func, "task", _TASKS)
    check_choice(structure, func, "structure", _STRUCTURES)
    if structure == "kron" and task != "multiclass":
        raise fail(
            func,
            "structure",
            f"'auto' or 'full' for task={task!r}",
            "'kron'",
            "K ⊗ I_C is a structure of the multi-output NTK of task='multiclass'.",
        )
    if not isinstance(model, nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    if not isinstance(X, torch.Tensor):
        raise fail_type(func, "X", "a torch.Tensor of inputs", X)
    if solver_options is not None and not isinstance(solver_options, dict):
        raise fail_type(func, "solver_options", "a dict of keyword arguments", solver_options)
    options = dict(solver_options or {})
    solver = _solver_for(task)
    _check_solver_options(options, solver, func)
    n = int(X.shape[0]) if X.ndim > 0 else 0
    if task == "classification":
        labels = as_pm1_labels(y, func, "y", n=n)
    elif task == "regression":
        labels = as_float_array(y, func, "y", ndim=1)
        if labels.shape[0] != n:
            raise fail(
                func, "y", f"of length {n} (one target per example)", f"length {labels.shape[0]}"
            )
    else:
        labels = as_class_labels(y, func, "y", n=n)
    with torch.no_grad():
        snapshot = copy.deepcopy(model)
    X = prepare_input(snapshot, X, func=func)
    check_input(snapshot, X, func=func, arg="X")  # the model's own check (index pairs in range)
    kind: Literal["full", "kron"] = "full"
    if task == "multiclass":
        K, kind = _multiclass_kernel(snapshot, X, structure, options, method, chunk_size, func)
        C = K.shape[0] // n if kind == "full" else _outputs(snapshot, X) or 1
    else:
        K = empirical_ntk(snapshot, X, method=method, chunk_size=chunk_size)
        C = K.shape[0] // n
    Kn = K.detach().to("cpu", torch.float64).numpy()
    if task in ("classification", "regression") and C != 1:
        raise fail(
            func,
            "model",
            f"a single-output model for task={task!r}",
            f"a model with {C} outputs",
            "Use task='multiclass' with integer labels.",
        )
    margin: float | None
    if task == "classification":
        solution = solver(Kn, labels, **options)
        coef = np.asarray(solution.coef, dtype=np.float64).reshape(n)
        scores = Kn @ coef
        norm = _checked_norm(coef @ scores)
        margin = float(np.min(labels * scores)) / norm
    elif task == "regression":
        solution = solver(Kn, labels, **options)
        coef = np.asarray(solution.coef, dtype=np.float64).reshape(n)
        norm = float(np.sqrt(max(float(coef @ (Kn @ coef)), 0.0)))
        margin = None
    else:
        if C < 2:
            raise fail(
                func, "model", "a model with C >= 2 outputs for task='multiclass'", "1 output"
            )
        if labels.max() >= C:
            raise fail(
                func, "y", f"class labels in {{0, ..., {C - 1}}}", f"max label {labels.max()}"
            )
        if options.setdefault("n_classes", C) != C:
            raise fail(
                func,
                "solver_options",
                f"n_classes = {C} (the model's number of outputs), or no 'n_classes' key",
                f"n_classes = {options['n_classes']!r}",
            )
        solution = solver(Kn, labels, structure=kind, **options)
        coef = _multiclass_coef(solution, labels, n, C)
        scores = Kn @ coef if kind == "kron" else (Kn @ coef.reshape(-1)).reshape(n, C)
        norm = _checked_norm(coef.reshape(-1) @ scores.reshape(-1))
        true = scores[np.arange(n), labels]
        others = scores.copy()
        others[np.arange(n), labels] = -np.inf
        margin = float(np.min(true - others.max(axis=1))) / norm
    return NTKPredictor(
        task=task,
        coef=coef,
        norm=norm,
        margin=margin,
        kernel=K,
        solution=solution,
        X_train=X,
        model=snapshot,
        method=method,
        chunk_size=chunk_size,
        structure=kind,
    )


def _outputs(model: nn.Module, X: torch.Tensor) -> int | None:
    """The number of outputs C of ``model`` (one forward pass on a row), or ``None`` if that
    pass fails (:func:`empirical_ntk` then reports the problem)."""
    try:
        with torch.no_grad():
            out = model(X[:1])
    except Exception:  # noqa: BLE001 - empirical_ntk raises the user-facing error
        return None
    if not isinstance(out, torch.Tensor):
        return None
    return 1 if out.ndim <= 1 else int(out[0].numel())


def _multiclass_kernel(
    model: nn.Module,
    X: torch.Tensor,
    structure: NTKStructure,
    options: dict[str, Any],
    method: NTKMethod,
    chunk_size: int | None,
    func: str,
) -> tuple[torch.Tensor, Literal["full", "kron"]]:
    """The NTK for ``task="multiclass"``: the per-class ``K`` when ``K ⊗ I_C`` is proven (and
    ``structure`` allows it), else the full multi-output kernel (within the memory budget)."""
    if "structure" in options:
        raise fail(
            func,
            "solver_options",
            "a dict without a 'structure' key",
            "structure=" + repr(options["structure"]),
            "ntk_predictor chooses it from the model; use its own structure argument.",
        )
    C = _outputs(model, X)
    why = "structure='full' was asked for" if structure == "full" else "its forward pass failed"
    if C is not None and C >= 2 and structure != "full":
        K, why = kron_ntk(model, X, None, C)
        if K is not None:
            return K, "kron"
    if structure == "kron":
        raise fail(
            func,
            "structure",
            "'auto' or 'full' for this model: structure='kron' needs a multi-output NTK proven "
            "to be K ⊗ I_C",
            "'kron'",
            f"It is not proven because {why}.",
        )
    n = X.shape[0]
    nC = n * (C or 1)
    budget = options.get("memory_budget", MEMORY_BUDGET)
    itemsize = torch.empty((), dtype=X.dtype).element_size() if X.is_floating_point() else 8
    need = (itemsize + 16) * nC * nC  # the kernel, its float64 copy and the solver's copy
    if isinstance(budget, int) and need > budget:
        raise fail(
            func,
            "model",
            f"a model whose full ({nC}, {nC}) multi-output NTK fits the memory budget of "
            f"{budget} bytes (solver_options['memory_budget'])",
            f"one that needs {need} bytes",
            "Its NTK is K ⊗ I_C (and only the n x n K is computed) when every trainable "
            f"parameter other than the last layer's gets zero gradient; here: {why}.",
        )
    return empirical_ntk(model, X, method=method, chunk_size=chunk_size), "full"
