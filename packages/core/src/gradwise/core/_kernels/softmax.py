"""Row-wise softmax family and the fused softmax-cross-entropy, over (rows, classes) arrays.

Each row is one task: exp comes from ``vexp`` (vectorised, see vmath.py), so a softmax is
one pass that exponentiates and sums plus one that scales, with the row still in cache;
the cross-entropy gradient is a single pass. The row max that shifts the exponent is
NumPy's (a NaN-propagating max does not vectorise in Numba; see reduce.py) and arrives
as ``shift``; a row whose max is not finite is not shifted.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradwise.core._jit import kernel, reassociating
from gradwise.core._kernels.vmath import vexp
from gradwise.core.dtypes import Array


@reassociating
def row_sum(row: Array) -> float:
    """sum(row) in float64, compiled with ``reassoc`` so that it vectorises even when called
    from an exact kernel (fast-math flags stay on the instructions LLVM inlines).
    """
    s = np.float64(0.0)
    for j in range(row.size):
        s += row[j]
    return s


@kernel(131072, exact=True)
def softmax_rows(x: Array, shift: Array, out: Array) -> None:
    """out[i] = exp(x[i] - shift[i]) / sum(exp(x[i] - shift[i]))."""
    for i in prange(x.shape[0]):
        xr = x[i]
        orow = out[i]
        sh = xr.dtype.type(shift[i])
        sh = sh if sh - sh == 0.0 else xr.dtype.type(0.0)  # -inf/inf/NaN rows: no shift
        for j in range(xr.size):
            orow[j] = vexp(xr[j] - sh)
        inv = orow.dtype.type(1.0 / row_sum(orow))
        for j in range(xr.size):
            orow[j] *= inv


@kernel(131072, exact=True)
def logsumexp_rows(x: Array, shift: Array, work: Array, lse: Array) -> None:
    """lse[i] = shift[i] + log(sum(exp(x[i] - shift[i]))) in float64; -inf for empty rows.

    ``work`` (same shape as x) receives the exponentials: a vectorised pass, then a
    vectorised sum, instead of one serial loop that does both.
    """
    for i in prange(x.shape[0]):
        xr = x[i]
        wr = work[i]
        sh = xr.dtype.type(shift[i])
        sh = sh if sh - sh == 0.0 else xr.dtype.type(0.0)  # -inf/inf/NaN rows: no shift
        for j in range(xr.size):
            wr[j] = vexp(xr[j] - sh)
        s = row_sum(wr)
        lse[i] = sh + math.log(s) if s > 0.0 else (s if s != s else -np.inf)


@kernel(131072)
def subtract_rows(x: Array, v: Array, out: Array) -> None:
    """out[i, j] = x[i, j] - v[i]."""
    for i in prange(x.shape[0]):
        xr = x[i]
        orow = out[i]
        vi = xr.dtype.type(v[i])
        for j in range(xr.size):
            orow[j] = xr[j] - vi


@kernel(32768)
def softmax_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = y * (grad - sum_j grad_j y_j), per row."""
    for i in prange(y.shape[0]):
        yr = y[i]
        gr = grad[i]
        orow = out[i]
        s = np.float64(0.0)
        for j in range(yr.size):
            s += gr[j] * yr[j]
        s_ = yr.dtype.type(s)
        for j in range(yr.size):
            orow[j] = yr[j] * (gr[j] - s_)


@kernel(32768, exact=True)
def log_softmax_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = grad - exp(y) * sum_j grad_j, per row (y = log_softmax(x))."""
    for i in prange(y.shape[0]):
        yr = y[i]
        gr = grad[i]
        orow = out[i]
        s = np.float64(0.0)
        for j in range(yr.size):
            s += gr[j]
        s_ = yr.dtype.type(s)
        for j in range(yr.size):
            orow[j] = gr[j] - vexp(yr[j]) * s_


@kernel(65536, exact=True)
def cross_entropy_backward_rows(
    x: Array,
    lse: Array,
    target: Array,
    weight: Array,
    grad: Array,
    ignore_index: int,
    smoothing: float,
    weight_sum: float,
    out: Array,
) -> int:
    """dx = g_i ((1-eps) w_t (p - onehot) + eps/C (W p - w)), p = exp(x - lse), W = sum(w).

    Three passes: the shifted logits x - lse per row, their exponentials in one flat loop
    (which vectorises even when rows are short), then each row's scaling. Ignored rows
    get 0. Rows whose target is outside [0, C) get 0 too and are counted: the return
    value, which ops turns into an IndexError.
    """
    n, c = x.shape
    for i in prange(n):
        xr = x[i]
        orow = out[i]
        li = orow.dtype.type(lse[i])
        for j in range(c):
            orow[j] = xr[j] - li
    flat = out.reshape(-1)
    for k in prange(flat.size):
        flat[k] = vexp(flat[k])
    bad = 0
    for i in prange(n):
        orow = out[i]
        t = target[i]
        if t == ignore_index or t < 0 or t >= c:
            orow[:] = 0.0
            if t != ignore_index:
                bad += 1
            continue
        gi = grad[i]
        a = gi * (1.0 - smoothing) * weight[t]
        if smoothing == 0.0:
            a_ = orow.dtype.type(a)
            for j in range(c):
                orow[j] = a_ * orow[j]
        else:
            b = gi * smoothing / c
            coef = orow.dtype.type(a + b * weight_sum)
            for j in range(c):
                orow[j] = coef * orow[j] - b * weight[j]
        orow[t] -= a
    return bad


@kernel(262144, exact=True)
def cross_entropy_lse_rows(
    x: Array,
    target: Array,
    weight: Array,
    ignore_index: int,
    smoothing: float,
    work: Array,
    lse: Array,
    losses: Array,
    target_weight: Array,
) -> int:
    """Per-row cross-entropy loss from logits (PyTorch's definition), with its logsumexp.

    loss_i = (1 - eps) w[t] (lse - x[t]) + (eps / C) sum_c w[c] (lse - x[c]); 0 if ignored.
    target_weight[i] = w[t_i] (0 if ignored): the denominator of the mean reduction;
    -1 marks a target outside [0, C).

    The row max (a row whose max is not finite is not shifted; NaNs make the row's lse NaN
    whatever the shift) and the shifted logits into ``work`` (x's shape), their exponentials in
    one flat pass (which vectorises even when rows are short), then per row the float64
    logsumexp, the loss and the weight; returns how many targets lie outside [0, C).
    """
    n, c = x.shape
    for i in prange(n):  # shifted logits into work
        xr = x[i]
        wr = work[i]
        m = xr[0]
        for j in range(c):
            v = xr[j]
            m = v if v > m else m  # skips NaNs (past the first); a NaN makes the lse NaN anyway
        sh = m if m - m == 0.0 else xr.dtype.type(0.0)  # -inf/inf/NaN: no shift
        for j in range(c):
            wr[j] = xr[j] - sh
        lse[i] = sh
    flat = work.reshape(-1)
    for k in prange(flat.size):  # one long loop vectorises; short rows of it would not
        flat[k] = vexp(flat[k])
    bad = 0
    for i in prange(n):
        xr = x[i]
        s = row_sum(work[i])
        li = lse[i] + math.log(s) if s > 0.0 else (s if s != s else -np.inf)
        lse[i] = li
        t = target[i]
        if t == ignore_index:
            losses[i] = 0.0
            target_weight[i] = 0.0
            continue
        if t < 0 or t >= c:  # reported by ops as an IndexError
            losses[i] = np.nan
            target_weight[i] = -1.0
            bad += 1
            continue
        wt = weight[t]
        loss = (1.0 - smoothing) * wt * (li - xr[t])
        if smoothing != 0.0:
            acc = np.float64(0.0)
            for j in range(c):
                acc += weight[j] * (li - xr[j])
            loss += smoothing / c * acc
        losses[i] = loss
        target_weight[i] = wt
    return bad
