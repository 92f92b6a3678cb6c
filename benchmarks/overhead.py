"""Per-op Python overhead of gradwise.autograd, beside raw NumPy and PyTorch (if importable).

Measures, on 1- and 100-element float32 tensors that require grad:
- a forward ``a + b`` (goal: at most 1.5 us),
- ``(a * b).sum().backward()`` (goal: at most 8 us),
with contenders interleaved (their order rotates each round), a pause before every timed
block, and the median and minimum over the rounds. PyTorch is timed when importable
(optional); the goal is judged on gradwise's median.

Beside them, two yardsticks for the machine at hand: "numpy" does the same arithmetic by
hand, and "bare" is a bare dynamic graph written in Python (``benchmarks/bare_graph.py``:
one Python call per op, no checks, grad modes or version counters), a yardstick for the
floor of any framework whose ops are Python calls.

    python benchmarks/overhead.py [--rounds 7] [--pause 0.25] [--no-torch]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from bare_graph import Bare
from benchlib import interleaved, try_import_torch

import gradwise.autograd as ag


def _cases(n: int, torch: Any) -> list[tuple[str, dict[str, Callable[[], object]]]]:
    rng = np.random.default_rng(0)
    na = rng.standard_normal(n).astype(np.float32)
    nb = rng.standard_normal(n).astype(np.float32)
    a = ag.tensor(na, requires_grad=True)
    b = ag.tensor(nb, requires_grad=True)
    ba, bb = Bare(na), Bare(nb)
    (ba * bb).sum().backward()  # the yardstick computes what gradwise does
    (a * b).sum().backward()
    assert a.grad is not None
    assert np.array_equal(ba.grad, a.grad.numpy()), "bare_graph and gradwise disagree"

    def np_backward() -> object:
        # the same work by hand: forward product and sum, backward gradients
        s = (na * nb).sum()
        ga = np.ones_like(na) * nb
        gb = np.ones_like(nb) * na
        return s, ga, gb

    add: dict[str, Callable[[], object]] = {
        "gradwise": lambda: a + b,
        "bare": lambda: ba + bb,
        "numpy": lambda: na + nb,
    }
    bwd: dict[str, Callable[[], object]] = {
        "gradwise": lambda: (a * b).sum().backward(),
        "bare": lambda: (ba * bb).sum().backward(),
        "numpy": np_backward,
    }
    if torch is not None:
        ta = torch.tensor(na, requires_grad=True)
        tb = torch.tensor(nb, requires_grad=True)
        add["torch"] = lambda: ta + tb
        bwd["torch"] = lambda: (ta * tb).sum().backward()
    return [(f"a + b, n={n}", add), (f"(a*b).sum().backward(), n={n}", bwd)]


GOALS = {"a + b": 1.5e-6, "(a*b).sum().backward()": 8e-6}


def _functional_cases() -> list[tuple[str, Callable[[], object]]]:
    """A two-layer tanh network's scalar loss on a (64, 32) float64 input: one forward,
    forward + backward, jvp (forward mode) and hvp (forward-over-reverse)."""
    rng = np.random.default_rng(1)
    w1 = ag.tensor(rng.standard_normal((32, 64)) / 8)
    w2 = ag.tensor(rng.standard_normal((64, 16)) / 8)
    x = ag.tensor(rng.standard_normal((64, 32)))
    v = ag.tensor(rng.standard_normal((64, 32)))

    def f(t: ag.Tensor) -> ag.Tensor:
        return ((t @ w1).tanh() @ w2).tanh().sum()

    def forward_backward() -> object:
        leaf = x.detach().requires_grad_(True)
        return ag.grad(f(leaf), leaf)

    return [
        ("forward", lambda: f(x)),
        ("forward + backward", forward_backward),
        ("jvp", lambda: ag.jvp(f, (x,), (v,))),
        ("hvp", lambda: ag.hvp(f, x, v)),
    ]


def functional_costs(rounds: int, pause: float) -> None:
    """Print jvp's cost relative to one forward, hvp's relative to forward + backward."""
    cases = _functional_cases()
    times = interleaved([fn for _, fn in cases], rounds=rounds, pause=pause, block_seconds=0.05)
    med = {name: t.median for (name, _), t in zip(cases, times, strict=True)}
    print("\nfunctional transforms, tanh MLP loss, x (64, 32) float64 (median):")
    for name, _ in cases:
        print(f"  {name:20} {med[name] * 1e6:9.1f}us")
    print(f"  jvp / forward              {med['jvp'] / med['forward']:5.2f}x")
    print(f"  hvp / (forward + backward) {med['hvp'] / med['forward + backward']:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pause", type=float, default=0.25)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    torch = None if args.no_torch else try_import_torch()
    if torch is not None:
        torch.set_num_threads(2)
    names = ["gradwise", "bare", "numpy"] + (["torch"] if torch is not None else [])
    versions = f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else "")
    print(f"{args.rounds} interleaved rounds, {args.pause} s pause per block; {versions}")
    head = (
        f"{'case':34}"
        + "".join(f" {n + ' med':>13} {'min':>8}" for n in names)
        + f" {'goal':>7} {'met':>4}"
    )
    print(head)
    print("-" * len(head))
    met: list[bool] = []
    for n in (1, 100):
        for label, fns in _cases(n, torch):
            times = interleaved(
                list(fns.values()), rounds=args.rounds, pause=args.pause, block_seconds=0.05
            )
            row = f"{label:34}"
            for t in times:
                row += f" {t.median * 1e6:11.2f}us {t.minimum * 1e6:6.2f}us"
            goal = GOALS[label.split(",")[0]]
            met.append(times[0].median <= goal)
            row += f" {goal * 1e6:5.1f}us {'yes' if met[-1] else 'no':>4}"
            print(row, flush=True)
    print(f"goals met: {sum(met)} of {len(met)} (on gradwise's median)")
    functional_costs(args.rounds, args.pause)


if __name__ == "__main__":
    main()
