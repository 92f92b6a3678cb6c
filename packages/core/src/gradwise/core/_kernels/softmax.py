"""Row-wise softmax family and the fused softmax-cross-entropy, over (rows, classes) arrays.

As with activations, ``exp`` runs in NumPy between these passes (see activation.py), and
so does the row max (see reduce.py); the passes here fuse everything else: the shift,
normalisation, the loss gather, and the whole cross-entropy gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array


@kernel(262144)
def subtract_rows(x: Array, v: Array, out: Array) -> None:
    """out[i, j] = x[i, j] - v[i]."""
    for i in prange(x.shape[0]):
        xr = x[i]
        orow = out[i]
        vi = xr.dtype.type(v[i])
        for j in range(xr.size):
            orow[j] = xr[j] - vi


@kernel(262144)
def normalize_rows(e: Array) -> None:
    """e[i, :] /= sum_j e[i, j]   (softmax from exp of shifted rows)."""
    for i in prange(e.shape[0]):
        row = e[i]
        s = np.float64(0.0)
        for j in range(row.size):
            s += row[j]
        inv = row.dtype.type(1.0 / s)
        for j in range(row.size):
            row[j] *= inv


@kernel(262144)
def row_log_sum(e: Array, shift: Array, lse: Array) -> None:
    """lse[i] = shift[i] + log(sum_j e[i, j]): logsumexp from exp of shifted rows (float64)."""
    for i in prange(e.shape[0]):
        row = e[i]
        s = np.float64(0.0)
        for j in range(row.size):
            s += row[j]
        lse[i] = shift[i] + math.log(s) if s > 0.0 else (s if s != s else -np.inf)


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


@kernel(32768)
def log_softmax_backward(p: Array, grad: Array, out: Array) -> None:
    """Given p = exp(y) = softmax: dx = grad - p * sum_j grad_j, per row."""
    for i in prange(p.shape[0]):
        pr = p[i]
        gr = grad[i]
        orow = out[i]
        s = np.float64(0.0)
        for j in range(pr.size):
            s += gr[j]
        s_ = pr.dtype.type(s)
        for j in range(pr.size):
            orow[j] = gr[j] - pr[j] * s_


@kernel(262144)
def cross_entropy_rows(
    x: Array,
    lse: Array,
    target: Array,
    weight: Array,
    ignore_index: int,
    smoothing: float,
    losses: Array,
    target_weight: Array,
) -> None:
    """Per-row loss from logits and their logsumexp (PyTorch's definition).

    loss_i = (1 - eps) w[t] (lse - x[t]) + (eps / C) sum_c w[c] (lse - x[c]); 0 if ignored.
    target_weight[i] = w[t_i] (0 if ignored): the denominator of the mean reduction.
    """
    c = x.shape[1]
    for i in prange(x.shape[0]):
        t = target[i]
        if t == ignore_index:
            losses[i] = 0.0
            target_weight[i] = 0.0
            continue
        xr = x[i]
        li = lse[i]
        wt = weight[t]
        loss = (1.0 - smoothing) * wt * (li - xr[t])
        if smoothing != 0.0:
            s = np.float64(0.0)
            for j in range(c):
                s += weight[j] * (li - xr[j])
            loss += smoothing / c * s
        losses[i] = loss
        target_weight[i] = wt


@kernel(524288)
def cross_entropy_backward_rows(
    p: Array,
    target: Array,
    weight: Array,
    grad: Array,
    ignore_index: int,
    smoothing: float,
    weight_sum: float,
) -> None:
    """In place on p = softmax(x): dx = g_i ((1-eps) w_t (p - onehot) + eps/C (W p - w)).

    W = sum(w). Ignored rows get 0.
    """
    c = p.shape[1]
    zero = p.dtype.type(0.0)
    for i in prange(p.shape[0]):
        row = p[i]
        t = target[i]
        if t == ignore_index:
            row[:] = zero
            continue
        gi = grad[i]
        a = gi * (1.0 - smoothing) * weight[t]
        if smoothing == 0.0:
            a_ = row.dtype.type(a)
            for j in range(c):
                row[j] *= a_
        else:
            b = gi * smoothing / c
            coef = row.dtype.type(a + b * weight_sum)
            for j in range(c):
                row[j] = coef * row[j] - b * weight[j]
        row[t] -= a
