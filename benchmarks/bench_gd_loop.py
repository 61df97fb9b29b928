"""GD steps per second on the modular-addition network: ``train(method="gd")`` against a plain
``torch.optim.SGD`` loop, and the divergence guard read every 64 steps against every step.

Usage::

    python benchmarks/bench_gd_loop.py [--quick]

Instance (THEORY §6.4): all p² pairs of modular addition, a split of them for training, the
two-layer ReLU net of the experiment (first-layer bias, He·α with α = 8, last layer zeroed),
cross-entropy, λ = 1e-4, η = 0.002, float32. Quick: p = 31, 70% of the pairs (673), width 256.
Full: also the paper's size, p = 97, 40% (3763 pairs), width 1024. Each route trains the same
initialization for the same number of full-batch steps; ``train`` records two history rows
(the first and last step) and its time includes its set-up (validation, fingerprint). The
alternative is the loop a user would write: ``zero_grad``, ``cross_entropy(net(X), y)
.backward()``, ``SGD(lr=η, weight_decay=λ).step()``. Both run on the CPU with one intra-op
thread (on this shared 2-core machine more threads only wait), and on CUDA when it is
available (otherwise the rows say so), where the clock stops after ``torch.cuda.synchronize()``.
Every route first runs 3 steps to warm up (allocations, kernels) outside the clock.

The second row of each size runs ``train`` with the guard read every 64 steps (the default on
CUDA) against every step (the default on the CPU): on the CPU it is the overhead of the
deferred guard; on CUDA, what the host syncs it removes cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, print_rows, timed  # noqa: E402

import implicitbias as ib  # noqa: E402
from implicitbias.dynamics import _gd_loop  # noqa: E402
from implicitbias.experiments.configs import ModularConfig  # noqa: E402
from implicitbias.experiments.data import modular_addition_data  # noqa: E402
from implicitbias.experiments.modular_addition import modular_network  # noqa: E402

LAM, LR, ALPHA = 1e-4, 0.002, 8.0


def _instance(p: int, frac: float, width: int, device: str):
    """A fresh net (same initialization every call) and the training pairs, on ``device``."""
    cfg = ModularConfig(p=p, train_fraction=frac, width=width, alpha=ALPHA, steps=1)
    data = modular_addition_data(p, train_fraction=frac, seed=0)
    X = torch.as_tensor(data.X_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    return modular_network(cfg, seed=0, dtype=torch.float32, device=torch.device(device)), X, y


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _ours(p: int, frac: float, width: int, device: str, steps: int, every: int | None):
    """``train(method="gd")``; ``every`` forces the steps between two reads of the guard."""
    net, X, y = _instance(p, frac, width, device)
    saved = _gd_loop._CPU_GUARD_EVERY, _gd_loop._DEVICE_GUARD_EVERY
    if every is not None:
        _gd_loop._CPU_GUARD_EVERY = _gd_loop._DEVICE_GUARD_EVERY = every
    try:
        res = ib.train(net, X, y, loss="cross_entropy", weight_decay=LAM, lr=LR, steps=steps,
                       num_evals=2, progress=False)  # fmt: skip
    finally:
        _gd_loop._CPU_GUARD_EVERY, _gd_loop._DEVICE_GUARD_EVERY = saved
    _sync(device)
    assert res.status == "completed" and res.iterations == steps
    return res.model.theta().cpu()


def _plain(p: int, frac: float, width: int, device: str, steps: int):
    """The plain full-batch loop: cross-entropy, backward, torch.optim.SGD with weight decay."""
    net, X, y = _instance(p, frac, width, device)
    opt = torch.optim.SGD(net.parameters(), lr=LR, weight_decay=LAM)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(X), y).backward()
        opt.step()
    _sync(device)
    return ib.Homogeneous(net).theta().cpu()


def _clock(fn: Callable[[int], torch.Tensor], steps: int):
    """(θ, seconds) of ``fn(steps)`` after a warm-up of ``fn(3)`` (allocations, kernels)."""
    fn(3)
    return timed(lambda: fn(steps))


def _rows(p: int, frac: float, width: int, device: str, steps: int, note: str) -> list[Row]:
    size = f"p={p} {round(100 * frac)}% width {width} f32, {device}, {steps} steps"
    ours, ours_s = _clock(lambda n: _ours(p, frac, width, device, n, None), steps)
    plain, plain_s = _clock(lambda n: _plain(p, frac, width, device, n), steps)
    rel = float((ours - plain).norm() / plain.norm())
    first = Row(
        "GD steps/s, modular addition",
        size,
        "train(method='gd')",
        ours_s,
        "torch.optim.SGD loop",
        plain_s,
        f"{steps / ours_s:.4g} vs {steps / plain_s:.4g} steps/s; rel. diff of θ {rel:.1e}{note}",
    )
    lazy, lazy_s = _clock(lambda n: _ours(p, frac, width, device, n, 64), steps)
    eager, eager_s = _clock(lambda n: _ours(p, frac, width, device, n, 1), steps)
    same = bool(torch.equal(lazy, eager))
    default = _gd_loop.guard_every(torch.device(device))
    second = Row(
        "GD divergence guard, modular addition",
        size,
        "read every 64 steps",
        lazy_s,
        "read every step",
        eager_s,
        f"{steps / lazy_s:.4g} vs {steps / eager_s:.4g} steps/s; θ bit-identical: {same}; "
        f"default on {device}: every {default}",
    )
    return [first, second]


def run(quick: bool) -> list[Row]:
    sizes = [(31, 0.7, 256)] if quick else [(31, 0.7, 256), (97, 0.4, 1024)]
    cpu_steps = {31: 300 if quick else 1000, 97: 100}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cuda = torch.cuda.is_available()
    if not cuda:
        print("CUDA: not available")
    note = "" if cuda else "; CUDA not available in this run: no GPU figure"
    rows: list[Row] = []
    try:
        for p, frac, width in sizes:
            rows += _rows(p, frac, width, "cpu", cpu_steps[p], note)
    finally:
        torch.set_num_threads(threads)
    if cuda:
        for p, frac, width in sizes:
            rows += _rows(p, frac, width, "cuda", 1000 if quick else 5000, "")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="p = 31 only (about a minute)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print_rows(run(args.quick))
    print(f"total {time.perf_counter() - t0:.1f} s")
