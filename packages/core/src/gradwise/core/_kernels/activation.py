"""Activation loops over flat arrays, forward beside backward.

Transcendental functions (exp, tanh, log1p) are *not* evaluated here: PyPI's llvmlite has
no vector math library, so a Numba loop calling ``math.exp`` runs ~8x slower than NumPy's
SIMD ufunc (measured: 3.8 ms against 0.47 ms for 1M float32). ``ops`` therefore runs such
activations as pre-pass (here) -> NumPy ufunc in place -> fused post-pass (here).
The one exception is ``erf``, which NumPy lacks: the exact GELU calls ``math.erf``.
"""

from __future__ import annotations

import math

from numba import prange

from gradwise.core._jit import kernel
from gradwise.core.dtypes import Array

_PAR = 65536
_PAR_HEAVY = 8192  # loops calling libm (erf, exp) per element amortise threads sooner


@kernel(_PAR)
def relu(x: Array, out: Array) -> None:
    """y = max(x, 0), NaN kept."""
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.0 if v <= 0.0 else v


@kernel(_PAR)
def relu_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad where x > 0 else 0 (relu'(0) = 0)."""
    for i in prange(x.size):
        out[i] = grad[i] if x[i] > 0.0 else 0.0


@kernel(_PAR)
def leaky_relu(x: Array, slope: float, out: Array) -> None:
    """y = x if x > 0 else slope * x."""
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0.0 else v * slope


@kernel(_PAR)
def leaky_relu_backward(x: Array, grad: Array, slope: float, out: Array) -> None:
    """dx = grad if x > 0 else slope * grad."""
    for i in prange(x.size):
        out[i] = grad[i] if x[i] > 0.0 else grad[i] * slope


@kernel(_PAR)
def neg_abs_scaled(x: Array, scale: float, out: Array) -> None:
    """out = -|scale * x|: the argument of exp in stable sigmoid, silu and softplus."""
    for i in prange(x.size):
        out[i] = -abs(x[i] * scale)


@kernel(_PAR)
def sigmoid_from_exp(x: Array, e: Array, out: Array) -> None:
    """Given e = exp(-|x|): y = 1/(1+e) for x >= 0, e/(1+e) otherwise (never overflows)."""
    for i in prange(x.size):
        ei = e[i]
        r = 1.0 / (1.0 + ei)
        out[i] = r if x[i] >= 0.0 else ei * r


@kernel(_PAR)
def sigmoid_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = grad * y * (1 - y)."""
    for i in prange(y.size):
        yi = y[i]
        out[i] = grad[i] * yi * (1.0 - yi)


@kernel(_PAR)
def tanh_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = grad * (1 - y^2)."""
    for i in prange(y.size):
        yi = y[i]
        out[i] = grad[i] * (1.0 - yi * yi)


@kernel(_PAR)
def silu_from_exp(x: Array, e: Array, out: Array) -> None:
    """Given e = exp(-|x|): y = x * sigmoid(x)."""
    for i in prange(x.size):
        xi = x[i]
        ei = e[i]
        r = 1.0 / (1.0 + ei)
        out[i] = xi * (r if xi >= 0.0 else ei * r)


@kernel(_PAR)
def silu_backward_from_exp(x: Array, e: Array, grad: Array, out: Array) -> None:
    """Given e = exp(-|x|), s = sigmoid(x): dx = grad * s * (1 + x * (1 - s))."""
    for i in prange(x.size):
        xi = x[i]
        ei = e[i]
        r = 1.0 / (1.0 + ei)
        s = r if xi >= 0.0 else ei * r
        out[i] = grad[i] * s * (1.0 + xi * (1.0 - s))


@kernel(_PAR)
def softplus_from_log1p(x: Array, l1p: Array, beta: float, threshold: float, out: Array) -> None:
    """Given l1p = log1p(exp(-|beta x|)): y = (l1p + max(beta x, 0)) / beta, or x past threshold."""
    for i in prange(x.size):
        xi = x[i]
        bx = xi * beta
        if bx > threshold:
            out[i] = xi
        else:
            out[i] = (l1p[i] + (bx if bx > 0.0 else 0.0)) / beta


@kernel(_PAR)
def softplus_backward_from_exp(
    x: Array, e: Array, grad: Array, beta: float, threshold: float, out: Array
) -> None:
    """Given e = exp(-|beta x|): dx = grad * sigmoid(beta x), or grad past threshold."""
    for i in prange(x.size):
        bx = x[i] * beta
        if bx > threshold:
            out[i] = grad[i]
        else:
            ei = e[i]
            r = 1.0 / (1.0 + ei)
            out[i] = grad[i] * (r if bx >= 0.0 else ei * r)


_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_GELU_K = 0.7978845608028654  # sqrt(2 / pi)
_GELU_C = 0.044715


@kernel(_PAR_HEAVY)
def gelu_erf(x: Array, out: Array) -> None:
    """y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))."""
    for i in prange(x.size):
        xi = x[i]
        out[i] = 0.5 * xi * (1.0 + math.erf(xi * _SQRT_HALF))


@kernel(_PAR_HEAVY)
def gelu_erf_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad * (Phi(x) + x phi(x))."""
    for i in prange(x.size):
        xi = x[i]
        cdf = 0.5 * (1.0 + math.erf(xi * _SQRT_HALF))
        pdf = _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
        out[i] = grad[i] * (cdf + xi * pdf)


@kernel(_PAR)
def gelu_tanh_inner(x: Array, out: Array) -> None:
    """out = sqrt(2/pi) (x + 0.044715 x^3): the argument of tanh in the tanh GELU."""
    for i in prange(x.size):
        xi = x[i]
        out[i] = _GELU_K * (xi + _GELU_C * xi * xi * xi)


@kernel(_PAR)
def gelu_tanh_from_tanh(x: Array, t: Array, out: Array) -> None:
    """Given t = tanh(inner): y = 0.5 x (1 + t)."""
    for i in prange(x.size):
        out[i] = 0.5 * x[i] * (1.0 + t[i])


@kernel(_PAR)
def gelu_tanh_backward_from_tanh(x: Array, t: Array, grad: Array, out: Array) -> None:
    """Given t = tanh(inner): dx = grad (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2))."""
    for i in prange(x.size):
        xi = x[i]
        ti = t[i]
        d_inner = _GELU_K * (1.0 + 3.0 * _GELU_C * xi * xi)
        out[i] = grad[i] * (0.5 * (1.0 + ti) + 0.5 * xi * (1.0 - ti * ti) * d_inner)
