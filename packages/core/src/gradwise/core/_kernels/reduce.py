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


def row_chunks(n_a: int, n_r: int) -> int:
    """How many fixed chunks of the R axis a column reduction splits into.

    Depends on the shape alone (never the thread count), so partial sums, added in a
    fixed order afterwards, give bit-identical results on any number of threads.
    """
    if n_a >= 8:
        return 1
    return max(1, min(8, n_r // 64))


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


def column_blocks(n_c: int, n_b: int) -> int:
    """How many blocks of at least 512 columns to split B into, for ~8 tasks in all."""
    return max(1, min(8 // n_c, n_b // 512))


@kernel(32768)
def sum_cols(x: Array, n_blocks: int, partial: Array) -> None:
    """partial[a, c, b] = sum over chunk c of r of x[a, r, b], in float64.

    Tasks are (a, row chunk, column block); each adds row segments of >= 512 columns (or
    whole rows) into one accumulator, so the inner loops are long and vectorise.
    """
    n_a, n_r, n_b = x.shape
    n_c = partial.shape[1]
    step = (n_r + n_c - 1) // n_c
    width = (n_b + n_blocks - 1) // n_blocks
    for task in prange(n_a * n_c * n_blocks):
        a = task // (n_c * n_blocks)
        c = (task // n_blocks) % n_c
        b0 = (task % n_blocks) * width
        acc = partial[a, c, b0 : min(b0 + width, n_b)]
        acc[:] = 0.0
        for r in range(c * step, min((c + 1) * step, n_r)):
            xr = x[a, r, b0 : b0 + acc.size]
            for b in range(acc.size):
                acc[b] += xr[b]


@kernel(32768)
def sq_dev_cols(x: Array, mean: Array, n_blocks: int, partial: Array) -> None:
    """partial[a, c, b] = sum over chunk c of r of (x[a, r, b] - mean[a, b])^2, in float64."""
    n_a, n_r, n_b = x.shape
    n_c = partial.shape[1]
    step = (n_r + n_c - 1) // n_c
    width = (n_b + n_blocks - 1) // n_blocks
    for task in prange(n_a * n_c * n_blocks):
        a = task // (n_c * n_blocks)
        c = (task // n_blocks) % n_c
        b0 = (task % n_blocks) * width
        acc = partial[a, c, b0 : min(b0 + width, n_b)]
        m = mean[a, b0 : b0 + acc.size]
        acc[:] = 0.0
        for r in range(c * step, min((c + 1) * step, n_r)):
            xr = x[a, r, b0 : b0 + acc.size]
            for b in range(acc.size):
                d = xr[b] - m[b]
                acc[b] += d * d


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
