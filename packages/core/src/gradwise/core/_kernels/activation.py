"""Activation loops over flat arrays, forward beside backward.

PyPI's llvmlite has no vector math library, so a Numba loop calling ``math.exp`` runs ~8x
slower than NumPy's SIMD ufunc (measured: 3.8 ms against 0.47 ms for 1M float32). Loops
here call ``vexp`` (``vmath.py``), an exp LLVM vectorises (1 ulp, about NumPy's speed),
so sigmoid, SiLU and their backwards are single fused passes. tanh and log1p have no
such twin yet: the tanh GELU and softplus run pre-pass (here) -> NumPy ufunc in place ->
post-pass (here). The exact GELU and erf call ``math.erf``, which NumPy lacks.

Constants and scalar parameters are converted to the array's dtype first
(``one = x.dtype.type(1.0)``): a bare ``1.0`` is float64 in Numba and would turn float32
loops into float64 ones (3x slower where they divide: 46 us against 15 us at 64K).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradwise.core._jit import kernel
from gradwise.core._kernels.vmath import vexp
from gradwise.core.dtypes import Array

# Each @kernel(N) is the element count from which the parallel variant runs: measured on
# 2 cores with benchmarks/thresholds.py (the smallest size from which parallel won at
# every larger size). Loops calling libm (erf) amortise a thread launch soonest.


@kernel(262144)
def relu(x: Array, out: Array) -> None:
    """y = max(x, 0), NaN kept."""
    zero = x.dtype.type(0.0)
    for i in prange(x.size):
        v = x[i]
        out[i] = zero if v <= zero else v


@kernel(131072)
def relu_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad where x > 0 else 0 (relu'(0) = 0)."""
    zero = x.dtype.type(0.0)
    for i in prange(x.size):
        out[i] = grad[i] if x[i] > zero else zero


@kernel(131072)
def leaky_relu(x: Array, negative_slope: float, out: Array) -> None:
    """y = x if x > 0 else slope * x."""
    zero = x.dtype.type(0.0)
    slope = x.dtype.type(negative_slope)
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > zero else v * slope


@kernel(131072)
def leaky_relu_backward(x: Array, grad: Array, negative_slope: float, out: Array) -> None:
    """dx = grad if x > 0 else slope * grad."""
    zero = x.dtype.type(0.0)
    slope = x.dtype.type(negative_slope)
    for i in prange(x.size):
        out[i] = grad[i] if x[i] > zero else grad[i] * slope


@kernel(16384)
def neg_abs_scaled(x: Array, scale: float, out: Array) -> None:
    """out = -|scale * x|: the argument of exp in stable sigmoid, silu and softplus."""
    s = x.dtype.type(scale)
    for i in prange(x.size):
        out[i] = -abs(x[i] * s)


@kernel(131072, exact=True)
def sigmoid_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = grad * y * (1 - y)."""
    one = y.dtype.type(1.0)
    for i in prange(y.size):
        yi = y[i]
        out[i] = grad[i] * yi * (one - yi)


@kernel(131072)
def tanh_backward(y: Array, grad: Array, out: Array) -> None:
    """dx = grad * (1 - y^2)."""
    one = y.dtype.type(1.0)
    for i in prange(y.size):
        yi = y[i]
        out[i] = grad[i] * (one - yi * yi)


@kernel(16384)
def softplus_from_log1p(x: Array, l1p: Array, beta: float, threshold: float, out: Array) -> None:
    """Given l1p = log1p(exp(-|beta x|)): y = (l1p + max(beta x, 0)) / beta, or x past threshold."""
    zero = x.dtype.type(0.0)
    b = x.dtype.type(beta)
    t = x.dtype.type(threshold)
    for i in prange(x.size):
        xi = x[i]
        bx = xi * b
        out[i] = xi if bx > t else (l1p[i] + (bx if bx > zero else zero)) / b


_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_GELU_K = 0.7978845608028654  # sqrt(2 / pi)
_TWO_OVER_SQRT_PI = 1.1283791670955126
_GELU_C = 0.044715


@kernel(8192)
def gelu_erf(x: Array, out: Array) -> None:
    """y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))."""
    for i in prange(x.size):
        xi = x[i]
        out[i] = 0.5 * xi * (1.0 + math.erf(xi * _SQRT_HALF))


@kernel(8192)
def gelu_erf_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad * (Phi(x) + x phi(x))."""
    for i in prange(x.size):
        xi = x[i]
        cdf = 0.5 * (1.0 + math.erf(xi * _SQRT_HALF))
        pdf = _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
        out[i] = grad[i] * (cdf + xi * pdf)


@kernel(8192)
def erf(x: Array, out: Array) -> None:
    """The error function, libm's double erf rounded to x's dtype (as math.erf gives)."""
    for i in prange(x.size):
        out[i] = math.erf(np.float64(x[i]))


@kernel(65536)
def erf_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad * (2 / sqrt(pi)) exp(-x^2), one pass."""
    c = x.dtype.type(_TWO_OVER_SQRT_PI)
    for i in prange(x.size):
        xi = x[i]
        out[i] = grad[i] * (vexp(-(xi * xi)) * c)


@kernel(65536)
def gelu_tanh_inner(x: Array, out: Array) -> None:
    """out = sqrt(2/pi) (x + 0.044715 x^3): the argument of tanh in the tanh GELU."""
    k = x.dtype.type(_GELU_K)
    c = x.dtype.type(_GELU_C)
    for i in prange(x.size):
        xi = x[i]
        out[i] = k * (xi + c * xi * xi * xi)


@kernel(65536)
def gelu_tanh_from_tanh(x: Array, t: Array, out: Array) -> None:
    """Given t = tanh(inner): y = 0.5 x (1 + t)."""
    half = x.dtype.type(0.5)
    one = x.dtype.type(1.0)
    for i in prange(x.size):
        out[i] = half * x[i] * (one + t[i])


@kernel(65536)
def gelu_tanh_backward_from_tanh(x: Array, t: Array, grad: Array, out: Array) -> None:
    """Given t = tanh(inner): dx = grad (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2))."""
    half = x.dtype.type(0.5)
    one = x.dtype.type(1.0)
    k = x.dtype.type(_GELU_K)
    c3 = x.dtype.type(3.0 * _GELU_C)
    for i in prange(x.size):
        xi = x[i]
        ti = t[i]
        d_inner = k * (one + c3 * xi * xi)
        out[i] = grad[i] * (half * (one + ti) + half * xi * (one - ti * ti) * d_inner)


@kernel(16384, exact=True)
def sigmoid(x: Array, out: Array) -> None:
    """y = 1 / (1 + e) for x >= 0, e / (1 + e) otherwise, e = exp(-|x|): never overflows."""
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    for i in prange(x.size):
        xi = x[i]
        e = vexp(-abs(xi))
        r = one / (one + e)
        out[i] = r if xi >= zero else e * r


@kernel(16384, exact=True)
def silu(x: Array, out: Array) -> None:
    """y = x sigmoid(x), one pass."""
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    for i in prange(x.size):
        xi = x[i]
        e = vexp(-abs(xi))
        r = one / (one + e)
        out[i] = xi * (r if xi >= zero else e * r)


@kernel(16384, exact=True)
def silu_backward(x: Array, grad: Array, out: Array) -> None:
    """dx = grad s (1 + x (1 - s)), s = sigmoid(x), one pass."""
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    for i in prange(x.size):
        xi = x[i]
        e = vexp(-abs(xi))
        r = one / (one + e)
        s = r if xi >= zero else e * r
        out[i] = grad[i] * s * (one + xi * (one - s))


@kernel(16384, exact=True)
def softplus_backward(x: Array, grad: Array, beta: float, threshold: float, out: Array) -> None:
    """dx = grad sigmoid(beta x), and grad where beta x > threshold, one pass."""
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    b = x.dtype.type(beta)
    t = x.dtype.type(threshold)
    for i in prange(x.size):
        bx = x[i] * b
        e = vexp(-abs(bx))
        r = one / (one + e)
        s = r if bx >= zero else e * r
        out[i] = grad[i] if bx > t else grad[i] * s
