r"""The empirical neural tangent kernel K(x, x') = ⟨∇_θ f(θ; x), ∇_θ f(θ; x')⟩ (THEORY §2).

Three routes compute the same matrix, θ being the *trainable* parameters (``requires_grad``):

* ``"closed_form"`` for the models whose gradient is known by hand: those that declare a
  ``closed_form_ntk`` method (:class:`DiagonalNet`, :class:`MatrixFactorization`,
  :class:`QuadraticNet`; see :mod:`implicitbias.models.capabilities`);
* ``"structured"`` for networks of ``nn.Linear`` (and ``nn.Conv2d``) layers with pointwise
  piecewise-linear activations: per linear layer, K gets (A Aᵀ) ⊙ (Δ Δᵀ) from the layer
  inputs A and the back-propagated output gradients Δ = ∂f/∂z, so no per-example gradient of
  a linear layer is ever formed (a convolution's small per-example weight gradient is formed
  by one batched product of Δ with the unfolded input patches);
* ``"jacobian"``, for any module: per-example gradients by ``torch.func`` contracted block by
  block.

The first two are used only where the model's structure is proven on the inputs at hand
(``_chain.py``: the layer chain is read off the forward pass itself, its parameters must be
exactly the trainable ones, each used once, and each layer's arithmetic is checked on every
row); otherwise ``method="auto"`` takes the Jacobian route and says why in a DEBUG record of the
``"implicitbias.kernel_regime.ntk"`` logger, and an explicit ``method`` raises.

A :class:`Symmetrized` model g(θ₁; x) − g(θ₂; x) has disjoint parameter sets, so its kernel is
the sum of the kernels of its two copies (its ``ntk_parts``), each computed by its own best
route. The routes never test a model's class: they ask the model through the capability
protocol (:mod:`implicitbias.models.capabilities`).
"""

from __future__ import annotations

import time
from typing import Any, Literal, get_args

import torch
from torch import nn

from implicitbias._progress import Progress, check_progress
from implicitbias._validation import check_choice, check_int, describe, fail, fail_type
from implicitbias.kernel_regime._chain import (
    hook_problem,
    module_names,
    module_problem,
    verified_chain,
)
from implicitbias.kernel_regime._jacobian import jacobian_route
from implicitbias.kernel_regime._route import LOG, _Route, _Unsupported
from implicitbias.kernel_regime._structured import structured_route
from implicitbias.models.capabilities import check_input, closed_form_ntk, input_spec, ntk_parts
from implicitbias.models.homogeneous import Homogeneous

__all__ = ["empirical_ntk"]

_FUNC = "empirical_ntk"
#: The routes of :func:`empirical_ntk` (its ``method`` argument).
NTKMethod = Literal["auto", "closed_form", "structured", "jacobian"]
_METHODS: tuple[str, ...] = get_args(NTKMethod)
# Default memory budgets (bytes): per-example features (Jacobian rows, or layer inputs and
# output gradients) alive at a time, and the temporaries of one contraction block.
_FEATURE_BYTES = 2**30
_BLOCK_BYTES = 256 * 2**20


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def _prepare(h: Homogeneous, X1: Any, X2: Any) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Validate both inputs (the library's input rule, then the model's own ``check_input``);
    return them (in the model's dtype) and the number of outputs C."""
    X1 = h.prepare_input(X1, func=_FUNC, arg="X1")
    if X2 is not None:
        X2 = h.prepare_input(X2, func=_FUNC, arg="X2")
        if X2.shape[1:] != X1.shape[1:] or X2.dtype != X1.dtype:
            raise fail(
                _FUNC,
                "X2",
                f"inputs like X1: shape (n2, {', '.join(map(str, X1.shape[1:]))}) and dtype "
                f"{X1.dtype}",
                describe(X2),
            )
    model = h.model
    check_input(model, X1, func=_FUNC, arg="X1")
    if X2 is not None:
        check_input(model, X2, func=_FUNC, arg="X2")
    try:
        with torch.no_grad():
            out = model(X1[:1])
    except Exception as exc:  # the model rejects the input: say which argument
        expect = input_spec(model) or "inputs the model accepts"
        raise fail(_FUNC, "X1", expect, describe(X1), f"The model raised: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise fail_type(_FUNC, "model", "a module whose forward returns a tensor", out)
    C = 1 if out.ndim <= 1 else int(out[0].numel())
    return X1, X2, C


# ---------------------------------------------------------------------------------------------
# Block scheduling shared by the routes
# ---------------------------------------------------------------------------------------------
def _symmetrize_square(block: torch.Tensor, m: int) -> None:
    """Make the leading m × m square of a diagonal block exactly symmetric (rounding aside)."""
    square = block[:, :m]
    square.copy_(0.5 * (square + square.T))


def _cached(route: _Route, n1: int, n2: int, symmetric: bool, chunk_size: int | None) -> str:
    """How :func:`_blocked_kernel` holds features: ``""`` (row and column blocks, recomputed),
    ``"columns"`` (all column features, row blocks of X1 computed in turn) or ``"both"`` (the
    features of every input, computed before any contraction)."""
    per_row = max(1, route.bytes_per_row)
    if not (n2 * per_row <= _FEATURE_BYTES if chunk_size is None else chunk_size >= n2):
        return ""
    if symmetric or (n1 + n2) * per_row <= _FEATURE_BYTES:
        return "both"
    return "columns"


def _blocked_kernel(
    route: _Route,
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    C: int,
    full: bool,
    chunk_size: int | None,
    out: torch.Tensor,
    bar: Progress | None = None,
) -> None:
    """Add the route's kernel to ``out`` ((n1·C, n2·C) if full, else (n1, n2)), block by block.

    When the features of all inputs fit in the memory budget (or ``chunk_size`` covers them)
    they are computed once, and rows are contracted ``chunk_size`` at a time against all
    columns. Otherwise a row block of features is held while the column features are computed
    block by block (and recomputed for the next row block), so at most two blocks of features
    are alive. With ``X2 is None`` only the blocks on and above the diagonal are computed, and
    mirrored. ``bar`` counts the rows of X1 done.
    """
    symmetric = X2 is None
    Xc = X1 if X2 is None else X2
    n1, n2 = X1.shape[0], Xc.shape[0]
    c = C if full else 1
    per_row = max(1, route.bytes_per_row)
    cache = _cached(route, n1, n2, symmetric, chunk_size)
    if cache:
        if chunk_size is None:  # row blocks: bound the (rows × n2) contraction temporaries
            rows_pair = _BLOCK_BYTES // max(1, route.bytes_per_pair * n2)
            chunk_size = max(1, min(n1, 512, max(rows_pair, 16)))
        Fc = route.features(Xc)
        F1all = Fc if symmetric else None
        if cache == "both" and not symmetric:
            F1all = route.features(X1)
        for r in range(0, n1, chunk_size):
            re = min(n1, r + chunk_size)
            F1 = route.take(F1all, r, re) if F1all is not None else route.features(X1[r:re])
            if symmetric:
                dest = out[r * c : re * c, r * c :]
                route.contract(F1, route.take(Fc, r, n2), full, dest)
                _symmetrize_square(dest, (re - r) * c)
                # what was in ``out`` before is symmetric, so the lower part is a copy
                out[re * c :, r * c : re * c].copy_(dest[:, (re - r) * c :].T)
            else:
                route.contract(F1, Fc, full, out[r * c : re * c, :])
            if bar is not None:
                bar.set(re)
        return
    # Features do not fit: a large row block against small column blocks, recomputed per row
    # block (the column features are evaluated about n1 / row_chunk times in all).
    if chunk_size is None:
        row_chunk = max(1, min(n1, (3 * _FEATURE_BYTES) // (4 * per_row)))
        col_chunk = max(1, min(n2, _FEATURE_BYTES // (4 * per_row)))
    else:
        row_chunk = col_chunk = chunk_size
    for r in range(0, n1, row_chunk):
        re = min(n1, r + row_chunk)
        F1 = route.features(X1[r:re])
        start = 0
        if symmetric:
            dest = out[r * c : re * c, r * c : re * c]
            route.contract(F1, F1, full, dest)
            _symmetrize_square(dest, (re - r) * c)
            start = re
        for s in range(start, n2, col_chunk):
            se = min(n2, s + col_chunk)
            dest = out[r * c : re * c, s * c : se * c]
            route.contract(F1, route.features(Xc[s:se]), full, dest)
            if symmetric:
                out[s * c : se * c, r * c : re * c].copy_(dest.T)
        if bar is not None:
            bar.set(re)


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------
def _disjoint(parts: dict[str, nn.Module]) -> bool:
    """No parameter tensor is shared between two of the parts."""
    seen: set[int] = set()
    for part in parts.values():
        ids = {id(p) for p in part.parameters()}
        if ids & seen:
            return False
        seen |= ids
    return True


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _closed_form_problem(model: nn.Module, C: int) -> str | None:
    """Why a declared closed form may not be the model's kernel, or ``None``."""
    if C != 1:  # a closed form is the kernel of a single output
        return f"the model has {C} outputs (a closed form is declared for a single output)"
    problem = hook_problem(model, module_names(model))
    if problem is None:
        seen: dict[int, str] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            if id(p) in seen:
                return f"its parameters '{seen[id(p)]}' and '{name}' are one tensor (tied)"
            seen[id(p)] = name
    return problem


def _structured_kernel(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    C: int,
    full: bool,
    chunk_size: int | None,
    out: torch.Tensor,
    kind: str,
) -> None:
    """Add the structured kernel of ``model`` to ``out``, or raise _Unsupported with ``out``
    untouched: the chain is proven on every row before the first contraction."""
    start = time.perf_counter()
    chain = verified_chain(model, X1)  # structure, parameters, replay of the first row
    route = structured_route(chain, C, out.dtype)
    n2 = X1.shape[0] if X2 is None else X2.shape[0]
    upfront = _cached(route, X1.shape[0], n2, X2 is None, chunk_size) == "both"
    if not upfront:  # features come in blocks, after contractions: prove every row first
        for X in (X1,) if X2 is None else (X1, X2):
            chain.verify(X)
    # else the features of every row, computed (and proven) before any contraction, do it
    LOG.debug(
        "empirical_ntk: structured route for %s (%d weighted layers; structure proven in %.3g s%s)",
        kind,
        sum(op.kind in ("linear", "conv") for op in chain.ops),
        time.perf_counter() - start,
        "" if upfront else ", and by a pass over all rows",
    )
    try:
        _blocked_kernel(route, X1, X2, C, full, chunk_size, out)
    except _Unsupported as exc:
        if upfront:
            raise
        raise RuntimeError(  # a pass over the same rows came out differently
            f"empirical_ntk: the forward pass of the model changed between two passes over the "
            f"same inputs ({exc}); its kernel is undefined"
        ) from exc


def _accumulate(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    C: int,
    full: bool,
    method: NTKMethod,
    chunk_size: int | None,
    out: torch.Tensor,
    routes: list[str],
    label: str = "model",
    progress: bool | None = False,
) -> None:
    """Add the kernel of ``model`` (by ``method``) to ``out``; record the route(s) used."""
    if not _trainable(model):
        return
    kind = f"{label} ({type(model).__name__})"
    parts = ntk_parts(model)
    if parts is not None:
        problem = module_problem(model, label)  # the parts are checked on their own
        if problem is None and _disjoint(parts):
            for name, part in parts.items():
                _accumulate(
                    part, X1, X2, C, full, method, chunk_size, out, routes, f"{label}.{name}",
                    progress,
                )  # fmt: skip
            return
        if method in ("closed_form", "structured"):
            what = "two copies" if len(parts) == 2 else f"{len(parts)} parts"
            raise _Unsupported(
                problem or f"the {what} of the {type(model).__name__} model share parameters"
            )
    if method in ("auto", "closed_form"):
        closed = closed_form_ntk(model, func=_FUNC)
        problem = None if closed is None else _closed_form_problem(model, C)
        if closed is not None and problem is None:
            # single-output models (full == trace); rows in chunks bound the n1 × n2 temporaries
            Xb = X1 if X2 is None else X2
            rows = chunk_size or max(1, _BLOCK_BYTES // (8 * out.element_size() * Xb.shape[0]))
            for r in range(0, X1.shape[0], rows):
                out[r : r + rows] += closed(X1[r : r + rows], Xb)
            routes.append("closed_form")
            LOG.debug("empirical_ntk: closed-form route for %s", kind)
            return
        if method == "closed_form":
            raise _Unsupported(
                f"no closed form is known for a {type(model).__name__} (closed forms: "
                "DiagonalNet, MatrixFactorization, QuadraticNet and their Symmetrized versions)"
                if problem is None
                else f"the closed form of a {type(model).__name__} does not apply: {problem}"
            )
        if problem is not None:
            LOG.debug("empirical_ntk: closed form not used for %s: %s", kind, problem)
    if method in ("auto", "structured"):
        try:
            _structured_kernel(model, X1, X2, C, full, chunk_size, out, kind)
        except _Unsupported as exc:
            if method == "structured":
                raise
            LOG.debug(
                "empirical_ntk: falling back to the Jacobian route for %s: the structured "
                "route does not apply because %s",
                kind,
                exc,
            )
        else:
            routes.append("structured")
            return
    h = Homogeneous(model, degree=1, check=False)
    with Progress(X1.shape[0], desc=f"{_FUNC} (jacobian)", unit="row", progress=progress) as bar:
        _blocked_kernel(jacobian_route(h, C), X1, X2, C, full, chunk_size, out, bar)
    routes.append("jacobian")
    LOG.debug("empirical_ntk: Jacobian route for %s", kind)


def empirical_ntk(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    method: NTKMethod = "auto",
    trace: bool = False,
    progress: bool | None = None,
) -> torch.Tensor:
    r"""Empirical neural tangent kernel of a model at its current parameters.

    .. math::

        K_{ij} = \langle \nabla_\theta f(\theta; x^{(1)}_i),\,
                         \nabla_\theta f(\theta; x^{(2)}_j) \rangle,
        \qquad
        K_{(i,a),(j,b)} = \langle \nabla_\theta f_a(\theta; x^{(1)}_i),\,
                                  \nabla_\theta f_b(\theta; x^{(2)}_j) \rangle

    for a single-output and a ``C``-output model. For a network built of linear layers
    z_l = W_l a_{l-1} + b_l with pointwise activations, the ``"structured"`` route sums over
    layers

    .. math::

        K = \sum_l \big(\tilde A_l \tilde A_l'^{\top}\big) \odot \big(\Delta_l \Delta_l'^{\top}\big),
        \qquad \tilde A_l = [A_l,\ \mathbf 1],\quad \Delta_l = \partial f / \partial z_l,

    from the layer inputs A_l and the back-propagated output gradients Δ_l, both computed for
    all examples at once as matrices (one forward and one backward matrix pass), so that the
    per-example gradients (an n × p Jacobian) are never formed (Novak et al. 2022). Supported:
    models whose forward pass applies, one after another, ``nn.Linear`` (any biases),
    ``nn.Conv2d`` (``groups=1``, integer zero padding; its per-example weight gradients,
    ``C × out·in·kh·kw`` numbers per example, are formed from Δ and the unfolded patches),
    ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Identity``, ``nn.Flatten`` and
    :class:`HomogeneousMLP` modules (a plain ``nn.Sequential`` of them, nested or not, an
    activation object used several times included), and :class:`Symmetrized` /
    :func:`mirror_init` versions of those.

    The structured route is used only where the model's structure is proven on ``X1`` and
    ``X2`` (``kernel_regime/_chain.py``): the layer chain is read off the model's own forward
    pass (each supported module must receive the previous one's output tensor, unchanged, and
    the model must return the last one's), its parameters must be exactly the trainable
    parameters, each used once, no hook or parametrization may be registered, each layer's
    arithmetic passes a randomized (Freivalds) check on every row, and replaying the chain by
    hand reproduces ``model(x)`` on the first row to 100 units of rounding. The layer inputs
    it contracts are those of that forward pass, so the proof costs O(n · width), a few
    per cent of the kernel. The closed forms likewise need the class's own forward (no hook,
    parametrization or shared factor). Anything else (a layer applied twice, i.e. tied
    weights, a forward hook, ``weight_norm``, a functional activation, a residual sum or a
    ``.squeeze()`` in a custom ``forward``) takes the Jacobian route, with the reason in a
    DEBUG record of the ``"implicitbias.kernel_regime.ntk"`` logger.

    ==================  ==========================================================
    symbol              meaning / argument
    ==================  ==========================================================
    θ ∈ R^p             the trainable parameters of ``model`` (``requires_grad``)
    x⁽¹⁾_i, x⁽²⁾_j      rows of ``X1`` and ``X2`` (``X2 = X1`` when omitted)
    f_a, C              the a-th of the ``C`` outputs of the model
    A_l, Δ_l            input of layer l (n × in_l), ∂f/∂z_l (n × C × out_l)
    ==================  ==========================================================

    Parameters
    ----------
    model : torch.nn.Module or Homogeneous
        Any module. θ is its trainable parameters: those with ``requires_grad=False``
        (frozen layers) are held fixed, not part of θ, on every route.
    X1 : torch.Tensor
        Inputs, shape ``(n1, ...)``, on the model's device; floating inputs are cast to the
        model's dtype.
    X2 : torch.Tensor, optional
        Second set of inputs, shape ``(n2, ...)`` with the same trailing shape. Default: ``X1``
        (the symmetric case; only the upper block triangle is computed).
    chunk_size : int, optional
        Number of examples per row and column block. When the per-example intermediates of
        all inputs fit (``chunk_size >= n2``, or by default about 1 GiB), they are computed
        once and rows are contracted ``chunk_size`` at a time. Otherwise at most two blocks
        of per-example intermediates are alive: ``chunk_size × C × p`` numbers for
        ``"jacobian"`` (the per-example gradients), ``chunk_size × Σ_l (in_l + C·out_l)`` for
        ``"structured"`` (layer inputs and output gradients), and the column blocks are
        recomputed for each row block. Default: a row block of about 768 MiB and column blocks
        of about 256 MiB of intermediates; kernel-block temporaries stay under about 256 MiB.
    method : {"auto", "closed_form", "structured", "jacobian"}, default "auto"
        ``"auto"`` picks, separately for each copy of a :class:`Symmetrized` model, the closed
        form when one is known, else the structured route when the module's structure is
        proven (see above), else the generic Jacobian contraction. ``"closed_form"`` and
        ``"structured"`` raise where their route does not apply, saying why.
    trace : bool, default False
        For a ``C``-output model, return the ``(n1, n2)`` trace kernel Σ_a K_{(i,a),(j,a)}
        instead of the full kernel.
    progress : bool, optional
        Progress of the Jacobian route (rows of ``X1`` done; the other routes are fast):
        by default a tqdm bar when stderr is a terminal, else an ``INFO`` line of the
        ``"implicitbias.progress"`` logger every ~10 s; ``True`` a bar, ``False`` nothing.

    Returns
    -------
    torch.Tensor
        ``K`` on the model's device in its dtype: shape ``(n1, n2)`` for a single output (or
        ``trace=True``), else ``(n1·C, n2·C)`` with row ``i·C + a`` for example i, output a.

    Raises
    ------
    ValueError
        If ``X1`` or ``X2`` does not fit the model (trailing shape, device, NaN), or ``method``
        does not apply to the model (the message says why).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(3, alpha=1.0, dtype=torch.float64)
    >>> X = torch.eye(3, dtype=torch.float64)
    >>> ib.empirical_ntk(net, X)  # 8 α² ⟨x, x'⟩ at u = v = α·1, depth 2
    tensor([[8., 0., 0.],
            [0., 8., 0.],
            [0., 0., 8.]], dtype=torch.float64)
    >>> mlp = ib.HomogeneousMLP(4, [16, 16], seed=0, dtype=torch.float64)
    >>> Z = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> K1 = ib.empirical_ntk(mlp, Z, method="structured")
    >>> K2 = ib.empirical_ntk(mlp, Z, method="jacobian")
    >>> bool(torch.allclose(K1, K2, rtol=1e-12, atol=0))
    True

    References
    ----------
    Jacot, Gabriel & Hongler, Neural Tangent Kernel: Convergence and Generalization in Neural
    Networks, NeurIPS 2018, arXiv:1806.07572.
    Novak, Sohl-Dickstein & Schoenholz, Fast Finite Width Neural Tangent Kernel, ICML 2022,
    arXiv:2206.08720.
    Lyu et al., Dichotomy of Early and Late Phase Implicit Biases Can Provably Induce Grokking,
    ICLR 2024, arXiv:2311.18817 (Section 2: the kernel regime).
    """
    check_choice(method, _FUNC, "method", _METHODS)
    if not isinstance(model, nn.Module):
        raise fail_type(_FUNC, "model", "a torch.nn.Module", model)
    if not isinstance(trace, bool):
        raise fail_type(_FUNC, "trace", "a bool", trace)
    progress = check_progress(progress, _FUNC)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, _FUNC, "chunk_size", minimum=1)
    h = model if isinstance(model, Homogeneous) else Homogeneous(model, degree=1, check=False)
    if X2 is X1:
        X2 = None  # the symmetric case: half the work
    X1, X2, C = _prepare(h, X1, X2)
    full = C > 1 and not trace
    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    shape = (n1 * C, n2 * C) if full else (n1, n2)
    out = torch.zeros(shape, dtype=h.dtype, device=h.device)
    routes: list[str] = []
    try:
        _accumulate(h.model, X1, X2, C, full, method, chunk_size, out, routes, progress=progress)
    except _Unsupported as exc:
        raise fail(
            _FUNC,
            "method",
            f"a route that applies to this {type(h.model).__name__}",
            repr(method),
            f"It does not apply because {exc}. Use method='auto' or 'jacobian'.",
        ) from exc
    return out
