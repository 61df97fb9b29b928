"""Empirical NTK: the structured (layer-wise) route against the generic torch.func Jacobian
contraction, side by side, on ``HomogeneousMLP(100, [512, 512])`` in float64.

Usage::

    python benchmarks/bench_ntk.py [--quick]

Each route runs in its own subprocess (same interpreter, same thread count; best of 3 for the
structured route, one run of the Jacobian contraction), which reports its wall time and its
peak resident memory above the baseline after the model and the data are built (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before and after the kernel call; the
kernel's own n × n matrix is part of that peak). The parent compares the two kernels, and also
times the *floor* of the structured route: the bare matrix products ``A_l A_lᵀ`` and
``Δ_l Δ_lᵀ`` it needs, issued on the same row blocks against the same column ranges (the route
computes only the upper block triangle of the symmetric kernel), without the forward/backward
pass, the Hadamard products or the accumulation. For scale, the size of the n × p Jacobian that
a non-chunked contraction would hold is printed too. A last row times the structure guard of
the structured route (``kernel_regime/_chain.py``; best of 3) as a fraction of the whole
structured NTK: the proof of the layer chain on one row, plus what the per-row checks (call
chaining, Freivalds checks of each layer) add to the model's own forward pass, which the route
uses instead of an unguarded forward pass by hand; and the separate checked pass over all rows
that is made when the features do not fit in memory at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import Row, print_rows, timed  # noqa: E402

D_IN, WIDTHS = 100, [512, 512]
CHUNK = 512  # the structured route's default row block for these sizes


def _setup(n: int):  # noqa: ANN202 - returns (net, X)
    import torch

    import implicitbias as ib

    net = ib.HomogeneousMLP(D_IN, WIDTHS, seed=0, dtype=torch.float64)
    X = torch.randn(n, D_IN, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return net, X


def _maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _bare_forward(ops: list, X):  # noqa: ANN001, ANN202 - torch objects
    """The structured route's forward pass without its guard: the layers applied by hand,
    keeping each linear layer's input and each activation's derivative (what the route needs)."""
    import torch
    from torch.nn import functional as F

    kept = []
    with torch.no_grad():
        h = X
        for op in ops:
            if op.kind == "linear":
                kept.append(h)
                h = F.linear(h, op.module.weight, op.module.bias)
            elif op.kind == "act":
                kept.append((h > 0).to(h.dtype) if op.slope == 0 else None)
                h = torch.relu(h) if op.slope == 0 else F.leaky_relu(h, op.slope)
            else:
                h = h.reshape(X.shape[0], *op.shape)
    return kept, h


def _child(method: str, n: int, out: str) -> None:
    """Run one route once; write the kernel to ``out`` and print time and peak memory."""
    import numpy as np

    import implicitbias as ib

    net, X = _setup(n)
    ib.empirical_ntk(net, X[:8], method=method)  # warm up (imports, thread pools)
    before = _maxrss_bytes()
    repeat = 3 if method == "structured" else 1  # best of 3 for the fast route
    K, seconds = timed(lambda: ib.empirical_ntk(net, X, method=method), repeat=repeat)
    after = _maxrss_bytes()
    np.save(out, K.numpy())
    result = {"seconds": seconds, "peak_bytes": max(0, after - before)}
    if method == "structured":  # the structure guard (part of ``seconds`` above)
        from implicitbias.kernel_regime._chain import verified_chain

        chain, result["prove_s"] = timed(lambda: verified_chain(net, X), repeat=repeat)
        _, result["checked_s"] = timed(lambda: chain.run(X), repeat=repeat)
        _, result["bare_s"] = timed(lambda: _bare_forward(chain.ops, X), repeat=repeat)
        _, result["verify_s"] = timed(lambda: chain.verify(X), repeat=repeat)
    print(json.dumps(result))


def _run_child(method: str, n: int, out: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", method, str(n), out],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _floor_seconds(n: int) -> float:
    """The bare block-triangular Gram products of the structured route (same flops)."""
    import torch

    net, X = _setup(n)
    with torch.no_grad():
        h1 = torch.relu(X @ net.layers[0].weight.T)
        h2 = torch.relu(h1 @ net.layers[1].weight.T)
        d2 = net.layers[2].weight.expand(n, -1) * (h2 > 0)
        d1 = (d2 @ net.layers[1].weight) * (h1 > 0)
        mats = [X, h1, h2, d1, d2]

        def products() -> None:
            for r in range(0, n, CHUNK):
                for M in mats:
                    M[r : r + CHUNK] @ M[r:].T

        _, seconds = timed(products, repeat=2)
    return seconds


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def run(quick: bool) -> list[Row]:
    import numpy as np

    import implicitbias as ib

    sizes = [1024] if quick else [2048, 4096]
    p = ib.Homogeneous(_setup(1)[0]).num_parameters
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            fs, fj = os.path.join(tmp, "s.npy"), os.path.join(tmp, "j.npy")
            s = _run_child("structured", n, fs)
            j = _run_child("jacobian", n, fj)
            Ks, Kj = np.load(fs), np.load(fj)
            rel = float(np.max(np.abs(Ks - Kj)) / np.max(np.abs(Kj)))
            floor = _floor_seconds(n)
            jac_bytes = n * p * 8
            size = f"n={n}, p={p:,}"
            rows.append(
                Row(
                    operation="empirical_ntk MLP(100,[512,512]) f64",
                    size=size,
                    ours="structured",
                    ours_s=s["seconds"],
                    alternative="torch.func Jacobian contraction (blocked)",
                    alternative_s=j["seconds"],
                    agreement=(
                        f"max rel. diff {rel:.1e}; peak RSS +{_gib(s['peak_bytes'])} vs "
                        f"+{_gib(j['peak_bytes'])}; full n×p Jacobian would be {_gib(jac_bytes)}"
                    ),
                )
            )
            rows.append(
                Row(
                    operation="structured route vs its matmul floor",
                    size=size,
                    ours="structured",
                    ours_s=s["seconds"],
                    alternative="bare Gram products (same blocks)",
                    alternative_s=floor,
                    agreement=f"route / floor = {s['seconds'] / floor:.2f}",
                )
            )
            # The guard: a proof of the chain on one row, plus the checks riding on the forward
            # pass whose layer inputs the route uses (that pass against the unguarded forward
            # pass by hand). When the features come in blocks, a separate checked pass over all
            # rows is made first (its cost is shown too).
            guard = s["prove_s"] + max(0.0, s["checked_s"] - s["bare_s"])
            rows.append(
                Row(
                    operation="structured route: structure guard",
                    size=size,
                    ours="guard (proof + per-row checks)",
                    ours_s=guard,
                    alternative="whole structured NTK (guard included)",
                    alternative_s=s["seconds"],
                    agreement=(
                        f"guard = {100 * guard / s['seconds']:.1f}% of the structured NTK "
                        f"(proof on one row {s['prove_s']:.3g} s, checked forward "
                        f"{s['checked_s']:.3g} s vs unguarded {s['bare_s']:.3g} s); a separate "
                        f"checked pass over all rows (made only when the features do not fit in "
                        f"memory at once) would add {100 * s['verify_s'] / s['seconds']:.1f}%"
                    ),
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--child":
        _child(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 1024 only (under a minute)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print_rows(run(quick=args.quick))
    print(f"# total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
