"""The NTK predictor against the trained network early in training (t ≪ t*).

From a large symmetrized initialization θ(0) = α·θ̄ (zero output), a 2-homogeneous ReLU net
first behaves like its NTK at θ̄: its sign agrees with the hard-margin kernel SVM
(:func:`implicitbias.ntk_predictor`) until the transition time t* = log(α)/λ (THEORY §2).
This script trains by gradient flow to a time t with t/t* of a few percent and compares the
outputs of the network and of the NTK predictor on fresh test points.

Run ``python examples/ntk_vs_trained.py --quick`` (a few seconds). Exits with status 1 when
the sign agreement or the correlation is below its threshold.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

import implicitbias as ib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller network and test set")
    parser.add_argument("--alpha", type=float, default=30.0, help="initialization scale α")
    parser.add_argument("--min-agreement", type=float, default=0.9)
    parser.add_argument("--min-correlation", type=float, default=0.95)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()

    n, d = 40, 5
    width = 64 if args.quick else 256
    n_test = 500 if args.quick else 5000
    alpha, lam = args.alpha, 1e-3
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n + n_test, d, generator=g, dtype=torch.float64)
    y = torch.sign(X[:, 0] * X[:, 1] + 0.3 * X[:, 2])
    X_train, y_train, X_test = X[:n], y[:n], X[n:]

    # Zero-output start at scale α: two copies g(θ₁) − g(θ₂), θ₁ = θ₂, then θ ← α·θ.
    net = ib.symmetrize(ib.HomogeneousMLP(d, [width], seed=0, dtype=torch.float64))
    ib.scale_init(net, alpha)
    ib.check_zero_output(net, X_train)  # raises NonZeroInitError otherwise

    pred = ib.ntk_predictor(net, X_train, y_train)  # NTK at θ(0) and the kernel SVM (K1)
    s_ntk = pred.decision_function(X_test).numpy()  # a tensor in, a tensor out
    print(
        f"NTK predictor: degree L = 2, α = {alpha:g}, width {width}, n = {n}; "
        f"kernel margin γ_ntk = {pred.margin:.4g} (∝ α^(L-1))"
    )

    t_star = math.log(alpha) / lam
    t = 100.0
    # The NTK at α·θ̄ is α² times larger: scale the step down by α² (flow: first trial step).
    res = ib.train(
        net,
        X_train,
        y_train,
        weight_decay=lam,
        lr=1e-2 / alpha**2,
        t_max=t,
        method="flow",
        num_evals=10,
    )
    with torch.no_grad():
        f = net(X_test).numpy()
    agreement = float(np.mean(np.sign(f) == np.sign(s_ntk)))
    correlation = float(np.corrcoef(f, s_ntk)[0, 1])
    test_acc_net = float(np.mean(np.sign(f) == y[n:].numpy()))
    test_acc_ntk = float(np.mean(np.sign(s_ntk) == y[n:].numpy()))

    print(
        f"trained by gradient flow to t = {t:g} ({res.grad_evals} gradient evaluations), "
        f"t/t* = {t / t_star:.3g}, train accuracy {res.history['train_acc'][-1]:.3g}"
    )
    print(f"sign agreement (network vs NTK predictor) = {agreement:.3f}")
    print(f"output correlation = {correlation:.4f}")
    print(f"test accuracy: network = {test_acc_net:.3f}, NTK predictor = {test_acc_ntk:.3f}")
    print(f"wall time = {time.perf_counter() - start:.1f} s")
    ok = agreement >= args.min_agreement and correlation >= args.min_correlation
    if not ok:
        print(
            f"FAILED: agreement {agreement:.3f} < {args.min_agreement} or correlation "
            f"{correlation:.4f} < {args.min_correlation}"
        )
        return 1
    print("OK: early in training the network follows its NTK predictor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
