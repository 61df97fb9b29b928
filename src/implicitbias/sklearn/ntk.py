r"""The early-phase (kernel-regime) predictor of a network at initialization, as a
scikit-learn classifier: the hard-margin SVM on the network's empirical NTK."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state  # type: ignore[import-untyped]
from torch import nn

from implicitbias._validation import fail, fail_type
from implicitbias.kernel_regime import ntk_predictor
from implicitbias.kernel_regime.ntk import NTKMethod
from implicitbias.models import HomogeneousMLP
from implicitbias.sklearn._base import BinaryHardMarginClassifier, fitting, naming

__all__ = ["NTKClassifier", "default_model_factory"]

_FACTORY = "a callable model_factory(n_features, seed) returning a torch.nn.Module"


def default_model_factory(n_features: int, seed: int) -> nn.Module:
    """A two-layer ReLU network without biases, width 64, float64 (He initialization).

    The model :class:`NTKClassifier` builds when ``model_factory`` is None:
    ``HomogeneousMLP(n_features, [64], seed=seed, dtype=torch.float64)``.

    Parameters
    ----------
    n_features : int
        Input dimension.
    seed : int
        Seed of the initialization.

    Returns
    -------
    HomogeneousMLP
    """
    return HomogeneousMLP(n_features, [64], seed=seed, dtype=torch.float64)


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


class NTKClassifier(BinaryHardMarginClassifier):
    r"""The early-phase predictor of a network: the hard-margin SVM on its empirical NTK.

    ``fit`` builds a model ``model_factory(n_features, seed)`` (its initialization θ̄), takes
    the empirical NTK :math:`K(x, x') = \langle \nabla_\theta f(\bar\theta; x),
    \nabla_\theta f(\bar\theta; x')\rangle` on the training inputs and solves (K1),

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad \text{s.t.} \quad
        y_i \langle \nabla_\theta f(\bar\theta; x_i), h \rangle \ge 1,

    through :func:`~implicitbias.ntk_predictor`. Early in training with a small step and a
    large initialization scale, ``sign f(θ(t); x)`` agrees with this predictor (Lyu et al.
    2024, Theorem 3.2); it is the baseline a trained network leaves in the rich phase. Hard
    margin, no bias: data the NTK features do not separate raise
    :class:`~implicitbias.NotSeparableError`. A positively homogeneous network without biases
    gives the same sign to ``x`` and ``c·x`` (``c > 0``), so such pairs with different labels
    are never separable.

    Parameters
    ----------
    model_factory : callable, optional
        ``model_factory(n_features, seed) -> torch.nn.Module`` with a single output. It is
        called with torch's CPU random generator seeded by ``seed`` (and restored after), so
        a factory that ignores ``seed`` is reproducible too. ``None``:
        :func:`default_model_factory`, a width-64 two-layer ReLU network in float64. Use a
        module-level function (not a lambda) if the estimator must be pickled.
    random_state : int, numpy.random.RandomState or None, default None
        The seed passed to the factory: an int is used as is; ``None`` draws one from
        numpy's global generator (a new network each ``fit``).
    method : {"auto", "closed_form", "structured", "jacobian"}, default "auto"
        Route of :func:`~implicitbias.empirical_ntk`.
    chunk_size : int, optional
        Passed to :func:`~implicitbias.empirical_ntk`.
    tol : float, default 1e-9
        Certificate tolerance of :func:`~implicitbias.kernel_svm`.

    Attributes
    ----------
    result_ : NTKPredictor
        The library's predictor (kernel, ``coef``, ``norm``, ``margin``, solver record
        ``result_.solution``, and a frozen copy of the model at θ̄ in ``result_.model``).
    model_ : torch.nn.Module
        The network at its initialization (``result_.model``).
    dual_coef_ : ndarray of shape (1, n_SV)
        ``a_i y_i`` on the support vectors: ``decision_function(x) =
        Σ_i dual_coef_[0, i] K(x, x_{support_[i]})``.
    support_ : ndarray of shape (n_SV,)
    n_support_ : ndarray of shape (2,)
    margin_ : float
        ``γ_ntk``, the margin of the unit-norm solution ``h/‖h‖``.
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` plays ``y = +1``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import NTKClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3))
    >>> y = np.where(X[:, 0] > 0, "a", "b")
    >>> clf = NTKClassifier(random_state=0).fit(X, y)
    >>> clf.score(X, y)
    1.0

    References
    ----------
    Lyu, Jin, Li, Du, Lee & Hu, *Dichotomy of Early and Late Phase Implicit Biases Can
    Provably Induce Grokking*, ICLR 2024, arXiv:2311.18817. Jacot, Gabriel & Hongler, *Neural
    Tangent Kernel*, NeurIPS 2018, arXiv:1806.07572.
    """

    def __init__(
        self,
        model_factory: Callable[[int, int], nn.Module] | None = None,
        *,
        random_state: Any = None,
        method: NTKMethod = "auto",
        chunk_size: int | None = None,
        tol: float = 1e-9,
    ) -> None:
        self.model_factory = model_factory
        self.random_state = random_state
        self.method = method
        self.chunk_size = chunk_size
        self.tol = tol

    def _seed(self, func: str) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if not 0 <= int(rs) < 2**63:
                raise fail(func, "random_state", "an int in [0, 2**63), a numpy RandomState "
                           "or None", repr(rs))  # fmt: skip
            return int(rs)
        with naming(func, "random_state", "an int >= 0, a numpy RandomState or None", rs):
            return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _build(self, n_features: int, seed: int, func: str) -> nn.Module:
        factory = default_model_factory if self.model_factory is None else self.model_factory
        if not callable(factory):
            raise fail_type(func, "model_factory", _FACTORY, factory)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory(n_features, seed)
        if not isinstance(model, nn.Module):
            raise fail_type(func, "model_factory", _FACTORY, model,
                            "The factory returned this instead of a module.")  # fmt: skip
        return model

    @fitting
    def fit(self, X: Any, y: Any) -> NTKClassifier:
        """Build the network, take its NTK on ``X`` and solve (K1).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Training inputs (cast to the model's dtype and device).
        y : array_like of shape (n_samples,)
            Labels of exactly two classes.

        Returns
        -------
        self

        Raises
        ------
        NotSeparableError
            If the NTK features do not separate the data (hard margin).
        InvalidArgumentError, InvalidArgumentTypeError
            For a bad argument or parameter, naming it.
        """
        func = "NTKClassifier.fit"
        Xv, ypm = self._start_fit(X, y, func)
        model = self._build(Xv.shape[1], self._seed(func), func)
        Xt = torch.from_numpy(np.array(Xv, dtype=np.float64)).to(_device(model))
        pred = ntk_predictor(
            model, Xt, ypm, task="classification", method=self.method,
            chunk_size=self.chunk_size, solver_options={"tol": self.tol},
        )  # fmt: skip
        self.result_ = pred
        self.model_ = pred.model
        self._set_support(pred.solution.support, pred.coef, ypm)
        self.margin_ = float(pred.margin) if pred.margin is not None else float("nan")
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        Xt = torch.from_numpy(np.array(X, dtype=np.float64)).to(_device(self.model_))
        values = self.result_.decision_function(Xt)  # a tensor, like Xt
        return np.asarray(values.detach().cpu().numpy(), dtype=np.float64)
