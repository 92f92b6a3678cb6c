"""Reductions over a (A, R, B) view: reduce the middle axis, keep A and B.

Every output element is accumulated by one thread in a fixed order (float64 accumulators),
and whole-array sums use a fixed number of chunks added serially, so results are
bit-identical for any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array

_PAR = 32768
BLOCK = 512  # columns per task when B > 1: long enough to vectorise, short enough to share out
CHUNKS = 64  # fixed chunk count for whole-array reductions


@kernel(_PAR)
def sum_chunks(x: Array, partial: Array) -> None:
    """partial[c] = sum of chunk c of flat x, accumulated in float64."""
    n = x.size
    nc = partial.size
    step = (n + nc - 1) // nc
    for c in prange(nc):
        acc = np.float64(0.0)
        for i in range(c * step, min((c + 1) * step, n)):
            acc += x[i]
        partial[c] = acc


@kernel(_PAR)
def sum_arb(x: Array, out: Array) -> None:
    """out[a, b] = sum_r x[a, r, b] in float64 (``out`` is float64)."""
    n_a, n_r, n_b = x.shape
    if n_b == 1:
        for a in prange(n_a):
            acc = np.float64(0.0)
            for r in range(n_r):
                acc += x[a, r, 0]
            out[a, 0] = acc
    else:
        n_blocks = (n_b + BLOCK - 1) // BLOCK
        for task in prange(n_a * n_blocks):
            a = task // n_blocks
            b0 = (task % n_blocks) * BLOCK
            b1 = min(b0 + BLOCK, n_b)
            for b in range(b0, b1):
                out[a, b] = 0.0
            for r in range(n_r):
                for b in range(b0, b1):
                    out[a, b] += x[a, r, b]


@kernel(_PAR)
def extreme_arb(x: Array, want_max: bool, out: Array) -> None:
    """out[a, b] = max (or min) over r of x[a, r, b]; NaN propagates; requires R >= 1."""
    n_a, n_r, n_b = x.shape
    if n_b == 1:
        for a in prange(n_a):
            m = x[a, 0, 0]
            nan = m != m
            for r in range(1, n_r):
                v = x[a, r, 0]
                nan |= v != v
                if want_max:
                    m = v if v > m else m
                else:
                    m = v if v < m else m
            out[a, 0] = np.nan if nan else m
    else:
        n_blocks = (n_b + BLOCK - 1) // BLOCK
        for task in prange(n_a * n_blocks):
            a = task // n_blocks
            b0 = (task % n_blocks) * BLOCK
            b1 = min(b0 + BLOCK, n_b)
            for b in range(b0, b1):
                out[a, b] = x[a, 0, b]
            for r in range(1, n_r):
                for b in range(b0, b1):
                    v = x[a, r, b]
                    m = out[a, b]
                    if want_max:
                        out[a, b] = v if (v > m or v != v) else m
                    else:
                        out[a, b] = v if (v < m or v != v) else m
            # a NaN in out[a, b] could be replaced by a later finite v? no: v > NaN and
            # v < NaN are False and v != v is False for finite v, so NaN stays.


@kernel(_PAR)
def var_arb(x: Array, ddof: float, out: Array) -> None:
    """out[a, b] = var over r of x[a, r, b] (two-pass, float64); ``out`` is float64."""
    n_a, n_r, n_b = x.shape
    denom = n_r - ddof
    if n_b == 1:
        for a in prange(n_a):
            s = np.float64(0.0)
            for r in range(n_r):
                s += x[a, r, 0]
            mean = s / n_r
            ss = np.float64(0.0)
            for r in range(n_r):
                d = x[a, r, 0] - mean
                ss += d * d
            out[a, 0] = ss / denom
    else:
        n_blocks = (n_b + BLOCK - 1) // BLOCK
        for task in prange(n_a * n_blocks):
            a = task // n_blocks
            b0 = (task % n_blocks) * BLOCK
            b1 = min(b0 + BLOCK, n_b)
            mean = np.zeros(b1 - b0, dtype=np.float64)
            for r in range(n_r):
                for b in range(b0, b1):
                    mean[b - b0] += x[a, r, b]
            for b in range(b0, b1):
                mean[b - b0] /= n_r
                out[a, b] = 0.0
            for r in range(n_r):
                for b in range(b0, b1):
                    d = x[a, r, b] - mean[b - b0]
                    out[a, b] += d * d
            for b in range(b0, b1):
                out[a, b] /= denom


@kernel(_PAR)
def var_backward_arb(x: Array, mean: Array, grad: Array, scale: float, out: Array) -> None:
    """out[a, r, b] = grad[a, b] * scale * (x[a, r, b] - mean[a, b]), scale = 2 / (R - ddof)."""
    n_a, n_r, n_b = x.shape
    for ar in prange(n_a * n_r):
        a = ar // n_r
        r = ar % n_r
        for b in range(n_b):
            out[a, r, b] = grad[a, b] * scale * (x[a, r, b] - mean[a, b])


@kernel(_PAR)
def extreme_backward_arb(x: Array, y: Array, grad: Array, out: Array) -> None:
    """Gradient of max/min: grad split evenly between the elements equal to the result."""
    n_a, n_r, n_b = x.shape
    for a in prange(n_a):
        for b in range(n_b):
            m = y[a, b]
            is_nan = m != m
            count = 0
            for r in range(n_r):
                v = x[a, r, b]
                if v == m or (is_nan and v != v):
                    count += 1
            share = grad[a, b] / count if count > 0 else 0.0
            for r in range(n_r):
                v = x[a, r, b]
                out[a, r, b] = share if (v == m or (is_nan and v != v)) else 0.0
