"""Result objects that read well: concise reprs (no array bodies, even at n = 10⁵), to_dict that
round-trips the fields, to_frame (pandas optional), and numpy-in/numpy-out, tensor-in/tensor-out
prediction methods."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias as ib
from implicitbias._results import ResultRecord, TableRecord, summarize
from implicitbias.experiments import RunResult
from implicitbias.experiments._common import RunOutput
from implicitbias.experiments.configs import DiagonalConfig

BIG = 100_000


# ------------------------------------------------------------------ one result of each type
def _svm() -> Any:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6))
    y = np.sign(X @ rng.standard_normal(6))
    return ib.kernel_svm(X @ X.T, y)


def _train() -> Any:
    torch.manual_seed(0)
    X = torch.randn(8, 5, dtype=torch.float64)
    y = torch.sign(X[:, 0])
    net = ib.DiagonalNet(5, alpha=2.0, dtype=torch.float64)
    return ib.train(net, X, y, weight_decay=0.01, lr=0.05, steps=30, num_evals=4, progress=False)


def _kkt() -> Any:
    res = _train()
    X = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.sign(res.model(X))
    return ib.kkt_residuals(res.model, X, y, weight_decay=0.01)


def _ntk() -> Any:
    X = torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return ib.ntk_predictor(ib.DiagonalNet(4, dtype=torch.float64), X, torch.sign(X[:, 0]))


def _run_result() -> RunResult:
    hist = ib.History(columns=["t", "train_acc"], rows=[{"t": 0.0, "train_acc": 0.5}])
    out = RunOutput(
        "sparse-linear",
        hist,
        {"checks": {}, "x": 1.0, "y": 2, "z": 3, "w": 4},
        {"l2 max-margin (kernel)": 0.66},
        "accuracy",
        4852.03,
        0.01,
        {"method": "flow"},
    )
    cfg = DiagonalConfig(task="sparse", d=BIG, n=256, n_test=10_000)
    paths = {k: Path("/tmp/run") / f"{k}.csv" for k in ("history_csv", "summary", "figure")}
    return RunResult("sparse-linear", "paper", cfg, out, Path("/tmp/run"), paths, 12.5)


def _rng_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sign(X @ rng.standard_normal(d))


MAKERS = {
    "KernelSVMResult": _svm,
    "MulticlassKernelSVMResult": lambda: ib.multiclass_kernel_svm(np.eye(3), np.array([0])),
    "KernelRegressionResult": lambda: ib.kernel_regression(np.eye(4) * 2.0, np.arange(4.0)),
    "MaxMarginResult": lambda: ib.l1_max_margin(*_rng_data(16, BIG)),  # d = 10⁵ features
    "InterpolationResult": lambda: ib.min_l2_interpolation(*_rng_data(5, 12)),
    "NuclearNormResult": lambda: ib.min_nuclear_norm_completion(2, [0, 0], [0, 1], [1.0, 1.0]),
    "GramNNLSResult": lambda: ib.nnls_gram(np.eye(3), np.array([1.0, -1.0, 2.0])),
    "KKTReport": _kkt,
    "TrainResult": _train,
    "NTKPredictor": _ntk,
    "RunResult": _run_result,
}


def _public_result_types() -> dict[str, type]:
    """Every public dataclass returned by the library (not the Loss or config declarations)."""
    found: dict[str, type] = {}
    for module, names in ((ib, ib.__all__), (ib.experiments, ib.experiments.__all__)):
        for name in names:
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and dataclasses.is_dataclass(obj)
                and name not in ("Loss", "Experiment", "ExperimentConfig")
            ):
                found[name] = obj
    return found


def test_every_public_result_type_is_covered() -> None:
    types = _public_result_types()
    assert set(types) == set(MAKERS), "add a maker for the new result type"
    assert all(issubclass(t, ResultRecord) for t in types.values())
    assert issubclass(ib.History, TableRecord)


@pytest.fixture(scope="module", params=sorted(MAKERS))
def record(request: pytest.FixtureRequest) -> Any:
    with np.errstate(all="ignore"):
        return MAKERS[request.param]()


def _inflated(r: Any) -> Any:
    """``r`` with every array and tensor field replaced by one of 10⁵ entries."""
    big: dict[str, Any] = {}
    for f in dataclasses.fields(r):
        v = getattr(r, f.name)
        if isinstance(v, np.ndarray):
            big[f.name] = np.arange(BIG, dtype=v.dtype if v.dtype != bool else np.int64)
        elif isinstance(v, torch.Tensor):
            big[f.name] = torch.arange(BIG, dtype=torch.float64).reshape(-1, 10)
    return dataclasses.replace(r, **big)


def _check_concise(text: str, name: str) -> None:
    lines = text.splitlines()
    assert lines[0].startswith(f"{name}(")
    assert len(lines) <= 15, text
    assert max(len(line) for line in lines) <= 100, text
    # no array body: numpy and torch print "[...]" bodies, summaries never contain brackets of
    # numbers or an ellipsis
    assert "..." not in text.replace("(...)", ""), text
    assert "[0" not in text and "[[" not in text and "99999" not in text, text


def test_repr_is_concise_even_for_n_1e5(record: Any) -> None:
    name = type(record).__name__
    _check_concise(repr(record), name)
    big = _inflated(record)
    text = repr(big)
    _check_concise(text, name)
    for f in dataclasses.fields(big):
        v = getattr(big, f.name)
        if f.repr and not f.name.startswith("_") and isinstance(v, np.ndarray):
            assert f"{f.name}=array(shape=({BIG},), dtype={v.dtype})" in text


def test_repr_shows_scalars(record: Any) -> None:
    text = repr(record)
    for f in dataclasses.fields(record):
        v = getattr(record, f.name)
        if f.repr and not f.name.startswith("_") and isinstance(v, (bool, int, str)):
            assert f"{f.name}={v!r}" in text


def test_to_dict_round_trips_the_fields(record: Any) -> None:
    d = record.to_dict()
    public = [f.name for f in dataclasses.fields(record) if not f.name.startswith("_")]
    assert list(d) == public
    for k, v in d.items():
        orig = getattr(record, k)
        if isinstance(orig, (np.ndarray, torch.Tensor)) or dataclasses.is_dataclass(orig):
            assert v is orig  # the record's own object, not a copy
        elif isinstance(orig, np.generic):
            assert type(v) in (bool, int, float, str) and v == orig.item()
        else:
            assert v is orig or v == orig or (isinstance(v, float) and math.isnan(v))
    again = dataclasses.replace(record, **d)
    for k in public:
        a, b = getattr(again, k), getattr(record, k)
        assert a is b or a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_to_dict_scalars_only_is_json(record: Any) -> None:
    d = record.to_dict(scalars_only=True)
    assert d, "every record has scalar fields"
    assert all(v is None or type(v) in (bool, int, float, str) for v in d.values())
    assert json.loads(json.dumps(d)).keys() == d.keys()
    assert set(d) <= set(record.to_dict())


def test_numpy_scalars_become_python_scalars() -> None:
    r = dataclasses.replace(_svm(), margin=np.float64(0.25), iterations=np.int64(3))
    d = r.to_dict(scalars_only=True)
    assert type(d["margin"]) is float and type(d["iterations"]) is int
    assert "margin=0.25," in repr(r) and "iterations=3" in repr(r)


def test_to_dict_bad_flag_names_it() -> None:
    with pytest.raises(TypeError, match="'scalars_only' argument of KernelSVMResult.to_dict"):
        _svm().to_dict(scalars_only="yes")  # type: ignore[arg-type]


def test_nested_values_are_summarized() -> None:
    tr = _train()
    text = repr(tr)
    assert "model=Homogeneous(DiagonalNet, 10 parameters)" in text
    assert "history=History(4 rows, " in text
    rr = repr(_run_result())
    assert "config=DiagonalConfig(...)" in rr and "output=RunOutput(...)" in rr
    assert "out_dir='/tmp/run'" in rr and "paths=dict(3 keys)" in rr
    out = repr(_run_result().output)
    assert "summary=dict(5 keys)" in out and "{'l2 max-margin (kernel)': 0.66}" in out


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (2.0, "2.0"),
        (1 / 3, "0.333333"),
        (1e-20, "1e-20"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (np.float32(0.5), "0.5"),
        (np.int64(7), "7"),
        (np.bool_(True), "True"),
        (None, "None"),
        ("x" * 100, repr("x" * 57 + "...")),
        (np.zeros((BIG, 3), np.float32), "array(shape=(100000, 3), dtype=float32)"),
        (torch.zeros(2, 3), "tensor(shape=(2, 3), dtype=torch.float32)"),
        ([1, 2.5], "[1, 2.5]"),
        (list(range(10)), "list(len=10)"),
        ((1,), "(1,)"),
        ({"a": np.float64(1.5)}, "{'a': 1.5}"),
        ({"a": np.zeros(3)}, "dict(1 keys)"),
    ],
)
def test_summarize(value: Any, want: str) -> None:
    assert summarize(value) == want


def test_a_class_own_repr_is_kept_and_subclasses_get_the_concise_one() -> None:
    @dataclasses.dataclass(frozen=True)
    class Own(ResultRecord):
        x: np.ndarray

        def __repr__(self) -> str:
            return "mine"

    @dataclasses.dataclass(frozen=True)
    class Sub(ib.KernelRegressionResult):
        extra: float = 1.0

    assert repr(Own(np.zeros(BIG))) == "mine"
    sub = Sub(**ib.kernel_regression(np.eye(3), np.ones(3)).to_dict())
    assert repr(sub).startswith("Sub(\n") and "extra=1.0" in repr(sub)
    # KKTReport keeps its own human-readable __str__
    assert str(_kkt()).startswith("KKTReport (classification")


# ------------------------------------------------------------------ History
def _history() -> ib.History:
    h = ib.History()
    for i in range(5):
        h.append({"t": float(i), "train_loss": 1.0 / (i + 1), "theta_norm": math.nan if i else 2.0})
    return h


def test_history_to_dict_and_repr() -> None:
    h = _history()
    d = h.to_dict()
    assert list(d) == h.columns
    for c in h.columns:
        np.testing.assert_array_equal(d[c], h[c])
        assert d[c].dtype == np.float64
    assert repr(h) == "History(5 rows, columns=['t', 'train_loss', 'theta_norm'])"


def test_history_to_frame_matches_its_columns() -> None:
    pd = pytest.importorskip("pandas")
    h = _history()
    df = h.to_frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == h.columns and len(df) == len(h)
    for c in h.columns:
        np.testing.assert_array_equal(df[c].to_numpy(), h[c])
    assert list(ib.History(columns=["a", "b"]).to_frame().columns) == ["a", "b"]
    row = _train().to_frame()
    assert len(row) == 1 and row["status"].iloc[0] == "completed"


def test_to_frame_without_pandas_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"History\.to_frame needs pandas.*pip install pandas"):
        _history().to_frame()
    with pytest.raises(ImportError, match=r"TrainResult\.to_frame needs pandas"):
        _train().to_frame()


# ------------------------------------------------------------------ numpy in, numpy out
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.int64])
def test_kernel_methods_answer_in_the_type_they_were_asked(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(3)
    X = rng.integers(-3, 4, size=(12, 5)).astype(np.float64)
    y = np.where(X @ np.arange(1.0, 6.0) >= 0, 1.0, -1.0)
    res = ib.kernel_svm(X @ X.T + np.eye(12), y)
    Kn = (X[:4] @ X.T).round()
    Kt = torch.tensor(Kn, dtype=dtype)
    want_dtype = dtype if dtype.is_floating_point else torch.float64
    for method in ("decision_function", "predict"):
        a, t = getattr(res, method)(Kn), getattr(res, method)(Kt)
        assert isinstance(a, np.ndarray) and isinstance(t, torch.Tensor)
        assert t.dtype == want_dtype and t.shape == a.shape
        torch.testing.assert_close(t, torch.tensor(a, dtype=want_dtype))
    reg = ib.kernel_regression(X[:5] @ X[:5].T + np.eye(5), np.arange(5.0))
    a, t = reg.predict(Kn[:, :5]), reg.predict(Kt[:, :5])
    assert isinstance(a, np.ndarray) and isinstance(t, torch.Tensor) and t.dtype == want_dtype
    torch.testing.assert_close(t, torch.tensor(a, dtype=want_dtype))


def test_tensor_prediction_keeps_bad_input_messages() -> None:
    res = _svm()
    with pytest.raises(
        ib.InvalidArgumentError, match="'K_new_train' argument of KernelSVMResult.predict"
    ):
        res.predict(torch.ones(2, 3))


def test_match_input_dtype_override_for_class_indices() -> None:
    from implicitbias._results import match_input

    idx = np.array([0, 2, 1])
    assert match_input(idx, np.ones(3)) is idx
    t = match_input(idx, torch.ones(3, dtype=torch.float32), dtype=torch.int64)
    assert t.dtype == torch.int64 and t.tolist() == [0, 2, 1]


def test_records_still_pickle_and_copy(record: Any) -> None:
    import copy
    import pickle

    again = pickle.loads(pickle.dumps(record))
    assert repr(again) == repr(record) and repr(copy.copy(record)) == repr(record)
