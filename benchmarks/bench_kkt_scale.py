"""KKT certificate of a modular-addition network: the working-set route against the dense route.

Usage::

    python benchmarks/bench_kkt_scale.py [--quick]

Model and data are the experiment's: ``modular_addition_data(p, train_fraction)`` (all pairs
``(a, b)``, one-hot inputs of size ``2p``, label ``(a + b) mod p``) and
``HomogeneousMLP(2p, [width], p, first_layer_bias=True)`` in float32, initialized as the
experiment does (He init scaled by α = 2, last layer zeroed) and trained by full-batch gradient
descent (cross-entropy, η = 0.1, λ = 2e-3: the quick preset's) until every training pair is
classified correctly. The certificate has ``m = n(p − 1)`` margin constraints.

* ours: ``kkt_residuals(net, X, y, nnls_route="working_set")``: the NNLS restricted to a
  working set of constraints (Gram from the per-layer factors), checked against all of them.
* alternative: ``nnls_route="dense"``, today's route: the ``(np)²`` NTK and the ``m × m``
  Gram of all pairs. It is run only where it fits (its memory estimate ``8·(3(np)² + 5m²)``
  bytes under 4 GB); at p = 31 (26 GB) it is skipped and our figure is reported alone.
* each certificate runs in a fresh subprocess: the time is the call's wall time, the peak memory
  the subprocess's maximum resident set (``ru_maxrss``, imports and data included).
* agreement: relative difference of ``epsilon_min`` (and of ``epsilon_rel``), the constraints
  touched by the working set out of ``m``, and both peaks.

Quick: p = 13 (width 64, m = 1,416) and p = 17 (width 128, m = 3,232) side by side, and p = 31
(70% of the pairs, width 256: n = 673, m = 20,190) alone; then, on the same p = 31 net, the
matrix-free route (``P31_STEPS`` products, no Gram) against the working set's exact optimum:
its distance to that optimum and the width of its certified bracket. Full: also the paper's size (p = 97,
40% of the pairs, width 1024, first-layer bias, m = 361,344) on the matrix-free route
(``nnls_route="matrix_free"``, ``PAPER_STEPS`` products, ``memory_budget`` = 8 GiB: the working
set's support outgrows any Gram that fits), reporting its certified bracket of ``epsilon_min``,
and a binary problem at n = 50,000 with 1.02·10⁶ parameters (``--binary`` runs it alone;
``--paper`` runs the p = 97 case alone).

The paper-size net is trained differently: full-batch GD with the quick preset's η = 0.1 and
λ = 2e-3 does not fit p = 97 (train accuracy peaks near 17% and then falls, measured over 7,400
steps), and the paper's η = 0.002, λ = 1e-4 needs a few 10⁵ steps (hours on a CPU). It is
trained by full-batch Adam (lr 10⁻³, He init ×1, last layer zeroed, no weight decay) to 100%
train accuracy and on for half as many steps again: about 210 steps, one minute.

* data: 10⁵ Gaussian points in d = 784 labelled by the sign of a random width-8 ReLU teacher;
  the 50,000 farthest from the teacher's boundary are kept (separable with a margin);
* model: a width-64 ``HomogeneousMLP`` (no biases) trained by full-batch Adam on the logistic
  loss (lr 10⁻³, until it separates the data: ~1,000 steps), then **widened** to width 1,280
  — every hidden unit repeated 20 times with both its weights divided by √20, the same
  function with 1.0048·10⁶ parameters (training the wide net directly would cost 20× more;
  the certificate does not know the structure and pays for every parameter);
* only our route runs: the dense route would need the 20 GB NTK of 50,000 examples.
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

from _common import Row, print_rows  # noqa: E402

LR, WEIGHT_DECAY, ALPHA = 0.1, 2e-3, 2.0
DENSE_LIMIT = 4e9  # bytes: run the dense route only below this estimate


def _net_and_data(p: int, fraction: float, width: int, seed: int = 0):  # noqa: ANN202
    import torch

    import implicitbias as ib
    from implicitbias.experiments.data import modular_addition_data

    data = modular_addition_data(p, train_fraction=fraction, seed=seed)
    X = torch.as_tensor(data.X_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    net = ib.HomogeneousMLP(
        2 * p, [width], p, first_layer_bias=True, seed=seed, dtype=torch.float32
    )
    return net, X, y


def _train(
    p: int, fraction: float, width: int, path: str, *, adam: bool = False, max_steps: int = 50_000
) -> int:
    """Train to 100% train accuracy (checked every 50 steps; 20 with Adam) and on for half as
    many steps again (so that no pair sits on the decision boundary); save the state; the
    steps. GD as the quick preset (α = 2, η, λ), or Adam (α = 1, lr 1e-3, no weight decay)."""
    import torch

    from implicitbias.init import scale_init, zero_last_layer

    net, X, y = _net_and_data(p, fraction, width)
    if not adam:
        scale_init(net, ALPHA)
    zero_last_layer(net)
    if adam:
        opt: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    every = 20 if adam else 50
    step = 0
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        out = net(X)
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                if bool((net(X).argmax(1) == y).all()):
                    break
    else:
        raise RuntimeError(f"p = {p}: the net did not fit its training set in {max_steps} steps")
    for _ in range(step // 2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    torch.save(net.state_dict(), path)
    return step + step // 2


def _certify(
    p: int, fraction: float, width: int, path: str, route: str, budget: float, steps: int = 1000
) -> dict:
    """(In a subprocess.) Load the trained net and time kkt_residuals on it."""
    import resource

    import torch

    import implicitbias as ib

    net, X, y = _net_and_data(p, fraction, width)
    net.load_state_dict(torch.load(path))
    t0 = time.perf_counter()
    try:
        rep = ib.kkt_residuals(
            net, X, y, nnls_route=route, memory_budget=budget, matrix_free_steps=steps
        )
    except ib.InvalidArgumentError as exc:  # a working set beyond the budget says what it needs
        return {"error": str(exc), "time": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    return {
        "time": seconds,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "epsilon_min": rep.epsilon_min,
        "epsilon_min_lower": rep.epsilon_min_lower,
        "theta": rep.rescaled_theta_norm,
        "route": rep.nnls_route,
        "products": rep.iterations,
        "epsilon_rel": rep.epsilon_rel,
        "delta": rep.delta,
        "touched": rep.constraints_touched,
        "m": rep.n_constraints,
        "n": int(X.shape[0]),
    }


def _in_subprocess(*args: object, steps: int = 1000) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--certify", *map(str, args), str(steps)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def _case(p: int, fraction: float, width: int, budget: float, tmp: str) -> Row:
    path = os.path.join(tmp, f"net_{p}.pt")
    t0 = time.perf_counter()
    steps = _train(p, fraction, width, path, adam=p >= 97)
    train_s = time.perf_counter() - t0
    n_est = round(fraction * p * p)
    dense_bytes = 8 * (3 * (n_est * p) ** 2 + 5 * (n_est * (p - 1)) ** 2)
    ours = _in_subprocess(p, fraction, width, path, "working_set", budget)
    size = f"p={p}, {fraction:.0%}, width {width}"
    retry = ""
    # beyond the budget: measure it with twice the budget (up to 8 GiB: this machine has 24 GB)
    if "error" in ours and "memory_budget" in ours["error"] and budget < 8 * 2**30:
        retry = f"with {_gb(budget)} budget: {ours['error'].split(';')[0][-120:]}; "
        budget *= 2
        ours = _in_subprocess(p, fraction, width, path, "working_set", budget)
        size += f", budget {_gb(budget)}"
    if "error" in ours:
        after = f" after {ours['time']:.0f} s" if "time" in ours else ""
        return Row("KKT certificate, modular add.", size, "working set", float("nan"),
                   "dense", None, f"trained {steps} steps ({train_s:.0f} s); working set "
                   f"failed{after}: {ours['error'][:240]}")
    size = f"{size}, m={ours['m']:,}"
    note = retry + (
        f"trained {steps} steps ({train_s:.0f} s); touched {ours['touched']:,}/{ours['m']:,}; "
        f"peak {_gb(ours['peak_bytes'])}; eps_rel {ours['epsilon_rel']:.3g}"
    )
    if dense_bytes > DENSE_LIMIT:
        note += f"; dense skipped (needs ~{_gb(dense_bytes)})"
        return Row("KKT certificate, modular add.", size, "working set", ours["time"],
                   "dense", None, note)
    dense = _in_subprocess(p, fraction, width, path, "dense", max(budget, 2 * dense_bytes))
    if "error" in dense:
        return Row("KKT certificate, modular add.", size, "working set", ours["time"],
                   "dense", None, note + f"; dense failed: {dense['error'][:120]}")
    rel = abs(ours["epsilon_min"] - dense["epsilon_min"]) / dense["epsilon_min"]
    rel_e = abs(ours["epsilon_rel"] - dense["epsilon_rel"]) / dense["epsilon_rel"]
    note += (
        f"; eps_min rel. diff {rel:.1e}, eps_rel {rel_e:.1e}; dense peak "
        f"{_gb(dense['peak_bytes'])}"
    )
    return Row("KKT certificate, modular add.", size, "working set", ours["time"], "dense",
               dense["time"], note)


BINARY_D, BINARY_NARROW, BINARY_K = 784, 64, 20


def _binary_data(n: int = 50_000, d: int = BINARY_D):  # noqa: ANN202
    import torch

    import implicitbias as ib

    g = torch.Generator().manual_seed(0)
    X = torch.randn(2 * n, d, generator=g)
    teacher = ib.HomogeneousMLP(d, [8], 1, seed=1, dtype=torch.float32)
    with torch.no_grad():
        ft = teacher(X).reshape(-1)
    keep = torch.argsort(ft.abs(), descending=True)[:n]
    return X[keep], torch.sign(ft[keep])


def _wide(narrow_state: dict, d: int, narrow: int, k: int):  # noqa: ANN202
    """The width-``narrow·k`` net computing the same function (units repeated, scaled 1/√k)."""
    import math

    import torch

    import implicitbias as ib

    wide = ib.HomogeneousMLP(d, [narrow * k], 1, seed=0, dtype=torch.float32)
    state = {
        key: v.repeat_interleave(k, 0 if key.endswith("0.weight") else 1) / math.sqrt(k)
        for key, v in narrow_state.items()
    }
    wide.load_state_dict(state)
    return wide


def _train_binary(path: str, max_steps: int = 4000) -> float:
    import torch

    import implicitbias as ib

    X, y = _binary_data()
    net = ib.HomogeneousMLP(BINARY_D, [BINARY_NARROW], 1, seed=0, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for step in range(max_steps):
        opt.zero_grad()
        torch.nn.functional.softplus(-y * net(X).reshape(-1)).mean().backward()
        opt.step()
        if step % 50 == 0:
            with torch.no_grad():
                if bool((y * net(X).reshape(-1) > 0).all()):
                    break
    torch.save(net.state_dict(), path)
    return time.perf_counter() - t0


def _certify_binary(path: str, budget: float) -> dict:
    """(In a subprocess.) The certificate of the widened net."""
    import resource

    import torch

    import implicitbias as ib

    X, y = _binary_data()
    wide = _wide(torch.load(path), BINARY_D, BINARY_NARROW, BINARY_K)
    t0 = time.perf_counter()
    rep = ib.kkt_residuals(wide, X, y, nnls_route="working_set", memory_budget=budget)
    seconds = time.perf_counter() - t0
    return {
        "time": seconds,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "epsilon_rel": rep.epsilon_rel,
        "touched": rep.constraints_touched,
        "m": rep.n_constraints,
        "params": sum(p.numel() for p in wide.parameters()),
        "support": int(rep.support.size),
    }


def _binary_case(tmp: str) -> Row:
    path = os.path.join(tmp, "narrow.pt")
    train_s = _train_binary(path)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--certify-binary", path]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    size = "binary, n=50,000, d=784, width 1,280 (1.0M params)"
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()[-1] if done.stderr else "failed"
        return Row("KKT certificate, binary", size, "working set", float("nan"), "dense", None,
                   f"failed: {err[:160]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    note = (
        f"narrow net trained {train_s:.0f} s; {out['params']:,} params; touched "
        f"{out['touched']:,}/{out['m']:,}; support {out['support']:,}; peak "
        f"{_gb(out['peak_bytes'])}; eps_rel {out['epsilon_rel']:.3g}; dense skipped (NTK 20 GB)"
    )
    return Row("KKT certificate, binary", size, "working set", out["time"], "dense", None, note)


PAPER = (97, 0.4, 1024, 8 * 2**30)
#: Products of the matrix-free route at p = 31, against the working set's exact answer.
P31_STEPS = 600


def _matrix_free_case(tmp: str) -> Row:
    """p = 31 (trained by :func:`_case` into ``tmp``): the matrix-free route against the
    working set's exact optimum, on the same net."""
    p, fraction, width = 31, 0.7, 256
    path = os.path.join(tmp, f"net_{p}.pt")
    ours = _in_subprocess(p, fraction, width, path, "matrix_free", 2 * 2**30, steps=P31_STEPS)
    exact = _in_subprocess(p, fraction, width, path, "working_set", 2 * 2**30)
    size = f"p={p}, {fraction:.0%}, width {width}, m={ours.get('m', 0):,}"
    if "error" in ours or "error" in exact:
        return Row("KKT certificate, modular add.", size, "matrix-free", float("nan"),
                   "working set (exact)", None, f"failed: {ours.get('error', exact.get('error'))}")
    rel = (ours["epsilon_min"] - exact["epsilon_min"]) / exact["epsilon_min"]
    width_b = (ours["epsilon_min"] - ours["epsilon_min_lower"]) / ours["epsilon_min"]
    inside = ours["epsilon_min_lower"] <= exact["epsilon_min"] * (1 + 1e-12)
    note = (
        f"{ours['products']} products; peak {_gb(ours['peak_bytes'])} vs "
        f"{_gb(exact['peak_bytes'])}; eps_min above the exact optimum by {rel:.1e} (rel.); "
        f"certified bracket width {width_b:.1e}, holds the optimum: {inside}"
    )
    return Row("KKT certificate, modular add.", size, "matrix-free", ours["time"],
               "working set (exact)", exact["time"], note)
#: Products of the matrix-free route at the paper's size (about 0.25 s each on 2 cores).
PAPER_STEPS = 750


def _paper_case(tmp: str) -> Row:
    """p = 97: the matrix-free route (the working set's support outgrows any Gram that fits
    8 GiB), with its certified bracket of ε_min."""
    p, fraction, width, budget = PAPER
    path = os.path.join(tmp, f"net_{p}.pt")
    t0 = time.perf_counter()
    steps = _train(p, fraction, width, path, adam=True)
    train_s = time.perf_counter() - t0
    out = _in_subprocess(p, fraction, width, path, "matrix_free", budget, steps=PAPER_STEPS)
    size = f"p={p}, {fraction:.0%}, width {width}"
    if "error" in out:
        return Row("KKT certificate, modular add.", size, "matrix-free", float("nan"), "dense",
                   None, f"trained {steps} steps ({train_s:.0f} s); failed: {out['error'][:240]}")
    th = out["theta"]
    lo, hi = out["epsilon_min_lower"] / th, out["epsilon_min"] / th
    note = (
        f"net trained by Adam, {steps} steps ({train_s:.0f} s); {out['products']} products; "
        f"peak {_gb(out['peak_bytes'])}; eps_rel {out['epsilon_rel']:.4g}, certified "
        f"eps_min/norm(theta~) in [{lo:.4g}, {hi:.4g}] (width {(hi - lo) / hi:.1%}); "
        f"dense skipped (needs ~8.4 TB)"
    )
    return Row("KKT certificate, modular add.", f"{size}, m={out['m']:,} (paper size)",
               "matrix-free", out["time"], "dense", None, note)


def run(quick: bool) -> list[Row]:
    cases = [(13, 0.7, 64, 2 * 2**30), (17, 0.7, 128, 2 * 2**30), (31, 0.7, 256, 2 * 2**30)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p, fraction, width, budget in cases:
            rows.append(_case(p, fraction, width, budget, tmp))
        rows.append(_matrix_free_case(tmp))
        if not quick:
            rows.append(_paper_case(tmp))
            rows.append(_binary_case(tmp))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--certify", nargs=7, metavar=("P", "FRAC", "WIDTH", "PATH", "ROUTE", "B", "STEPS")
    )
    parser.add_argument("--certify-binary", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--binary", action="store_true", help="only the n = 50,000 binary case")
    parser.add_argument("--paper", action="store_true", help="only the p = 97 case")
    args = parser.parse_args(argv)
    if args.certify_binary:
        print(json.dumps(_certify_binary(args.certify_binary, 2 * 2**30)))
        return 0
    if args.binary:
        with tempfile.TemporaryDirectory() as tmp:
            print_rows([_binary_case(tmp)])
        return 0
    if args.paper:
        with tempfile.TemporaryDirectory() as tmp:
            print_rows([_paper_case(tmp)])
        return 0
    if args.certify:
        p, frac, width, path, route, budget, steps = args.certify
        out = _certify(int(p), float(frac), int(width), path, route, float(budget), int(steps))
        print(json.dumps(out))
        return 0
    print_rows(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
