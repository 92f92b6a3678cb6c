"""Fused in-place optimizer updates: one pass over each parameter, PyTorch's update rules.

Hyper-parameters arrive as float64 scalars; arithmetic on float32 state runs in float64
and is stored back as float32, which is at least as accurate as PyTorch's float32 steps.
"""

from __future__ import annotations

import math

from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array

_PAR = 65536


@kernel(_PAR)
def sgd(
    param: Array,
    grad: Array,
    buf: Array,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    """d = +-g + wd p;  buf = d (first step) or m buf + (1 - damp) d;  p -= lr (d + m buf | buf).

    With ``momentum == 0`` the buffer is not touched (pass any array).
    """
    for i in prange(param.size):
        d = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0.0:
            d += weight_decay * p
        if momentum != 0.0:
            b = d if first_step else momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        param[i] = p - lr * d


@kernel(_PAR)
def adam(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step: int,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> None:
    """Adam (``decoupled=False``, L2 decay added to g) or AdamW (p *= 1 - lr wd).

    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) if amsgrad;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """
    bias1 = 1.0 - beta1**step
    bias2_sqrt = math.sqrt(1.0 - beta2**step)
    step_size = lr / bias1
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0.0:
            if decoupled:
                p = p * (1.0 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = exp_avg[i] + (1.0 - beta1) * (g - exp_avg[i])  # lerp, as torch.lerp_
        v = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            vm = max_exp_avg_sq[i]
            vm = v if v > vm else vm
            max_exp_avg_sq[i] = vm
            v = vm
        param[i] = p - step_size * m / (math.sqrt(v) / bias2_sqrt + eps)


@kernel(_PAR)
def rmsprop(
    param: Array,
    grad: Array,
    square_avg: Array,
    grad_avg: Array,
    buf: Array,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """v = a v + (1-a) g^2;  avg = sqrt(v - gavg^2 if centered else v) + eps;
    buf = m buf + g / avg, p -= lr buf (momentum > 0) or p -= lr g / avg."""
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0.0:
            g = g + weight_decay * p
        v = alpha * square_avg[i] + (1.0 - alpha) * g * g
        square_avg[i] = v
        if centered:
            ga = grad_avg[i] + (1.0 - alpha) * (g - grad_avg[i])
            grad_avg[i] = ga
            avg = math.sqrt(v - ga * ga) + eps
        else:
            avg = math.sqrt(v) + eps
        if momentum > 0.0:
            b = momentum * buf[i] + g / avg
            buf[i] = b
            param[i] = p - lr * b
        else:
            param[i] = p - lr * g / avg


@kernel(_PAR)
def adagrad(
    param: Array,
    grad: Array,
    state_sum: Array,
    clr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """s += g^2;  p -= clr g / (sqrt(s) + eps), clr = lr / (1 + (t - 1) lr_decay)."""
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0.0:
            g = g + weight_decay * p
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = p - clr * g / (math.sqrt(s) + eps)
