"""``data_source="reference"``: the exact samples of the paper's published code (THEORY §6).

Every generator is compared with two references:

* a literal transcription, in this file, of the paper's code's data drawing as THEORY §6 states
  it (global ``torch.manual_seed``, then the ``torch`` calls in order; written from the text, not
  from the library), and
* a few entries of those samples hard-coded below. They were computed once (torch 2.13, CPU) by
  running the transcription functions of this file with the seeds and sizes of each test and
  printing the first entries; the seeds are the paper's figure seeds where THEORY gives one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias as ib
from implicitbias import InvalidArgumentError, InvalidArgumentTypeError
from implicitbias.cli import main as cli_main
from implicitbias.experiments import _reference_data, data, get_config, run
from implicitbias.experiments import diagonal as diagonal_module
from implicitbias.experiments import modular_addition as modular_module

SPARSE_SEED = 24181325235  # the sparse-linear figure's data seed
COMPLETION_SEED = 35235125  # the matrix-completion figure's
MODULAR_SEED = 2435253235  # the modular-addition figure's
MARGIN_SEED = 2023  # THEORY gives no misgrokking seed


# ---------------------------------------------------------------------------------------------
# the paper's code, transcribed literally from THEORY §6 (global RNG, saved and restored)


def paper_sparse(seed, n, n_test, d, k):
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    x_train = (torch.randint(0, 2, (n, d)) * 2 - 1).float()
    x_test = (torch.randint(0, 2, (n_test, d)) * 2 - 1).float()
    w = torch.randint(0, 2, (k,)) * 2 - 1
    y_train = (x_train[:, :k] @ w.float() > 0).float() * 2 - 1
    y_test = (x_test[:, :k] @ w.float() > 0).float() * 2 - 1
    torch.set_rng_state(state)
    return x_train, y_train, x_test, y_test, w


def paper_misgrokking(seed, n, n_test, d, gamma):
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    w = torch.randn(d)
    w = w / w.norm()
    z_train = torch.randn(n, d)
    z_test = torch.randn(n_test, d)
    torch.set_rng_state(state)
    out = []
    for z in (z_train, z_test):
        y = (z @ w > 0).float() * 2 - 1
        out += [z + y[:, None] * (gamma / 2) * w, y]
    return (*out, w)


def paper_perm(seed, total):
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    perm = torch.randperm(total)
    torch.set_rng_state(state)
    return perm.numpy()


# ---------------------------------------------------------------------------------------------
# hard-coded first entries (see the module docstring for how they were computed)

# paper_sparse(SPARSE_SEED, n=5, n_test=7, d=12, k=3). The first 12 entries of x_train[0] are
# the first 12 draws after the seed, so they are also those of the figure's (256 × 10⁵) set.
SPARSE_X_TRAIN_0 = [1, 1, -1, -1, -1, 1, -1, -1, 1, -1, -1, -1]
SPARSE_X_TEST_0 = [1, 1, -1, 1, 1, -1, -1, -1, -1, -1, -1, 1]
SPARSE_W = [1, 1, -1]
SPARSE_Y_TRAIN = [1, 1, -1, 1, -1]
SPARSE_Y_TEST = [1, -1, 1, -1, -1, 1, 1]
# paper_misgrokking(MARGIN_SEED, n=4, n_test=3, d=20, gamma=25)
MARGIN_W_4 = [0.09601713716983795, -0.07804526388645172, 0.1059349849820137, 0.2016524225473404]
MARGIN_X_TRAIN_0_3 = [1.5959999561309814, -0.12199914455413818, 0.9037915468215942]
MARGIN_X_TEST_0_3 = [-4.186150074005127, 2.29404354095459, -1.2303872108459473]
MARGIN_Y_TRAIN = [1, 1, 1, 1]
MARGIN_Y_TEST = [-1, 1, -1]
# paper_perm(COMPLETION_SEED, 97²): the figure's first observed entries (i, j), of 470
COMPLETION_FIRST = [(39, 95), (59, 66), (23, 65), (54, 4), (86, 41), (79, 80)]
# paper_perm(MODULAR_SEED, 97²): the figure's first training pairs (a, b), of 3763
MODULAR_FIRST = [(82, 15), (83, 8), (47, 48), (66, 8), (62, 10), (1, 12)]


def _test_set(task, n_test, chunk_rows=512):
    parts = list(data.iter_test_chunks(task, n_test, chunk_rows=chunk_rows))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_sparse_reference_is_the_papers_sample() -> None:
    task = data.sparse_linear_task(
        12, k=3, seed=SPARSE_SEED, data_source="reference", n=5, n_test=7
    )
    X, y = task.sample(5)
    Xt, yt = _test_set(task, 7)
    x_ref, y_ref, xt_ref, yt_ref, w_ref = paper_sparse(SPARSE_SEED, 5, 7, 12, 3)
    # against the transcription, every entry
    np.testing.assert_array_equal(X, x_ref.numpy())
    np.testing.assert_array_equal(y, y_ref.numpy())
    np.testing.assert_array_equal(Xt, xt_ref.numpy())
    np.testing.assert_array_equal(yt, yt_ref.numpy())
    assert X.dtype == y.dtype == Xt.dtype == np.float32 and X.shape == (5, 12)
    # against the hard-coded values
    np.testing.assert_array_equal(X[0], SPARSE_X_TRAIN_0)
    np.testing.assert_array_equal(Xt[0], SPARSE_X_TEST_0)
    np.testing.assert_array_equal(y, SPARSE_Y_TRAIN)
    np.testing.assert_array_equal(yt, SPARSE_Y_TEST)
    # the support is the first k coordinates, with the drawn signs
    np.testing.assert_array_equal(task.w_star, SPARSE_W + [0.0] * 9)
    np.testing.assert_array_equal(task.support, [0, 1, 2])
    assert task.data_source == "reference"
    np.testing.assert_array_equal(task.sample(7, stream="test")[0], Xt)


def test_large_margin_reference_is_the_papers_sample() -> None:
    task = data.large_margin_task(
        20, gamma=25.0, seed=MARGIN_SEED, data_source="reference", n=4, n_test=3
    )
    X, y = task.sample(4)
    Xt, yt = _test_set(task, 3)
    x_ref, y_ref, xt_ref, yt_ref, w_ref = paper_misgrokking(MARGIN_SEED, 4, 3, 20, 25.0)
    np.testing.assert_array_equal(X, x_ref.numpy())
    np.testing.assert_array_equal(y, y_ref.numpy())
    np.testing.assert_array_equal(Xt, xt_ref.numpy())
    np.testing.assert_array_equal(yt, yt_ref.numpy())
    np.testing.assert_array_equal(task.w_star, w_ref.numpy().astype(np.float64))
    # hard-coded values: normal draws may differ in the last bit between CPU code paths
    np.testing.assert_allclose(task.w_star[:4], MARGIN_W_4, rtol=1e-6)
    np.testing.assert_allclose(X[0, :3], MARGIN_X_TRAIN_0_3, rtol=1e-6)
    np.testing.assert_allclose(Xt[0, :3], MARGIN_X_TEST_0_3, rtol=1e-6)
    np.testing.assert_array_equal(y, MARGIN_Y_TRAIN)
    np.testing.assert_array_equal(yt, MARGIN_Y_TEST)
    assert np.min(y * (X.astype(np.float64) @ task.w_star)) >= 12.5 - 1e-4


def test_matrix_completion_reference_is_the_papers_split() -> None:
    D = data.matrix_completion_data(
        97, fraction=0.05, seed=COMPLETION_SEED, data_source="reference"
    )
    perm = paper_perm(COMPLETION_SEED, 97 * 97)
    assert D.train_rows.size == 470 and D.test_rows.size == 97 * 97 - 470
    np.testing.assert_array_equal(D.train_rows, perm[:470] // 97)
    np.testing.assert_array_equal(D.train_cols, perm[:470] % 97)
    np.testing.assert_array_equal(D.test_rows, perm[470:] // 97)
    np.testing.assert_array_equal(D.test_cols, perm[470:] % 97)
    first = list(zip(D.train_rows[:6].tolist(), D.train_cols[:6].tolist()))
    assert first == COMPLETION_FIRST
    np.testing.assert_array_equal(D.train_values, D.X_star[D.train_rows, D.train_cols])
    assert D.train_rows.dtype == np.int64 and D.X_star.dtype == np.float64
    np.testing.assert_allclose(D.train_values[0], 39 * 95 / 97**2, rtol=1e-15)


def test_modular_addition_reference_is_the_papers_split() -> None:
    D = data.modular_addition_data(97, seed=MODULAR_SEED, data_source="reference")
    perm = paper_perm(MODULAR_SEED, 97 * 97)
    assert D.X_train.shape == (3763, 194) and D.X_test.shape == (97 * 97 - 3763, 194)
    np.testing.assert_array_equal(D.pairs_train, np.stack([perm[:3763] // 97, perm[:3763] % 97], 1))
    np.testing.assert_array_equal(D.pairs_test, np.stack([perm[3763:] // 97, perm[3763:] % 97], 1))
    assert [tuple(p) for p in D.pairs_train[:6].tolist()] == MODULAR_FIRST
    a, b = D.pairs_train[:, 0], D.pairs_train[:, 1]
    X = torch.nn.functional.one_hot(torch.as_tensor(a), 194) + torch.nn.functional.one_hot(
        torch.as_tensor(97 + b), 194
    )
    np.testing.assert_array_equal(D.X_train, X.numpy().astype(np.float32))
    np.testing.assert_array_equal(D.y_train, (a + b) % 97)


@pytest.mark.parametrize("kind", ["sparse", "large_margin"])
@pytest.mark.parametrize("d", [1, 3, 7, 16])
def test_chunked_test_set_equals_one_draw(
    kind: str, d: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny internal chunks: the test set is drawn in many pieces, and the last one may hold
    # fewer than 16 entries (torch's randn takes another path below 16 entries)
    monkeypatch.setattr(_reference_data, "_CHUNK_ENTRIES", 16)
    n, n_test = 3, 37
    if kind == "sparse":
        k = min(2, d)
        task = data.sparse_linear_task(d, k=k, seed=5, data_source="reference", n=n, n_test=n_test)
        ref = paper_sparse(5, n, n_test, d, k)
    else:
        task = data.large_margin_task(d, seed=5, data_source="reference", n=n, n_test=n_test)
        ref = paper_misgrokking(5, n, n_test, d, 25.0)
    assert len(_reference_data.draw_schedule(n_test, d)) > 1
    for rows in (4, 16, 37, 100):
        parts = list(data.iter_test_chunks(task, n_test, chunk_rows=rows))
        assert all(p[0].shape[0] <= rows for p in parts)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), ref[2].numpy())
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), ref[3].numpy())
    np.testing.assert_array_equal(task.sample(n)[0], ref[0].numpy())
    # a prefix of the test set is the first rows of the whole
    np.testing.assert_array_equal(task.sample(10, stream="test")[0], ref[2].numpy()[:10])


def test_sparse_reference_labels_a_tie_minus_one() -> None:
    # k = 2: <w*, x> = 0 on half the inputs; the paper's code labels those -1
    task = data.sparse_linear_task(6, k=2, seed=11, data_source="reference", n=40, n_test=5)
    X, y = task.sample(40)
    score = X[:, :2].astype(np.float64) @ task.w_star[:2]
    ties = score == 0
    assert 5 <= ties.sum() < 40
    np.testing.assert_array_equal(y[ties], -1.0)
    np.testing.assert_array_equal(y[~ties], np.sign(score[~ties]))
    np.testing.assert_array_equal(y, paper_sparse(11, 40, 5, 6, 2)[1].numpy())


def test_reference_mode_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(1234)
    torch.rand(3)  # a caller's generator in mid-stream
    before = torch.get_rng_state()
    expected_next = torch.rand(5)
    torch.set_rng_state(before)
    task = data.sparse_linear_task(30, seed=SPARSE_SEED, data_source="reference", n=8, n_test=9)
    task.sample(8)
    _test_set(task, 9, chunk_rows=4)
    margin = data.large_margin_task(30, seed=1, data_source="reference", n=8, n_test=9)
    _test_set(margin, 9)
    data.matrix_completion_data(9, seed=COMPLETION_SEED, data_source="reference")
    data.modular_addition_data(5, seed=MODULAR_SEED, data_source="reference")
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(5), expected_next)


def test_reference_mode_ignores_the_callers_torch_defaults() -> None:
    # a researcher's session with float64 by default and another default device
    expected = paper_misgrokking(MARGIN_SEED, 4, 3, 20, 25.0)[0].numpy()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.device("meta"):
            task = data.large_margin_task(
                20, seed=MARGIN_SEED, data_source="reference", n=4, n_test=3
            )
            X, _ = task.sample(4)
            D = data.modular_addition_data(97, seed=MODULAR_SEED, data_source="reference")
    finally:
        torch.set_default_dtype(old)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, expected)
    assert [tuple(p) for p in D.pairs_train[:6].tolist()] == MODULAR_FIRST


def test_reference_mode_is_unaffected_by_another_thread_drawing() -> None:
    # the draws use their own generator: a thread using torch's global one cannot interleave
    expected = paper_sparse(SPARSE_SEED, 40, 40, 500, 3)
    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            torch.rand(64)

    thread = threading.Thread(target=noise)
    thread.start()
    try:
        tasks = [
            data.sparse_linear_task(500, seed=SPARSE_SEED, data_source="reference", n=40, n_test=40)
            for _ in range(5)
        ]
        samples = [(t.sample(40), _test_set(t, 40, chunk_rows=7)) for t in tasks]
    finally:
        stop.set()
        thread.join()
    for (X, y), (Xt, yt) in samples:
        np.testing.assert_array_equal(X, expected[0].numpy())
        np.testing.assert_array_equal(y, expected[1].numpy())
        np.testing.assert_array_equal(Xt, expected[2].numpy())
        np.testing.assert_array_equal(yt, expected[3].numpy())


def test_reference_samples_are_fresh_arrays() -> None:
    task = data.sparse_linear_task(10, seed=3, data_source="reference", n=6, n_test=4)
    X, y = task.sample(6)
    X[:] = 0.0
    y[:] = 0.0
    X2, y2 = task.sample(6)
    np.testing.assert_array_equal(X2, paper_sparse(3, 6, 4, 10, 3)[0].numpy())
    assert set(np.unique(y2).tolist()) <= {-1.0, 1.0}


def test_default_source_is_the_library_generator() -> None:
    a = data.sparse_linear_task(40, seed=2)
    b = data.sparse_linear_task(40, seed=2, data_source="library", n=10, n_test=10)
    assert a.data_source == b.data_source == "library"
    np.testing.assert_array_equal(a.sample(10)[0], b.sample(10)[0])
    ref = data.sparse_linear_task(40, seed=2, data_source="reference", n=10, n_test=10)
    assert not np.array_equal(a.sample(10)[0], ref.sample(10)[0])


# ---------------------------------------------------------------------------------------------
# misuse


@pytest.mark.parametrize(
    "call",
    [
        lambda s: data.sparse_linear_task(10, data_source=s, n=2, n_test=2),
        lambda s: data.large_margin_task(10, data_source=s, n=2, n_test=2),
        lambda s: data.matrix_completion_data(10, data_source=s),
        lambda s: data.modular_addition_data(5, data_source=s),
    ],
)
def test_unknown_data_source_is_refused(call: Callable[[Any], object]) -> None:
    with pytest.raises(InvalidArgumentError, match=r"'data_source' argument .*'paper'"):
        call("paper")
    with pytest.raises(InvalidArgumentTypeError, match="'data_source'"):
        call(None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_test": 5}, "'n' argument of sparse_linear_task must be given"),
        ({"n": 5}, "'n_test' argument of sparse_linear_task must be given"),
        ({"n": 0, "n_test": 5}, "'n' argument"),
        ({"n": 5, "n_test": 5, "seed": 2**64}, "'seed' argument .*below 2\\*\\*64"),
    ],
)
def test_reference_linear_task_needs_its_sizes(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        data.sparse_linear_task(10, data_source="reference", **kwargs)


def test_reference_task_refuses_more_rows_than_it_drew() -> None:
    task = data.large_margin_task(10, seed=0, data_source="reference", n=5, n_test=6)
    with pytest.raises(
        InvalidArgumentError, match=r"'n' argument of LinearTask.sample .*at most 5"
    ):
        task.sample(6)
    with pytest.raises(InvalidArgumentError, match=r"'n' argument .*at most 6, the n_test"):
        task.sample(7, stream="test")
    with pytest.raises(InvalidArgumentError, match=r"'n_test' argument of iter_test_chunks"):
        next(data.iter_test_chunks(task, 7))


def test_reference_split_counts_like_the_papers_code() -> None:
    # int(), not round(): 0.51 · 49 = 24.99 -> 24 pairs (the library rounds to 25)
    assert data.modular_addition_data(7, train_fraction=0.51).X_train.shape[0] == 25
    D = data.modular_addition_data(7, train_fraction=0.51, data_source="reference")
    assert D.X_train.shape[0] == 24
    # a fraction that rounds to one entry but truncates to none
    data.matrix_completion_data(12, fraction=0.005)
    with pytest.raises(InvalidArgumentError, match="'fraction'"):
        data.matrix_completion_data(12, fraction=0.005, data_source="reference")
    with pytest.raises(InvalidArgumentError, match="'fraction'"):
        get_config("matrix-completion", "tiny", {"data_source": "reference", "fraction": 0.005})


@pytest.mark.parametrize(
    ("value", "error"), [("paper", InvalidArgumentError), (1, InvalidArgumentTypeError)]
)
def test_config_data_source_is_checked_at_the_boundary(
    value: object, error: type[Exception], tmp_path: Path
) -> None:
    assert get_config("sparse-linear", "tiny").data_source == "library"
    with pytest.raises(error, match="'data_source' argument of run"):
        run("sparse-linear", scale="tiny", out_dir=tmp_path / "x", overrides={"data_source": value})
    assert not (tmp_path / "x").exists()


def test_cli_set_data_source_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(
            ["reproduce", "sparse-linear", "--scale", "tiny", "--out", str(tmp_path / "r")]
            + ["--set", "data_source=paper"]
        )
    assert exc.value.code == 2
    assert "data_source" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# through the experiment runner


def test_sparse_linear_run_with_reference_data(tmp_path: Path) -> None:
    cfg = get_config("sparse-linear", "tiny", {"data_source": "reference"})
    res = run(
        "sparse-linear",
        scale="tiny",
        seed=SPARSE_SEED,
        out_dir=tmp_path,
        overrides={"data_source": "reference"},
        figure=False,
    )
    saved = json.loads(res.paths["config"].read_text())
    assert saved["settings"]["data_source"] == "reference" and saved["seed"] == SPARSE_SEED
    # the run trained on the paper's training set and scored on its test set
    x, y, xt, yt, _ = paper_sparse(SPARSE_SEED, cfg.n, cfg.n_test, cfg.d, cfg.k)
    l2 = ib.rich_regime.l2_max_margin(x.double().numpy(), y.double().numpy())
    assert res.summary["l2_max_margin"]["margin"] == pytest.approx(float(l2.margin), rel=1e-9)
    q = yt.double().numpy() * (xt.double().numpy() @ np.asarray(l2.w))
    acc = float(np.mean(q > 0) + 0.5 * np.mean(q == 0))
    assert res.summary["l2_max_margin"]["test_acc"] == pytest.approx(acc, abs=1.5 / cfg.n_test)
    assert res.summary["final"]["train_acc"] == 1.0
    assert res.summary["final"]["test_acc"] >= 0.95  # the l1 regime generalizes


def test_matrix_completion_run_with_reference_data(tmp_path: Path) -> None:
    cfg = get_config("matrix-completion", "tiny")
    res = run(
        "matrix-completion",
        scale="tiny",
        seed=7,
        out_dir=tmp_path,
        overrides={"data_source": "reference"},
        figure=False,
    )
    d = cfg.d
    n_train = int(cfg.fraction * d * d)
    assert res.summary["n_observed"] == n_train
    perm = paper_perm(7, d * d)
    i, j = perm[:n_train] // d, perm[:n_train] % d
    truth = np.outer(np.arange(d) / d, np.arange(d) / d)
    W = np.zeros((d, d))
    W[i, j] = truth[i, j]
    W[j, i] = truth[i, j]
    ti, tj = perm[n_train:] // d, perm[n_train:] % d
    zero_fill = float(np.mean((W[ti, tj] - truth[ti, tj]) ** 2))
    assert res.summary["zero_fill"]["test_mse"] == pytest.approx(zero_fill, rel=1e-12)


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("name", "module", "attr"),
    [
        ("misgrokking", diagonal_module, "large_margin_task"),
        ("sparse-linear", diagonal_module, "sparse_linear_task"),
        ("modular-addition", modular_module, "modular_addition_data"),
    ],
)
def test_runs_pass_the_data_source_to_their_generator(
    name: str, module: ModuleType, attr: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}
    real = getattr(module, attr)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen["result"] = real(*args, **kwargs)
        seen["kwargs"] = kwargs
        raise _Stop

    monkeypatch.setattr(module, attr, spy)
    with pytest.raises(_Stop):
        run(name, scale="tiny", seed=3, out_dir=tmp_path, overrides={"data_source": "reference"})
    assert seen["kwargs"]["data_source"] == "reference"
    out = seen["result"]
    if name == "modular-addition":
        cfg = get_config(name, "tiny")
        perm = paper_perm(3, cfg.p * cfg.p)[: int(cfg.train_fraction * cfg.p**2)]
        np.testing.assert_array_equal(out.pairs_train[:, 0], perm // cfg.p)
    else:
        assert out.data_source == "reference"
