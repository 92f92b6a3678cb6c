"""Row-wise softmax family and the fused softmax-cross-entropy, over (rows, classes) arrays.

As with activations, ``exp`` runs in NumPy between these passes (see activation.py); the
passes here fuse everything else: row max and shift, normalisation, the loss gather, and
the whole cross-entropy gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array

_PAR = 16384


@kernel(_PAR)
def shift_by_max(x: Array, out: Array, row_max: Array) -> None:
    """row_max[i] = max_j x[i, j] (NaN propagates); out = x - row_max (0 shift if not finite)."""
    n, c = x.shape
    for i in prange(n):
        m = -np.inf
        nan = False
        for j in range(c):
            v = x[i, j]
            nan |= v != v
            m = v if v > m else m
        if nan:
            m = np.nan
        row_max[i] = m
        shift = m if (m - m) == 0.0 else 0.0  # finite m only: -inf rows stay -inf
        for j in range(c):
            out[i, j] = x[i, j] - shift


@kernel(_PAR)
def normalize_rows(e: Array) -> None:
    """e[i, :] /= sum_j e[i, j]   (softmax from exp of shifted rows)."""
    n, c = e.shape
    for i in prange(n):
        s = np.float64(0.0)
        for j in range(c):
            s += e[i, j]
        inv = 1.0 / s
        for j in range(c):
            e[i, j] *= inv


@kernel(_PAR)
def row_log_sum(e: Array, row_max: Array, lse: Array) -> None:
    """lse[i] = shift_i + log(sum_j e[i, j]): logsumexp from exp of shifted rows."""
    n, c = e.shape
    for i in prange(n):
        s = np.float64(0.0)
        for j in range(c):
            s += e[i, j]
        m = row_max[i]
        shift = m if (m - m) == 0.0 else 0.0
        if m != m:
            lse[i] = np.nan
        else:
            lse[i] = shift + math.log(s) if s > 0.0 else -np.inf


@kernel(_PAR)
def subtract_rows(x: Array, v: Array, out: Array) -> None:
    """out[i, j] = x[i, j] - v[i]."""
    n, c = x.shape
    for i in prange(n):
        vi = v[i]
        for j in range(c):
            out[i, j] = x[i, j] - vi


@kernel(_PAR)
def softmax_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = y * (grad - sum_j grad_j y_j), per row."""
    n, c = y.shape
    for i in prange(n):
        s = np.float64(0.0)
        for j in range(c):
            s += grad[i, j] * y[i, j]
        for j in range(c):
            out[i, j] = y[i, j] * (grad[i, j] - s)


@kernel(_PAR)
def log_softmax_backward(p: Array, grad: Array, out: Array) -> None:
    """Given p = exp(y) = softmax: dx = grad - p * sum_j grad_j, per row."""
    n, c = p.shape
    for i in prange(n):
        s = np.float64(0.0)
        for j in range(c):
            s += grad[i, j]
        for j in range(c):
            out[i, j] = grad[i, j] - p[i, j] * s


@kernel(_PAR)
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
    n, c = x.shape
    for i in prange(n):
        t = target[i]
        if t == ignore_index:
            losses[i] = 0.0
            target_weight[i] = 0.0
            continue
        li = lse[i]
        wt = weight[t]
        loss = (1.0 - smoothing) * wt * (li - x[i, t])
        if smoothing != 0.0:
            s = np.float64(0.0)
            for j in range(c):
                s += weight[j] * (li - x[i, j])
            loss += smoothing / c * s
        losses[i] = loss
        target_weight[i] = wt


@kernel(_PAR)
def cross_entropy_backward_rows(
    p: Array,
    target: Array,
    weight: Array,
    grad: Array,
    ignore_index: int,
    smoothing: float,
    weight_sum: float,
) -> None:
    """In place on p = softmax(x): dx = g_i ((1-eps) w_t (p - onehot) + eps/C (W p - w)), W = sum(w).."""
    n, c = p.shape
    for i in prange(n):
        t = target[i]
        if t == ignore_index:
            for j in range(c):
                p[i, j] = 0.0
            continue
        gi = grad[i]
        a = gi * (1.0 - smoothing) * weight[t]
        b = gi * smoothing / c
        coef = a + b * weight_sum
        for j in range(c):
            p[i, j] = coef * p[i, j] - b * weight[j]
        p[i, t] -= a
