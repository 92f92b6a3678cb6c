"""Measure, per kernel, the size from which its parallel variant beats the serial one.

Each ``gradwise.core.ops`` function runs with every kernel forced serial, then forced
parallel (interleaved, median of rounds), at sizes from 2K to 4M float32 elements. The
threshold printed is the smallest size from which the parallel variant is faster at
every larger size too: the values written into ``gradwise/core/_kernels/*.py``.

    python benchmarks/thresholds.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from benchlib import fmt_time, interleaved

import gradwise.core as gc
from gradwise.core import _jit, ops

Arr = np.ndarray[Any, Any]


def _flat(n: int, rng: np.random.Generator) -> tuple[Arr, Arr]:
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


def _ops(n: int, rng: np.random.Generator) -> dict[str, Callable[[], object]]:
    x, g = _flat(n, rng)
    y = ops.sigmoid(x)
    rows = x.reshape(-1, 128)
    grows = g.reshape(-1, 128)
    t = rng.integers(0, 128, rows.shape[0])
    _, lse, _ = ops.softmax_cross_entropy(rows, t)
    gl = np.ones(rows.shape[0])
    cols = x.reshape(-1, 256)
    p, m, v = x.copy(), np.zeros_like(x), np.zeros_like(x)
    return {
        "relu": lambda: ops.relu(x),
        "relu_backward": lambda: ops.relu_backward(x, g),
        "leaky_relu": lambda: ops.leaky_relu(x),
        "sigmoid (neg_abs + from_exp)": lambda: ops.sigmoid(x),
        "sigmoid_backward": lambda: ops.sigmoid_backward(y, g),
        "tanh_backward": lambda: ops.tanh_backward(y, g),
        "silu_backward": lambda: ops.silu_backward(x, g),
        "gelu (erf)": lambda: ops.gelu(x),
        "gelu_tanh": lambda: ops.gelu(x, "tanh"),
        "sum (chunks)": lambda: ops.sum(x),
        "sum rows": lambda: ops.sum(cols, 1),
        "sum cols": lambda: ops.sum(cols, 0),
        "var rows": lambda: ops.var(cols, 1),
        "var cols": lambda: ops.var(cols, 0),
        "var_backward": lambda: ops.var_backward(cols, np.ones(cols.shape[0], np.float32), 1),
        "max_backward": lambda: ops.extreme_backward(
            cols, cols.max(1), np.ones(cols.shape[0], np.float32), 1
        ),
        "softmax": lambda: ops.softmax(rows),
        "softmax_backward": lambda: ops.softmax_backward(rows, grows),
        "log_softmax": lambda: ops.log_softmax(rows),
        "cross_entropy": lambda: ops.softmax_cross_entropy(rows, t),
        "cross_entropy_backward": lambda: ops.softmax_cross_entropy_backward(rows, t, lse, gl),
        "sgd momentum": lambda: ops.sgd_(p, g, m, lr=0.01, momentum=0.9),
        "adam": lambda: ops.adam_(p, g, m, v, step=3),
        "rmsprop": lambda: ops.rmsprop_(p, g, v, lr=0.01),
        "adagrad": lambda: ops.adagrad_(p, g, v, step=3),
    }


def _force(variant: str) -> Callable[[], object]:
    """Make every kernel run ``variant`` (between timed blocks, not inside them)."""

    def switch() -> None:
        for k in _jit.REGISTRY.values():
            k.min_size = 0 if variant == "parallel" else sys.maxsize

    return switch


def _restore() -> None:
    for k in _jit.REGISTRY.values():
        k.min_size = k.parallel_min


def main() -> None:
    gc.warmup(dtypes=("float32",))
    sizes = [2**k for k in range(11, 23)]
    rng = np.random.default_rng(0)
    table: dict[str, list[tuple[int, float, float]]] = {}
    for n in sizes:
        for name, fn in _ops(n, rng).items():
            serial, parallel = interleaved(
                [fn, fn],
                setups=[_force("serial"), _force("parallel")],
                rounds=5,
                pause=0.02,
                block_seconds=0.01,
            )
            table.setdefault(name, []).append((n, serial.median, parallel.median))
    _restore()
    print(f"{gc.get_num_threads()} threads; serial / parallel medians, float32\n")
    print(f"{'op':30} {'threshold':>10}   " + " ".join(f"{n:>9}" for n in sizes))
    for name, rows in table.items():
        threshold = None
        for i in range(len(rows)):
            if all(p < s for _, s, p in rows[i:]):
                threshold = rows[i][0]
                break
        cells = " ".join(f"{s / p:9.2f}" for _, s, p in rows)
        print(f"{name:30} {threshold if threshold else 'never':>10}   {cells}")
    print("\ncells: serial time / parallel time (> 1: parallel wins)")
    print(
        "largest sizes: "
        + ", ".join(
            f"{name} {fmt_time(rows[-1][1])}/{fmt_time(rows[-1][2])}"
            for name, rows in list(table.items())[:3]
        )
    )


if __name__ == "__main__":
    main()
