"""Kernel-regime multiclass at scale: the K ⊗ I_C working-set route against today's dense route.

Side by side in one run, on modular-addition data (``implicitbias.experiments.data``, pairs
(a, b) -> a + b mod p, 40-50% of the p² pairs for training) and the NTK of a two-layer ReLU
net with a first-layer bias at a last-layer-zero init (He init; its multi-output NTK is
exactly K ⊗ I_C with K the Gram matrix of the hidden features):

* ``multiclass_kernel_svm(K, y, structure="kron")`` (working sets, face systems solved per
  class through an n x n Schur complement; ``_multiclass_ws.py``) vs
  ``multiclass_kernel_svm(np.kron(K, I_C), y, solver="active-set")`` (today's route: the
  (nC)² kernel and the n(C-1) x n(C-1) pair matrix), where the dense route fits;
  agreement = relative difference of the objective (``||h||``), the largest difference of the
  norm-form duals relative to their maximum, whether the supports agree, and our certified
  KKT residual.
* ``ntk_predictor(task="multiclass")`` (structure detected: only the n x n kernel) vs
  ``structure="full"`` (the (nC, nC) kernel), kernel and solve together.
* Full mode only: the paper's size (p = 97, 40% of the pairs: n = 3764, C = 97, 361k pair
  constraints; width 1024) through ``ntk_predictor``, alone (the dense route would need a
  1 TB pair matrix), in a child process that reports its own time and peak resident memory.

Run ``python benchmarks/bench_multiclass.py [--quick]`` (quick: < 1 min).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _common import Row, print_rows, timed

import implicitbias as ib
from implicitbias.experiments import data


def _net(p: int, width: int) -> torch.nn.Module:
    net = ib.HomogeneousMLP(2 * p, [width], p, first_layer_bias=True, seed=0, dtype=torch.float64)
    return ib.zero_last_layer(net)


def _problem(
    p: int, fraction: float, width: int
) -> tuple[torch.Tensor, np.ndarray, torch.nn.Module]:
    D = data.modular_addition_data(p, train_fraction=fraction, seed=0)
    return torch.tensor(D.X_train, dtype=torch.float64), D.y_train, _net(p, width)


def _agreement(ours: ib.MulticlassKernelSVMResult, ref: ib.MulticlassKernelSVMResult) -> str:
    rel = abs(ours.objective - ref.objective) / ref.objective
    dual = float(np.max(np.abs(ours.dual - ref.dual)) / np.max(ref.dual))
    same = "same support" if np.array_equal(ours.support, ref.support) else "support differs"
    return (
        f"objective rel. diff {rel:.1e}, dual diff {dual:.1e}, {same} ({len(ours.support)} "
        f"pairs); ours: KKT residual {ours.kkt_residual:.1e}, {ours.constraints_touched} of "
        f"{ours.dual.shape[0] * (ours.dual.shape[1] - 1)} pairs touched"
    )


def _svm_rows(p: int, fraction: float, width: int) -> list[Row]:
    X, y, net = _problem(p, fraction, width)
    K = ib.empirical_ntk(net, X, trace=True).numpy() / p  # = K of K ⊗ I_C here
    n, C = len(y), p
    ours, t_ours = timed(lambda: ib.multiclass_kernel_svm(K, y, n_classes=C, structure="kron"))
    K_full = np.kron(K, np.eye(C))
    ref, t_ref = timed(  # today's route, whatever the memory it takes
        lambda: ib.multiclass_kernel_svm(K_full, y, solver="active-set", memory_budget=2**40)
    )
    return [
        Row(
            "multiclass SVM on K ⊗ I_C",
            f"p={p} n={n} C={C} ({n * (C - 1)} pairs)",
            "kron working-set",
            t_ours,
            "dense route on K_full",
            t_ref,
            _agreement(ours, ref),
        )
    ]


def _predictor_rows(p: int, fraction: float, width: int) -> list[Row]:
    X, y, net = _problem(p, fraction, width)
    ours, t_ours = timed(lambda: ib.ntk_predictor(net, X, y, task="multiclass"))
    ref, t_ref = timed(lambda: ib.ntk_predictor(net, X, y, task="multiclass", structure="full"))
    assert ours.structure == "kron"
    rel = abs(ours.margin - ref.margin) / ref.margin
    return [
        Row(
            "ntk_predictor multiclass (NTK + SVM)",
            f"p={p} n={len(y)} C={p} width={width}",
            "structure detected: n x n K",
            t_ours,
            "structure='full': (nC)^2 NTK",
            t_ref,
            f"margin rel. diff {rel:.1e}; same predictions on the training set: "
            f"{bool(torch.equal(ours.predict(X), ref.predict(X)))}",
        )
    ]


def _peak_gb() -> float:
    """Peak resident memory of this process image (``VmHWM``; ``ru_maxrss`` would include the
    parent's peak, which Linux carries over ``exec``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _paper_child(p: int, fraction: float, width: int) -> None:
    """In a fresh process: the paper-size predictor; print time, peak memory, figures."""
    torch.set_num_threads(2)
    X, y, net = _problem(p, fraction, width)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = ib.ntk_predictor(net, X, y, task="multiclass")
    t = time.perf_counter() - t0
    res = pred.solution
    print(
        json.dumps(
            {
                "time": t,
                "solve": res.solve_time,
                "peak_gb": _peak_gb(),
                "n": len(y),
                "structure": pred.structure,
                "pairs": len(y) * (p - 1),
                "touched": res.constraints_touched,
                "support": len(res.support),
                "kkt": res.kkt_residual,
                "gap": res.relative_gap,
                "status": res.status,
                "train_acc": float(np.mean(pred.predict(X) == y)),
            }
        )
    )


def _paper_rows(p: int = 97, fraction: float = 0.4, width: int = 1024) -> list[Row]:
    out = subprocess.run(
        [sys.executable, __file__, "--paper", str(p), str(fraction), str(width)],
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    dense_tb = 8 * r["pairs"] ** 2 / 1e12
    return [
        Row(
            "ntk_predictor multiclass, paper size",
            f"p={p} n={r['n']} C={p} width={width} ({r['pairs']} pairs)",
            f"{r['structure']}: n x n K + working sets",
            r["time"],
            f"dense route (pair matrix alone {dense_tb:.2g} TB)",
            None,
            f"peak RSS {r['peak_gb']:.2f} GB, SVM solve {r['solve']:.0f} s, {r['touched']} "
            f"pairs touched, {r['support']} support pairs, KKT residual {r['kkt']:.1e}, "
            f"relative gap {r['gap']:.1e}, {r['status']}, train accuracy {r['train_acc']:.3f}",
        )
    ]


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    sizes = [(13, 0.5, 1024), (23, 0.4, 1024)] if quick else [(23, 0.4, 1024), (31, 0.4, 256)]
    for p, fraction, width in sizes:
        rows += _svm_rows(p, fraction, width)
    rows += _predictor_rows(13 if quick else 23, 0.5 if quick else 0.4, 256)
    if not quick:
        rows += _paper_rows()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    parser.add_argument("--paper", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paper:
        _paper_child(int(args.paper[0]), float(args.paper[1]), int(args.paper[2]))
    else:
        print_rows(run(args.quick))
