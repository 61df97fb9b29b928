"""The model capability protocol (models/capabilities.py): what a model declares is what the
solvers use, a new model is added in one file, and a name that merely collides is ignored."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import implicitbias as ib
from implicitbias.models import capabilities as cap

DT = torch.float64
LOGGER = "implicitbias.kernel_regime.ntk"
CLOSED = "closed-form route for"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _agree(K: torch.Tensor, reference: torch.Tensor) -> None:
    scale = float(reference.abs().max())
    assert scale > 0
    torch.testing.assert_close(K, reference, rtol=0, atol=1e-10 * scale)


def _ntk_log(model: nn.Module, X: torch.Tensor, caplog, **kw) -> tuple[torch.Tensor, str]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        K = ib.empirical_ntk(model, X, **kw)
    return K, caplog.text


# ------------------------------------------------------------------ a model added in one file
class Hadamard(nn.Module):
    """f(a, b; x) = ⟨a ⊙ b, x⟩, 2-homogeneous; ∇_a f = b ⊙ x, ∇_b f = a ⊙ x, so
    K(x, x') = Σ_k (a_k² + b_k²) x_k x'_k (trainable factors only)."""

    degree = 2

    def __init__(self, d: int, seed: int = 0) -> None:
        super().__init__()
        self.d = d
        self.a = nn.Parameter(_randn(d, seed=seed))
        self.b = nn.Parameter(_randn(d, seed=seed + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.a * self.b)

    def input_spec(self) -> str:
        return f"a float tensor of {self.d} hadamard features, shape (n, {self.d})"

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        weight = torch.zeros_like(self.a.detach())
        if self.a.requires_grad:
            weight += self.b.detach() ** 2
        if self.b.requires_grad:
            weight += self.a.detach() ** 2
        return (X1 * weight) @ (X1 if X2 is None else X2).T

    def convex_surrogate(self, task: str) -> str | None:
        return "l1_max_margin" if task == "classification" else None


def _by_hand(net: Hadamard, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
    a, b = net.a.detach(), net.b.detach()
    G1 = torch.cat([X1 * b, X1 * a], dim=1)  # per-example gradients (∇_a f, ∇_b f)
    G2 = torch.cat([X2 * b, X2 * a], dim=1)
    return G1 @ G2.T


@pytest.mark.parametrize("wrap", ["plain", "homogeneous", "symmetrized"])
def test_user_model_closed_form_is_used_and_agrees_with_the_jacobian_route(wrap, caplog) -> None:
    net = Hadamard(5)
    X, Y = _randn(7, 5, seed=3), _randn(4, 5, seed=4)
    model: nn.Module = {
        "plain": lambda: net,
        "homogeneous": lambda: ib.Homogeneous(net, check=False, degree=2),
        "symmetrized": lambda: ib.symmetrize(net),
    }[wrap]()
    K, log = _ntk_log(model, X, caplog)
    copies = 2 if wrap == "symmetrized" else 1
    assert log.count(CLOSED) == copies and "Jacobian route" not in log
    _agree(K, ib.empirical_ntk(model, X, method="jacobian"))
    _agree(K, copies * _by_hand(net, X, X))
    _agree(ib.empirical_ntk(model, X, Y, method="closed_form"), copies * _by_hand(net, X, Y))


def test_user_model_declarations_answer_the_other_questions() -> None:
    net = Hadamard(3)
    assert ib.models.input_spec(net) == "a float tensor of 3 hadamard features, shape (n, 3)"
    assert ib.convex_surrogate(ib.Homogeneous(net, degree=2), "classification") == "l1_max_margin"
    assert ib.convex_surrogate(net, "regression") is None
    # its own words come back in the error of a misshapen input
    with pytest.raises(ib.InvalidArgumentError, match=r"'X1' argument of empirical_ntk.*hadamard"):
        ib.empirical_ntk(net, _randn(4, 5))


def test_a_frozen_factor_is_left_out_of_a_user_closed_form(caplog) -> None:
    net = Hadamard(4)
    net.b.requires_grad_(False)
    X = _randn(6, 4, seed=2)
    K, log = _ntk_log(net, X, caplog)
    assert CLOSED in log
    b = net.b.detach()
    _agree(K, (X * b**2) @ X.T)  # only ∇_a f = b ⊙ x remains
    _agree(K, ib.empirical_ntk(net, X, method="jacobian"))


class _Doubled(Hadamard):
    """A subclass that changes the arithmetic but inherits closed_form_ntk: f = 2⟨a ⊙ b, x⟩."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * super().forward(x)


class _Sym2(ib.Symmetrized):
    """A Symmetrized subclass whose forward scales the difference: its parts' kernels no longer
    sum to its own (K = 4 Σ)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * super().forward(x)


class _DiagonalTimesThree(ib.DiagonalNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * super().forward(x)


@pytest.mark.parametrize("cls", ["hadamard", "symmetrized", "diagonal"])
def test_subclass_that_changes_the_forward_does_not_inherit_the_kernel(cls, caplog) -> None:
    # A closed form (or a split into parts) speaks for its class's own forward: a subclass
    # must declare it again, or the kernel would be off by the subclass's factor.
    X = _randn(6, 4, seed=5)
    if cls == "hadamard":
        model: nn.Module = _Doubled(4)
        factor, base = 4.0, _by_hand(model, X, X)
    elif cls == "symmetrized":
        inner = Hadamard(4)
        model, factor, base = _Sym2(inner), 4.0, 2 * _by_hand(inner, X, X)
    else:
        model = _DiagonalTimesThree(4, dtype=DT)
        with torch.no_grad():
            model.u.copy_(_randn(4, seed=6))
        factor = 9.0
        base = (X * (4 * model.u.detach() ** 2 + 4.0)) @ X.T  # D² (u² + v²), v = 1
    assert cap.closed_form_ntk(model) is None and cap.ntk_parts(model) is None
    K, log = _ntk_log(model, X, caplog)
    assert CLOSED not in log
    _agree(K, factor * base)
    with pytest.raises(ib.InvalidArgumentError, match=r"'method' argument.*no closed form"):
        ib.empirical_ntk(model, X, method="closed_form")


# ------------------------------------------------------------- names that merely collide
class _Colliding(nn.Module):
    """A user's module whose attributes happen to carry the protocol's names."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.w = nn.Parameter(_randn(3, seed=7))
        if kind == "submodule":  # a callable nn.Module under each name
            self.closed_form_ntk = nn.Identity()
            self.input_spec = nn.Identity()
            self.ntk_parts = nn.Identity()
        elif kind == "attribute":  # plain values
            self.closed_form_ntk = 3.0
            self.input_spec = "not a spec"
            self.check_input = None
            self.ntk_parts = {"w": nn.Identity()}
        elif kind == "instance_function":  # functions set on the instance, not methods
            self.closed_form_ntk = lambda X1, X2=None: torch.zeros(X1.shape[0], X1.shape[0])
            self.input_spec = lambda: "an instance lambda"
            self.check_input = lambda X, func, arg="X": (_ for _ in ()).throw(RuntimeError)
        elif kind == "buffer":
            self.register_buffer("closed_form_ntk", torch.ones(3, dtype=DT))
            self.register_buffer("convex_surrogate", torch.ones(1, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w) ** 2


class _OtherSignatures(nn.Module):
    """Methods of the protocol's names with other meanings and signatures."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(_randn(3, seed=7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w) ** 2

    def closed_form_ntk(self) -> torch.Tensor:  # no inputs: a different question
        raise AssertionError("must not be called")

    def check_input(self, x: torch.Tensor) -> None:  # no func / arg keywords
        raise AssertionError("must not be called")

    def convex_surrogate(self) -> str:
        raise AssertionError("must not be called")

    def ntk_parts(self, which: int) -> dict:
        raise AssertionError("must not be called")

    @property
    def input_spec(self) -> str:  # a property, not a method
        return "a property"


def _reference(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    s = X @ model.w.detach()
    phi = 2 * s[:, None] * X  # ∇_w (x·w)² = 2 (x·w) x
    return phi @ phi.T


@pytest.mark.parametrize("kind", ["submodule", "attribute", "instance_function", "buffer"])
def test_attribute_of_a_protocol_name_is_ignored_safely(kind: str, caplog) -> None:
    model = _Colliding(kind)
    X = _randn(5, 3, seed=8)
    assert cap.closed_form_ntk(model) is None and cap.ntk_parts(model) is None
    assert cap.input_spec(model) is None
    assert cap.convex_surrogate(model, "classification") is None
    cap.check_input(model, X, func="empirical_ntk", arg="X1")  # nothing to call: no error
    K, log = _ntk_log(model, X, caplog)
    assert CLOSED not in log
    _agree(K, _reference(model, X))
    with pytest.raises(ib.InvalidArgumentError, match=r"'method' argument.*no closed form"):
        ib.empirical_ntk(model, X, method="closed_form")
    with pytest.raises(ib.InvalidArgumentError, match=r"'X1'.*inputs the model accepts"):
        ib.empirical_ntk(model, _randn(5, 4))


def test_methods_with_other_signatures_are_not_called(caplog) -> None:
    model = _OtherSignatures()
    X = _randn(5, 3, seed=9)
    assert cap.closed_form_ntk(model) is None and cap.ntk_parts(model) is None
    assert cap.input_spec(model) is None and cap.convex_surrogate(model, "regression") is None
    K, log = _ntk_log(model, X, caplog)
    assert CLOSED not in log
    _agree(K, _reference(model, X))
    with pytest.raises(ib.InvalidArgumentError, match=r"'X1'.*inputs the model accepts"):
        ib.empirical_ntk(model, _randn(5, 4))


class _WrongAnswers(Hadamard):
    def __init__(self, answer: str) -> None:
        super().__init__(3)
        self.answer = answer

    def input_spec(self) -> str:
        return 42  # type: ignore[return-value]

    def convex_surrogate(self, task: str) -> str | None:
        return ["l1_max_margin"]  # type: ignore[return-value]

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        K = super().closed_form_ntk(X1, X2)
        return {
            "transposed": K.T,
            "row": K[0],
            "float32": K.float(),
            "numpy": K.numpy(),
        }[self.answer]


@pytest.mark.parametrize("answer", ["transposed", "row", "float32", "numpy"])
def test_closed_form_of_the_wrong_shape_or_type_is_an_error_naming_model(answer: str) -> None:
    # a kernel that broadcasts into the output (a row, a transpose of a square) or is silently
    # cast would be a wrong kernel: the declared capability is refused, naming the model
    model = _WrongAnswers(answer)
    X, Y = _randn(5, 3, seed=1), _randn(2, 3, seed=2)
    err = ib.InvalidArgumentTypeError if answer == "numpy" else ib.InvalidArgumentError
    with pytest.raises(err, match=r"'model' argument of empirical_ntk.*_WrongAnswers\.closed_form"):
        ib.empirical_ntk(model, X, Y)
    # the other answers of the wrong type count as none
    assert cap.input_spec(model) is None and cap.convex_surrogate(model, "classification") is None


# ------------------------------------------------------------------------ the built-in models
def _builtins() -> dict[str, nn.Module]:
    diag = ib.DiagonalNet(4, depth=3, dtype=DT)
    quad = ib.QuadraticNet(4, 3, seed=0, dtype=DT)
    mf = ib.MatrixFactorization(4, dtype=DT)
    with torch.no_grad():
        diag.u.copy_(_randn(4, seed=1))
        diag.v.copy_(_randn(4, seed=2))
        quad.V.copy_(_randn(4, 3, seed=3))
        mf.U.copy_(_randn(4, 4, seed=4))
        mf.V.copy_(_randn(4, 4, seed=5))
    sym = ib.symmetrize(ib.DiagonalNet(4, dtype=DT))
    with torch.no_grad():
        sym.positive.u.copy_(_randn(4, seed=6))
    return {
        "diagonal": diag,
        "quadratic": quad,
        "quadratic_pairs": quad,
        "factorization": mf,
        "homogeneous(diagonal)": ib.Homogeneous(diag),
        "symmetrized(diagonal)": sym,
    }


def _inputs(name: str, n: int, seed: int) -> torch.Tensor:
    if name == "factorization":
        return torch.randint(0, 4, (n, 2), generator=torch.Generator().manual_seed(seed))
    if name == "quadratic_pairs":
        return _randn(n, 2, 4, seed=seed)
    return _randn(n, 4, seed=seed)


@pytest.mark.parametrize("name", list(_builtins()))
def test_builtin_closed_forms_agree_with_the_jacobian_route(name: str, caplog) -> None:
    model = _builtins()[name]
    X, Y = _inputs(name, 7, 10), _inputs(name, 3, 11)
    for X2 in (None, Y):
        K, log = _ntk_log(model, X, caplog, X2=X2)
        assert log.count(CLOSED) == (2 if name.startswith("symmetrized") else 1)
        _agree(K, ib.empirical_ntk(model, X, X2, method="jacobian"))
    kernel = cap.closed_form_ntk(model)
    if name.startswith("symmetrized"):
        assert kernel is None and list(cap.ntk_parts(model)) == ["positive", "negative"]
    else:  # the capability itself, called directly, is the same kernel
        assert kernel is not None and cap.ntk_parts(model) is None
        _agree(kernel(X, Y), ib.empirical_ntk(model, X, Y, method="jacobian"))


@pytest.mark.parametrize(
    ("model", "spec", "bad"),
    [
        (ib.DiagonalNet(4, dtype=DT), r"a float tensor of shape \(n, 4\)", (3, 5)),
        (ib.HomogeneousMLP(4, [3], dtype=DT), r"a float tensor of shape \(n, 4\)", (3, 5)),
        (ib.QuadraticNet(4, 2, dtype=DT), r"\(n, 4\) or \(n, 2, 4\)", (3, 5)),
        (ib.symmetrize(ib.DiagonalNet(6, dtype=DT)), r"a float tensor of shape \(n, 6\)", (2, 2)),
    ],
    ids=["diagonal", "mlp", "quadratic", "symmetrized"],
)
def test_builtin_input_spec_is_the_hint_of_a_misshapen_input(model, spec, bad) -> None:
    assert cap.input_spec(model).startswith("a float tensor")
    with pytest.raises(ib.InvalidArgumentError, match=rf"'X1' argument of empirical_ntk.*{spec}"):
        ib.empirical_ntk(model, _randn(*bad))


@pytest.mark.parametrize("wrap", ["plain", "symmetrized", "homogeneous(symmetrized)"])
@pytest.mark.parametrize("arg", ["X1", "X2"])
def test_matrix_factorization_index_pairs_are_checked_through_every_wrapper(wrap, arg) -> None:
    # a negative index would wrap around in the vectorized routes: refused, naming the argument
    mf = ib.MatrixFactorization(3, dtype=DT)
    model = {
        "plain": lambda: mf,
        "symmetrized": lambda: ib.symmetrize(mf),
        "homogeneous(symmetrized)": lambda: ib.Homogeneous(ib.symmetrize(mf), 2, check=False),
    }[wrap]()
    good = torch.tensor([[0, 1], [2, 2]])
    bad = torch.tensor([[0, 1], [-1, 2]])
    X1, X2 = (bad, good) if arg == "X1" else (good, bad)
    with pytest.raises(ib.InvalidArgumentError, match=rf"'{arg}' argument.*entries in \[-1, 2\]"):
        ib.empirical_ntk(model, X1, X2)
    if arg == "X1":  # float inputs (cast, never probed as indices): the model's own check
        with pytest.raises(ib.InvalidArgumentError, match=r"'X1'.*index pairs of shape \(n, 2\)"):
            ib.empirical_ntk(model, good.to(DT))


@pytest.mark.parametrize(
    ("model", "task", "expected"),
    [
        (ib.DiagonalNet(3), "classification", "l1_max_margin"),
        (ib.DiagonalNet(3), "regression", "l1_interpolation"),
        (ib.DiagonalNet(3, depth=3), "classification", None),
        (ib.Homogeneous(ib.DiagonalNet(3)), "classification", "l1_max_margin"),
        (ib.MatrixFactorization(3), "regression", "min_nuclear_norm"),
        (ib.MatrixFactorization(3), "classification", None),
        (ib.HomogeneousMLP(3, [2]), "classification", None),
        (ib.symmetrize(ib.DiagonalNet(3)), "classification", None),
    ],
    ids=["diag2-cls", "diag2-reg", "diag3", "homogeneous", "mf-reg", "mf-cls", "mlp", "sym"],
)
def test_builtin_convex_surrogates_follow_the_theory_table(model, task, expected) -> None:
    # THEORY §5: depth-2 diagonal nets ↔ ℓ1 problems, factorization regression ↔ nuclear norm;
    # a deeper diagonal net, an MLP or a difference of copies has no convex surrogate here
    assert ib.convex_surrogate(model, task) == expected


@pytest.mark.parametrize("where", ["fit", "predict"])
def test_ntk_predictor_names_its_own_argument_for_out_of_range_index_pairs(where: str) -> None:
    # the model's check runs at the predictor's boundary: the message names the predictor's
    # argument, not the empirical_ntk call inside it
    mf = ib.MatrixFactorization(3, alpha=0.5, dtype=DT)
    idx = torch.tensor([[0, 1], [1, 2], [0, 2]])
    bad = torch.tensor([[0, 1], [3, 0]])
    if where == "fit":
        with pytest.raises(ib.InvalidArgumentError, match=r"'X' argument of ntk_predictor.*\[0, 3\]"):
            ib.ntk_predictor(mf, bad, [1.0, -1.0], task="regression")
        return
    pred = ib.ntk_predictor(mf, idx, [1.0, -1.0, 0.5], task="regression")
    with pytest.raises(
        ib.InvalidArgumentError, match=r"'X_new' argument of NTKPredictor.decision_function"
    ):
        pred.predict(bad)
    # in range, the kernel is the closed form's: predictions interpolate the training targets
    torch.testing.assert_close(pred.predict(idx), torch.tensor([1.0, -1.0, 0.5], dtype=DT))


class _TwoOutputs(Hadamard):
    """Two outputs, (⟨a ⊙ b, x⟩, ⟨a ⊙ b, x⟩), with a closed form declared for a single one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return torch.stack([out, out], dim=1)

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        return super().closed_form_ntk(X1, X2)


@pytest.mark.parametrize("n2", [1, 3])
def test_single_output_closed_form_is_not_used_for_a_multi_output_model(n2: int, caplog) -> None:
    # (a (n1, n2) block would broadcast into the (n1·C, n2·C) kernel when n2 = 1)
    model = _TwoOutputs(3)
    X, Y = _randn(4, 3, seed=1), _randn(n2, 3, seed=2)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        K = ib.empirical_ntk(model, X, Y)
    assert CLOSED not in caplog.text and "2 outputs" in caplog.text
    assert K.shape == (8, 2 * n2)
    block = _by_hand(model, X, Y)  # every pair of outputs has the same gradient
    _agree(K, block.repeat_interleave(2, 0).repeat_interleave(2, 1))
    with pytest.raises(ib.InvalidArgumentError, match=r"'method'.*2 outputs"):
        ib.empirical_ntk(model, X, Y, method="closed_form")
