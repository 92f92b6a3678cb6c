"""A vectorisable ``exp`` for kernels: ``vexp(x)`` for float32 and float64 scalars.

PyPI's llvmlite ships no vector math library, so ``math.exp`` inside a Numba loop is a
scalar libm call (8x slower than NumPy's SIMD exp). ``vexp`` is written from operations
LLVM vectorises: Cody-Waite range reduction x = k ln2 + r with |r| <= ln2 / 2, the Taylor
polynomial of exp(r) (degree 7 for float32: truncation error r^8 / 8! < 6e-9; degree 13
for float64: < 7e-18), and 2^k built from its IEEE bits, in two factors so that results
down to the subnormal range stay exact. NaN gives NaN, +inf gives inf, -inf gives 0.

Kernels that call it must be compiled without ``reassoc`` (``_config.FASTMATH_EXACT``),
which would undo the two-step subtraction of the range reduction.
Under ``NUMBA_DISABLE_JIT=1`` ``vexp`` is plain ``math.exp``.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from gradwise.core import _config


def _split_ln2(zero_bits: int) -> tuple[float, float]:
    """ln 2 = hi + lo with the low ``zero_bits`` mantissa bits of float64 ``hi`` cleared, so
    that k * hi is exact for |k| < 2 ** (zero_bits - 1); lo carries the rest of ln 2 to
    40 digits (a float64 ln 2 alone would be off by 2e-17, i.e. 100 ulp of exp at k = 1000).
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        ln2 = decimal.Decimal(2).ln()
        bits = np.array([float(ln2)], dtype=np.float64).view(np.int64)[0]
        hi = float(np.array([bits & ~((1 << zero_bits) - 1)], dtype=np.int64).view(np.float64)[0])
        return hi, float(ln2 - decimal.Decimal(hi))


_LN2_HI_32, _LN2_LO_32 = _split_ln2(52 - 10)  # float32: k fits in 9 bits; hi has 10 bits
_LN2_HI_64, _LN2_LO_64 = _split_ln2(12)  # float64: |k| < 2048
_LOG2E = 1.0 / math.log(2.0)
_TAYLOR_32 = tuple(1.0 / math.factorial(n) for n in range(7, -1, -1))  # highest first
_TAYLOR_64 = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))


def vexp(x: Any) -> Any:
    """e ** x for a float32 or float64 scalar (Python fallback; kernels get the SIMD one)."""
    t = type(x)
    try:
        return t(math.exp(x))
    except OverflowError:
        return t(math.inf)


@intrinsic
def _f32_from_bits(typingctx: Any, bits: Any) -> Any:
    sig = types.float32(types.int32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _f64_from_bits(typingctx: Any, bits: Any) -> Any:
    sig = types.float64(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


_FM = set(_config.FASTMATH_EXACT)
_c32 = tuple(np.float32(c) for c in _TAYLOR_32)
_c64 = _TAYLOR_64


@njit(fastmath=_FM)
def _vexp32(x: Any) -> Any:
    lo_limit = np.float32(-104.0)
    xc = min(max(x, lo_limit), np.float32(89.0))
    k = np.floor(xc * np.float32(_LOG2E) + np.float32(0.5))
    r = (xc - k * np.float32(_LN2_HI_32)) - k * np.float32(_LN2_LO_32)
    p = _c32[0]
    p = p * r + _c32[1]
    p = p * r + _c32[2]
    p = p * r + _c32[3]
    p = p * r + _c32[4]
    p = p * r + _c32[5]
    p = p * r + _c32[6]
    p = p * r + _c32[7]
    ki = np.int32(k)
    k1 = ki >> np.int32(1)
    k2 = ki - k1
    y = (p * _f32_from_bits((k1 + np.int32(127)) << np.int32(23))) * _f32_from_bits(
        (k2 + np.int32(127)) << np.int32(23)
    )
    y = np.float32(0.0) if x < lo_limit else y
    return x if x != x else y


@njit(fastmath=_FM)
def _vexp64(x: Any) -> Any:
    lo_limit = -746.0
    xc = min(max(x, lo_limit), 710.0)
    k = np.floor(xc * _LOG2E + 0.5)
    r = (xc - k * _LN2_HI_64) - k * _LN2_LO_64
    p = _c64[0]
    p = p * r + _c64[1]
    p = p * r + _c64[2]
    p = p * r + _c64[3]
    p = p * r + _c64[4]
    p = p * r + _c64[5]
    p = p * r + _c64[6]
    p = p * r + _c64[7]
    p = p * r + _c64[8]
    p = p * r + _c64[9]
    p = p * r + _c64[10]
    p = p * r + _c64[11]
    p = p * r + _c64[12]
    p = p * r + _c64[13]
    ki = np.int64(k)
    k1 = ki >> np.int64(1)
    k2 = ki - k1
    y = (p * _f64_from_bits((k1 + np.int64(1023)) << np.int64(52))) * _f64_from_bits(
        (k2 + np.int64(1023)) << np.int64(52)
    )
    y = 0.0 if x < lo_limit else y
    return x if x != x else y


@overload(vexp, jit_options={"fastmath": _FM})
def _vexp_overload(x: Any) -> Any:
    # Numba requires the implementation's signature to match this one, annotations included.
    if x == types.float32:

        def impl32(x: Any) -> Any:
            return _vexp32(x)

        return impl32
    if x == types.float64:

        def impl64(x: Any) -> Any:
            return _vexp64(x)

        return impl64
    return None
