"""Sums and variances over a (A, R, B) view: reduce the middle axis, keep A and B.

Every output element is accumulated by one thread in a fixed order (float64 accumulators),
and whole-array sums use a fixed number of chunks added serially, so results are
bit-identical for any thread count.

Loops run over 1-D slices indexed from 0 (``row = x[a]``; ``for r in range(row.size)``):
with loop bounds Numba cannot prove non-negative it keeps negative-index wrap-around
checks, which stop LLVM from vectorising (measured: 31 us against 5 us for a 64K sum).

Max and min are not here: their NaN-propagating compare-and-select loop does not vectorise
(88 us against NumPy's 5 us at 64K), so ``ops`` uses NumPy's SIMD reductions.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array

CHUNKS = 64  # fixed chunk count for whole-array reductions


def column_block(n_a: int, n_b: int) -> int:
    """Columns per task when B > 1: at least 16 (to vectorise), and small enough that a
    single (R, B) slab still splits into ~8 tasks to share out."""
    if n_a >= 8:
        return n_b
    return max(16, -(-n_b // 8))


@kernel(131072)
def sum_chunks(x: Array, partial: Array) -> None:
    """partial[c] = sum of chunk c of flat x, accumulated in float64."""
    n = x.size
    nc = partial.size
    step = (n + nc - 1) // nc
    for c in prange(nc):
        chunk = x[c * step : min((c + 1) * step, n)]
        acc = np.float64(0.0)
        for i in range(chunk.size):
            acc += chunk[i]
        partial[c] = acc


@kernel(131072)
def sum_rows(x: Array, out: Array) -> None:
    """out[a] = sum_r x[a, r] in float64 (``out`` is float64)."""
    for a in prange(x.shape[0]):
        row = x[a]
        acc = np.float64(0.0)
        for r in range(row.size):
            acc += row[r]
        out[a] = acc


@kernel(32768)
def sum_cols(x: Array, block: int, out: Array) -> None:
    """out[a, b] = sum_r x[a, r, b] in float64, in column blocks (``out`` is float64)."""
    n_a, n_r, n_b = x.shape
    n_blocks = (n_b + block - 1) // block
    for task in prange(n_a * n_blocks):
        a = task // n_blocks
        b0 = (task % n_blocks) * block
        acc = out[a, b0 : min(b0 + block, n_b)]
        acc[:] = 0.0
        for r in range(n_r):
            xr = x[a, r, b0 : b0 + acc.size]
            for b in range(acc.size):
                acc[b] += xr[b]


@kernel(131072)
def var_rows(x: Array, ddof: float, out: Array) -> None:
    """out[a] = var_r x[a, r], two-pass in float64 (``out`` is float64)."""
    n_r = x.shape[1]
    for a in prange(x.shape[0]):
        row = x[a]
        s = np.float64(0.0)
        for r in range(n_r):
            s += row[r]
        mean = s / n_r
        ss = np.float64(0.0)
        for r in range(n_r):
            d = row[r] - mean
            ss += d * d
        out[a] = ss / (n_r - ddof)


@kernel(32768)
def var_cols(x: Array, block: int, ddof: float, out: Array) -> None:
    """out[a, b] = var_r x[a, r, b], two-pass in float64, in column blocks."""
    n_a, n_r, n_b = x.shape
    n_blocks = (n_b + block - 1) // block
    for task in prange(n_a * n_blocks):
        a = task // n_blocks
        b0 = (task % n_blocks) * block
        acc = out[a, b0 : min(b0 + block, n_b)]
        mean = np.zeros(acc.size, dtype=np.float64)
        for r in range(n_r):
            xr = x[a, r, b0 : b0 + acc.size]
            for b in range(acc.size):
                mean[b] += xr[b]
        for b in range(acc.size):
            mean[b] /= n_r
            acc[b] = 0.0
        for r in range(n_r):
            xr = x[a, r, b0 : b0 + acc.size]
            for b in range(acc.size):
                d = xr[b] - mean[b]
                acc[b] += d * d
        for b in range(acc.size):
            acc[b] /= n_r - ddof


@kernel(8192)
def var_backward(x: Array, mean: Array, grad: Array, scale: float, out: Array) -> None:
    """out[a, r, b] = grad[a, b] * scale * (x[a, r, b] - mean[a, b]), scale = 2 / (R - ddof)."""
    n_a, n_r, n_b = x.shape
    for ar in prange(n_a * n_r):
        a = ar // n_r
        xr = x[a, ar % n_r]
        orow = out[a, ar % n_r]
        g = grad[a]
        m = mean[a]
        for b in range(n_b):
            orow[b] = g[b] * scale * (xr[b] - m[b])


@kernel(8192)
def extreme_backward(x: Array, y: Array, grad: Array, out: Array) -> None:
    """Gradient of max/min over r: grad split evenly between the elements equal to y."""
    n_a, n_r, n_b = x.shape
    for a in prange(n_a):
        ya = y[a]
        ga = grad[a]
        count = np.zeros(n_b, dtype=np.int64)
        for r in range(n_r):
            xr = x[a, r]
            for b in range(n_b):
                v = xr[b]
                m = ya[b]
                count[b] += (v == m) or (v != v and m != m)
        for r in range(n_r):
            xr = x[a, r]
            orow = out[a, r]
            for b in range(n_b):
                v = xr[b]
                m = ya[b]
                hit = (v == m) or (v != v and m != m)
                orow[b] = ga[b] / count[b] if hit else 0.0
