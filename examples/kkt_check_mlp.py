"""KKT check of your own bias-free ReLU MLP (an ``nn.Sequential``) trained with weight decay.

A bias-free two-layer ReLU network is 2-homogeneous, so once it separates the data, gradient
descent with a small weight decay drives its direction toward a KKT point of the margin problem
min ½‖θ‖² s.t. y_i f(θ; x_i) ≥ 1 (THEORY §3). This script trains such a network on an XOR-like
task and prints :func:`implicitbias.kkt_residuals` shortly after the data are separated and at
the end: the relative KKT residual ``epsilon_rel`` drops by an order of magnitude.

Run ``python examples/kkt_check_mlp.py --quick`` (about 15 s) or without ``--quick`` (longer
training, smaller residual). Exits with status 1 when ``epsilon_rel`` did not drop at least
``--min-drop`` times.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

import implicitbias as ib


def make_data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """XOR-like labels y = sign(x₀x₁), points with |x₀x₁| ≤ 0.3 removed (a margin gap)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(4 * n, d, generator=g, dtype=torch.float64)
    s = X[:, 0] * X[:, 1]
    keep = s.abs() > 0.3
    return X[keep][:n], torch.sign(s[keep][:n])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (about 15 s)")
    parser.add_argument("--min-drop", type=float, default=5.0, help="required drop of epsilon_rel")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small problem: one thread is fastest on a shared CPU
    start = time.perf_counter()

    n, d, width = 40, 5, 16
    lam, lr = 1e-2, 0.05
    early_steps = 1000
    total_steps = 7000 if args.quick else 15000
    X, y = make_data(n, d, seed=0)

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(d, width, bias=False), nn.ReLU(), nn.Linear(width, 1, bias=False)
    ).double()
    model = ib.Homogeneous(net, example_input=X)  # measures and verifies the degree L = 2
    print(
        f"model: bias-free ReLU MLP {d}-{width}-1, degree L = {model.degree}, "
        f"p = {model.num_parameters} parameters; n = {n} training points"
    )

    # Early: just after the training set is separated.
    ib.train(model, X, y, weight_decay=lam, lr=lr, steps=early_steps, num_evals=10)
    early = ib.kkt_residuals(model, X, y, weight_decay=lam)
    print(f"\nafter {early_steps} GD steps (data just separated):")
    print(
        f"  epsilon_rel = {early.epsilon_rel:.3g}, delta = {early.delta:.3g}, "
        f"normalized margin = {early.normalized_margin:.4g}"
    )

    # Late: keep training the same model (train continues from its current parameters).
    res = ib.train(
        model, X, y, weight_decay=lam, lr=lr, steps=total_steps - early_steps, num_evals=10
    )
    late = ib.kkt_residuals(model, X, y, weight_decay=lam)
    print(f"\nafter {total_steps} GD steps (train accuracy {res.history['train_acc'][-1]:.3g}):")
    print(late)

    drop = early.epsilon_rel / late.epsilon_rel
    print(f"\nepsilon_rel early = {early.epsilon_rel:.3g}")
    print(f"epsilon_rel final = {late.epsilon_rel:.3g}")
    print(f"epsilon_rel drop = {drop:.3g}x")
    print(
        f"normalized margin early = {early.normalized_margin:.4g}, "
        f"final = {late.normalized_margin:.4g}"
    )
    print(f"support size = {len(late.support)} of {n}")
    print(f"wall time = {time.perf_counter() - start:.1f} s")
    if not drop >= args.min_drop:
        print(f"FAILED: epsilon_rel dropped only {drop:.3g}x (< {args.min_drop:g}x)")
        return 1
    print("OK: the trained network approaches a KKT point of its margin problem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
