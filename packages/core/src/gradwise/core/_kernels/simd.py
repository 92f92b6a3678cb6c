"""Eight-lane vectors for kernels whose register blocking LLVM's vectorisers do not find.

The loop vectoriser widens innermost loops only, so a kernel that keeps a tile of outputs
in registers across an outer loop (the convolution's 4 outputs x 24 pixels over every
channel and tap) comes out scalar or spilled when written with scalars. ``Vec8`` is an
LLVM ``<8 x float>`` (or ``<8 x double>``) value that Numba keeps in registers:

    acc = vzero(x)                       # 8 zeros of x's dtype
    acc = vfma(vsplat(w), vload(x, i), acc)
    vstore(y, j, acc)

``vload(a, i)`` reads ``a[i : i + 8]`` of a C-contiguous 1-D array and ``vstore(a, i, v)``
writes it back (no bounds checks: the caller keeps ``i + 8 <= a.size``); ``vsplat(s)``
repeats a scalar, ``vfma(a, b, c)`` is ``a * b + c`` per lane, fused, and ``vsum(v)`` adds
the lanes pairwise. On AVX2 a float32
vector is one ymm register; float64 (for checking) takes two.

Under ``NUMBA_DISABLE_JIT=1`` these are NumPy functions on 8-element arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from gradwise.core import _config
from gradwise.core.dtypes import Array

LANES = 8


class Vec8(types.Type):  # type: ignore[misc]
    """Numba type of an 8-lane vector of ``dtype`` (float32 or float64)."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype
        super().__init__(name=f"Vec8({dtype})")


_VEC = {types.float32: Vec8(types.float32), types.float64: Vec8(types.float64)}


def _llvm(dtype: Any) -> ir.VectorType:
    return ir.VectorType(ir.FloatType() if dtype == types.float32 else ir.DoubleType(), LANES)


@register_model(Vec8)
class _Vec8Model(models.PrimitiveModel):  # type: ignore[misc]
    def __init__(self, dmm: Any, fe_type: Vec8) -> None:
        super().__init__(dmm, fe_type, _llvm(fe_type.dtype))


def _vec_of(ty: Any) -> Vec8:
    dtype = getattr(ty, "dtype", ty)
    if dtype not in _VEC:
        raise TypeError(f"simd: no 8-lane vector of {dtype} (float32 and float64 only)")
    return _VEC[dtype]


def _pointer(context: Any, builder: Any, aryty: Any, ary: Any, index: Any) -> Any:
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(
        builder.gep(data, [index], inbounds=True), _llvm(aryty.dtype).as_pointer()
    )


@intrinsic
def _vload(typingctx: Any, a: Any, i: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1]), align=4)

    return _vec_of(a)(a, i), codegen


@intrinsic
def _vstore(typingctx: Any, a: Any, i: Any, v: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()

    return types.void(a, i, v), codegen


@intrinsic
def _vsplat(typingctx: Any, s: Any) -> Any:
    vec = _vec_of(s)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vty = _llvm(vec.dtype)
        undef = ir.Constant(vty, ir.Undefined)
        one = builder.insert_element(undef, args[0], ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(one, undef, zeros)

    return vec(s), codegen


@intrinsic
def _vzero(typingctx: Any, a: Any) -> Any:
    vec = _vec_of(a)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return ir.Constant(_llvm(vec.dtype), [0.0] * LANES)

    return vec(a), codegen


@intrinsic
def _vfma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vty = _llvm(sig.return_type.dtype)
        suffix = "f32" if sig.return_type.dtype == types.float32 else "f64"
        fnty = ir.FunctionType(vty, [vty, vty, vty])
        fma = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.v{LANES}{suffix}")
        return builder.call(fma, args)

    return a(a, b, c), codegen


@intrinsic
def _vsum(typingctx: Any, v: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        lanes = [
            builder.extract_element(args[0], ir.Constant(ir.IntType(32), i)) for i in range(LANES)
        ]
        while len(lanes) > 1:  # pairwise: (0 + 4, 1 + 5, ...) then halves again
            half = len(lanes) // 2
            lanes = [builder.fadd(lanes[i], lanes[i + half]) for i in range(half)]
        return lanes[0]

    return v.dtype(v), codegen


def _py_vload(a: Array, i: int) -> Array:
    return a[i : i + LANES].copy()


def _py_vstore(a: Array, i: int, v: Array) -> None:
    a[i : i + LANES] = v


def _py_vsplat(s: Any) -> Array:
    return np.full(LANES, s)


def _py_vzero(a: Array) -> Array:
    return np.zeros(LANES, dtype=a.dtype)


def _py_vfma(a: Array, b: Array, c: Array) -> Array:
    return a * b + c


def _py_vsum(v: Array) -> Any:
    lanes = list(v)
    while len(lanes) > 1:
        half = len(lanes) // 2
        lanes = [lanes[i] + lanes[i + half] for i in range(half)]
    return lanes[0]


_OPS: tuple[Any, ...] = (
    (_py_vload, _py_vstore, _py_vsplat, _py_vzero, _py_vfma, _py_vsum)
    if _config.JIT_DISABLED
    else (_vload, _vstore, _vsplat, _vzero, _vfma, _vsum)
)
vload, vstore, vsplat, vzero, vfma, vsum = _OPS
