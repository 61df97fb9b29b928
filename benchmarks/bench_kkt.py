"""KKT residuals: the Gram-form certificate (NTK + Euler identity + Gram NNLS) against
``scipy.optimize.nnls`` on the explicit ``p × n`` matrix of gradients, side by side.

Usage::

    python benchmarks/bench_kkt.py [--quick]

Model: a bias-free two-layer ReLU net ``HomogeneousMLP(d, [1000])`` in float64 (``p ≈ 1000·d``),
trained for 50 full-batch GD steps (logistic loss) on 1.5·n points labelled by a random teacher of
the same architecture; the n points it classifies with the largest margins are the data (so the
model separates them, ``q_min > 0``).

* ours: ``kkt_residuals(model, X, y)`` end to end (margins, structured NTK, Gram NNLS with the
  near-active restriction, ε).
* alternative: the explicit Jacobian ``G = [y_i ∇f(θ̃; x_i)]`` (``Homogeneous.jacobian``) and
  ``scipy.optimize.nnls(G, θ̃)``; its time includes forming ``G``.
* agreement: the smallest ε, ``report.epsilon_min`` against scipy's residual norm.

Quick: ``d = 100`` (p ≈ 10⁵), ``n = 300``. Full: ``d = 1000`` (p ≈ 10⁶), ``n = 1000``; the
explicit ``G`` is then 8 GB in float64 (and scipy copies it), so the alternative runs only when
``MemAvailable`` exceeds three times that, else it is skipped and a second row measures both
routes at ``d = 250`` (p ≈ 2.5·10⁵), ``n = 1000``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import Row, print_rows, timed  # noqa: E402

WIDTH = 1000


def _setup(d: int, n: int, seed: int = 0):  # noqa: ANN202 - (net, X, y)
    import torch

    import implicitbias as ib

    pool = 3 * n // 2
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(pool, d, generator=gen, dtype=torch.float64) / d**0.5
    teacher = ib.HomogeneousMLP(d, [WIDTH], seed=seed + 1, dtype=torch.float64)
    with torch.no_grad():
        t = torch.sign(teacher(X))
    net = ib.HomogeneousMLP(d, [WIDTH], seed=seed + 2, dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=2.0)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.softplus(-t * net(X)).mean().backward()
        opt.step()
    with torch.no_grad():
        q = t * net(X)
    # the n training points with the largest margins: all correctly classified when the
    # student fits at least n of the pool (else its own labels on them)
    keep = torch.argsort(q, descending=True)[:n]
    y = t[keep] if bool((q[keep] > 0).all()) else torch.sign(net(X[keep])).detach()
    return net, X[keep], y.numpy()


def _mem_available() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def _explicit(net, X, y):  # noqa: ANN001, ANN202
    import numpy as np
    import scipy.optimize

    import implicitbias as ib

    h = ib.Homogeneous(net)
    q = y * net(X).detach().numpy()
    scale = float(q.min()) ** (-1.0 / h.degree)
    J = h.jacobian(X).numpy()
    J *= (y * scale ** (h.degree - 1))[:, None]
    theta = h.theta().numpy() * scale
    _, rnorm = scipy.optimize.nnls(np.ascontiguousarray(J.T), theta)
    return rnorm


def _row(d: int, n: int, run_alternative: bool, why: str = "") -> Row:
    import implicitbias as ib

    net, X, y = _setup(d, n)
    p = ib.Homogeneous(net).num_parameters
    rep, t_ours = timed(lambda: ib.kkt_residuals(net, X, y))
    if run_alternative:
        rnorm, t_alt = timed(lambda: _explicit(net, X, y))
        rel = abs(rep.epsilon_min - rnorm) / rnorm
        agreement = (
            f"eps_min rel. diff {rel:.1e} (eps/|theta~| = {rep.epsilon_rel:.3g}, "
            f"support {len(rep.support)}/{n})"
        )
    else:
        t_alt = None
        agreement = f"alternative skipped: {why} (eps/|theta~| = {rep.epsilon_rel:.3g})"
    return Row(
        operation="kkt_residuals (binary, ReLU MLP)",
        size=f"n={n}, p={p:.2e}",
        ours="gram NNLS on NTK",
        ours_s=t_ours,
        alternative="scipy nnls on explicit G",
        alternative_s=t_alt,
        agreement=agreement,
    )


def run(quick: bool) -> list[Row]:
    if quick:
        return [_row(100, 300, True)]
    rows = []
    # G (8 GB), its transposed copy and scipy's working copy, with headroom: a run that took
    # MemAvailable > 3·|G| at face value was OOM-killed on a 24 GB machine.
    need = 3 * 1000 * (1000 * WIDTH + WIDTH) * 8
    if _mem_available() > 1.5 * need:
        rows.append(_row(1000, 1000, True))
    else:
        why = f"the explicit G needs ~{need / 3 / 2**30:.0f} GiB twice over"
        rows.append(_row(1000, 1000, False, why))
        rows.append(_row(250, 1000, True))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (p ~ 1e5, n = 300)")
    args = parser.parse_args()
    print_rows(run(args.quick))


if __name__ == "__main__":
    main()
