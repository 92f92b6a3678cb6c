"""Typed compute API: validate -> make contiguous -> pick a kernel by size -> allocate ``out``.

Every function takes and returns NumPy arrays; float kernels accept float32 and float64 and
keep the input's dtype. Each forward sits beside its backward. Bad input raises
``TypeError`` (dtype, type) or ``ValueError`` (shape, axis) naming the function and the
shapes or values at fault.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable

import numpy as np

from gradwise.core._kernels import activation as _act
from gradwise.core._kernels import optim as _opt
from gradwise.core._kernels import reduce as _red
from gradwise.core._kernels import softmax as _sm
from gradwise.core.blas import matmul as _mm
from gradwise.core.dtypes import Array, Axis, Shape, contiguous

# ---------------------------------------------------------------------------------------
# validation helpers


_add_reduce: Callable[..., Array] = np.add.reduce
_max_reduce: Callable[..., Array] = np.maximum.reduce
_min_reduce: Callable[..., Array] = np.minimum.reduce


def fmt_shape(shape: Shape) -> str:
    """Shapes in messages look like ``(3, 4)``; a 1-D shape is ``(3,)``."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _float(x: object, op: str, name: str = "x") -> Array:
    """A C-contiguous float32/float64 array, or a TypeError naming ``op``."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    return contiguous(x)


def _like(x: Array, other: object, op: str, name: str, ref: str = "x") -> Array:
    """``other`` as a contiguous array of x's shape and dtype, or a ValueError/TypeError."""
    arr = _float(other, op, name)
    if arr.shape != x.shape:
        raise ValueError(
            f"{op}: {name} has shape {fmt_shape(arr.shape)} but {ref} has shape "
            f"{fmt_shape(x.shape)}"
        )
    if arr.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but {ref} has dtype {x.dtype}")
    return arr


_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _fx(x: object, op: str, name: str = "x") -> Array:
    """``_float`` for element-wise inputs: the common case (a float32/float64 ndarray) is
    passed through unchecked for layout, since ``_flat`` makes a contiguous copy if needed.
    """
    if type(x) is np.ndarray:
        dt = x.dtype
        if dt is _F32 or dt is _F64:
            return x
    return _float(x, op, name)


def _fl(x: Array, other: object, op: str, name: str, ref: str = "x") -> Array:
    """``_like`` with the same fast path as ``_fx``."""
    if type(other) is np.ndarray and other.dtype is x.dtype and other.shape == x.shape:
        return other
    return _like(x, other, op, name, ref)


def _empty(x: Array) -> Array:
    """A new C-contiguous array of x's shape and dtype."""
    return np.empty(x.shape, x.dtype)


def _flat(a: Array) -> Array:
    return a.reshape(-1)


def _scalar(value: object, op: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


# ---------------------------------------------------------------------------------------
# activations: forward and backward


def relu(x: Array) -> Array:
    """y = max(x, 0); NaN propagates."""
    x = _fx(x, "relu")
    if x.size < 4096:  # NumPy's maximum is as fast and skips a kernel dispatch (~0.5 us)
        small: Array = np.maximum(x, 0)  # a Python 0 is weak: the dtype stays x's
        return small
    out = _empty(x)
    _act.relu.pick(x.size)(_flat(x), _flat(out))
    return out


def relu_backward(x: Array, grad: Array) -> Array:
    """dx = grad * (x > 0)   (relu'(0) = 0)."""
    x = _fx(x, "relu_backward")
    grad = _fl(x, grad, "relu_backward", "grad")
    out = _empty(x)
    _act.relu_backward.pick(x.size)(_flat(x), _flat(grad), _flat(out))
    return out


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """y = x if x > 0 else negative_slope * x."""
    x = _fx(x, "leaky_relu")
    slope = _scalar(negative_slope, "leaky_relu", "negative_slope")
    out = _empty(x)
    _act.leaky_relu.pick(x.size)(_flat(x), slope, _flat(out))
    return out


def leaky_relu_backward(x: Array, grad: Array, negative_slope: float = 0.01) -> Array:
    """dx = grad if x > 0 else negative_slope * grad."""
    x = _fx(x, "leaky_relu_backward")
    grad = _fl(x, grad, "leaky_relu_backward", "grad")
    slope = _scalar(negative_slope, "leaky_relu_backward", "negative_slope")
    out = _empty(x)
    _act.leaky_relu_backward.pick(x.size)(_flat(x), _flat(grad), slope, _flat(out))
    return out


def _exp_neg_abs(x: Array, scale: float = 1.0) -> Array:
    """e = exp(-|scale x|): NumPy's SIMD exp on a buffer prepared by a fused pass."""
    e = _empty(x)
    _act.neg_abs_scaled.pick(x.size)(_flat(x), scale, _flat(e))
    np.exp(e, out=e)
    return e


def sigmoid(x: Array) -> Array:
    """y = 1 / (1 + exp(-x)), computed without overflow."""
    x = _fx(x, "sigmoid")
    out = _empty(x)
    _act.sigmoid.pick(x.size)(_flat(x), _flat(out))
    return out


def sigmoid_backward(y: Array, grad: Array) -> Array:
    """dx = grad * y * (1 - y), from the forward output y."""
    y = _fx(y, "sigmoid_backward", "y")
    grad = _fl(y, grad, "sigmoid_backward", "grad", "y")
    out = _empty(y)
    _act.sigmoid_backward.pick(y.size)(_flat(y), _flat(grad), _flat(out))
    return out


def tanh(x: Array) -> Array:
    """Hyperbolic tangent via NumPy's SIMD ufunc (nothing to fuse); y = tanh of x."""
    return np.tanh(_fx(x, "tanh"))


def tanh_backward(y: Array, grad: Array) -> Array:
    """dx = grad * (1 - y^2), from the forward output y."""
    y = _fx(y, "tanh_backward", "y")
    grad = _fl(y, grad, "tanh_backward", "grad", "y")
    out = _empty(y)
    _act.tanh_backward.pick(y.size)(_flat(y), _flat(grad), _flat(out))
    return out


def _check_approximate(approximate: str, op: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


def erf(x: Array) -> Array:
    """The error function per element (NumPy has none): libm's, in a Numba loop."""
    x = _fx(x, "erf")
    out = _empty(x)
    _act.erf.pick(x.size)(_flat(x), _flat(out))
    return out


def erf_backward(x: Array, grad: Array) -> Array:
    """dx = grad * (2 / sqrt(pi)) exp(-x^2)."""
    x = _fx(x, "erf_backward")
    grad = _fl(x, grad, "erf_backward", "grad")
    out = _empty(x)
    _act.erf_backward.pick(x.size)(_flat(x), _flat(grad), _flat(out))
    return out


def gelu(x: Array, approximate: str = "none") -> Array:
    """y = x Phi(x) (exact, erf) or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x = _fx(x, "gelu")
    _check_approximate(approximate, "gelu")
    out = _empty(x)
    if approximate == "none":
        _act.gelu_erf.pick(x.size)(_flat(x), _flat(out))
        return out
    _act.gelu_tanh_inner.pick(x.size)(_flat(x), _flat(out))
    np.tanh(out, out=out)
    _act.gelu_tanh_from_tanh.pick(x.size)(_flat(x), _flat(out), _flat(out))
    return out


def gelu_backward(x: Array, grad: Array, approximate: str = "none") -> Array:
    """dx = grad * d gelu(x) / dx for either form."""
    x = _fx(x, "gelu_backward")
    grad = _fl(x, grad, "gelu_backward", "grad")
    _check_approximate(approximate, "gelu_backward")
    out = _empty(x)
    if approximate == "none":
        _act.gelu_erf_backward.pick(x.size)(_flat(x), _flat(grad), _flat(out))
        return out
    _act.gelu_tanh_inner.pick(x.size)(_flat(x), _flat(out))
    np.tanh(out, out=out)
    _act.gelu_tanh_backward_from_tanh.pick(x.size)(_flat(x), _flat(out), _flat(grad), _flat(out))
    return out


def silu(x: Array) -> Array:
    """y = x * sigmoid(x)."""
    x = _fx(x, "silu")
    out = _empty(x)
    _act.silu.pick(x.size)(_flat(x), _flat(out))
    return out


def silu_backward(x: Array, grad: Array) -> Array:
    """dx = grad * s (1 + x (1 - s)), s = sigmoid(x)."""
    x = _fx(x, "silu_backward")
    grad = _fl(x, grad, "silu_backward", "grad")
    out = _empty(x)
    _act.silu_backward.pick(x.size)(_flat(x), _flat(grad), _flat(out))
    return out


def _softplus_args(beta: float, threshold: float, op: str) -> tuple[float, float]:
    b = _scalar(beta, op, "beta")
    if b == 0.0:
        raise ValueError(f"{op}: beta must be non-zero")
    return b, _scalar(threshold, op, "threshold")


def softplus(x: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (as PyTorch)."""
    x = _fx(x, "softplus")
    b, t = _softplus_args(beta, threshold, "softplus")
    out = _exp_neg_abs(x, b)
    np.log1p(out, out=out)
    _act.softplus_from_log1p.pick(x.size)(_flat(x), _flat(out), b, t, _flat(out))
    return out


def softplus_backward(x: Array, grad: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """dx = grad * sigmoid(beta x), and grad where beta x > threshold."""
    x = _fx(x, "softplus_backward")
    grad = _fl(x, grad, "softplus_backward", "grad")
    b, t = _softplus_args(beta, threshold, "softplus_backward")
    out = _empty(x)
    _act.softplus_backward.pick(x.size)(_flat(x), _flat(grad), b, t, _flat(out))
    return out


# ---------------------------------------------------------------------------------------
# reductions


def normalize_axes(ndim: int, axis: Axis, op: str) -> tuple[int, ...]:
    """Sorted, non-negative, unique axes; ``None`` means all; errors name ``op``."""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if isinstance(axis, int | np.integer) else axis
    if not isinstance(items, tuple | list):
        raise TypeError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}")
    result: list[int] = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int | np.integer):
            raise TypeError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}")
        lo, hi = (-ndim, ndim) if ndim else (-1, 1)  # a 0-d array accepts axis 0 and -1
        if not lo <= a < hi:
            raise ValueError(f"{op}: axis {a} is out of range for an array of {ndim} dimensions")
        norm = int(a) % ndim if ndim else 0
        if norm in result:
            raise ValueError(f"{op}: axis {norm} appears more than once in {axis!r}")
        result.append(norm)
    return tuple(sorted(result)) if ndim else ()


def _plan(x: Array, axes: tuple[int, ...]) -> tuple[Array, Shape]:
    """View x as (A, R, B) with the reduced axes in the middle; returns it and the kept shape."""
    shape = x.shape
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    if not axes:
        return x.reshape(-1, 1, 1) if x.size else x.reshape(0, 1, 1), kept
    first, last = axes[0], axes[-1]
    if last - first + 1 == len(axes):
        n_a = math.prod(shape[:first])
        n_r = math.prod(shape[first : last + 1])
        n_b = math.prod(shape[last + 1 :])
        return x.reshape(n_a, n_r, n_b), kept
    order = [i for i in range(x.ndim) if i not in axes] + list(axes)
    moved = contiguous(x.transpose(order))
    return moved.reshape(math.prod(kept), math.prod(shape[i] for i in axes), 1), kept


def _finish(out2: Array, x: Array, axes: tuple[int, ...], kept: Shape, keepdims: bool) -> Array:
    if keepdims:
        return out2.reshape(tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    return out2.reshape(kept)


def _reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# Below these element counts NumPy's own reduction is faster than a kernel call plus its
# bookkeeping (benchmarks/kernels.py: 16K elements, whole-array sum 4.3 us in NumPy against
# 7.8 us; 4K rows or columns ~6.5 us either way). NumPy is deterministic too.
NUMPY_FULL_SUM_MAX = 32767
NUMPY_AXIS_SUM_MAX = 4095


# Column sums (reducing a leading axis) stay in NumPy up to 1M elements: its float32
# row-by-row adds beat a float64-accumulating kernel and its thread start-up there.
NUMPY_COLUMN_SUM_MAX = 2**20 - 1


def _numpy_sum_ok(x: Array, axes: tuple[int, ...]) -> bool:
    if not axes:
        return True  # reducing over no axis: NumPy returns the values as they are
    if len(axes) == x.ndim:
        return x.size <= NUMPY_FULL_SUM_MAX
    if axes[-1] != x.ndim - 1:
        return x.size <= NUMPY_COLUMN_SUM_MAX
    return x.size <= NUMPY_AXIS_SUM_MAX


def _sum_f64(x: Array, axes: tuple[int, ...]) -> tuple[Array, Shape]:
    """Float64 sums over ``axes`` of a float array, shaped (A, B); plus the kept shape."""
    x3, kept = _plan(x, axes)
    n_a, n_r, n_b = x3.shape
    out = np.zeros((n_a, n_b), dtype=np.float64)
    if n_r == 0 or out.size == 0:
        return out, kept
    if n_a == 1 and n_b == 1:
        partial = np.zeros(builtins.min(_red.CHUNKS, n_r), dtype=np.float64)
        _red.sum_chunks.pick(x.size)(x3.reshape(-1), partial)
        out[0, 0] = partial.sum()
    elif n_b == 1:
        _red.sum_rows.pick(x.size)(x3.reshape(n_a, n_r), out.reshape(n_a))
    else:
        out[:] = _sum_cols(x3)
    return out, kept


def _sum_cols(x3: Array) -> Array:
    """(A, B) float64 sums over the middle axis of an (A, R, B) array with B > 1."""
    n_a, n_r, n_b = x3.shape
    n_c = _red.row_chunks(n_a, n_r)
    partial = np.empty((n_a, n_c, n_b), dtype=np.float64)
    _red.sum_cols.pick(x3.size)(x3, _red.column_blocks(n_c, n_b), partial)
    return partial[:, 0] if partial.shape[1] == 1 else partial.sum(axis=1)


def _reduce_input(x: object, op: str) -> Array:
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: x must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{op}: unsupported dtype {x.dtype}")
    return contiguous(x)


def sum(x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
    """y = x.sum(axis) accumulated in float64 (ints and bools sum to int64); sum of nothing is 0."""
    if type(x) is np.ndarray and x.dtype.kind == "f":
        # small arrays: NumPy's reduction, without our bookkeeping (see NUMPY_*_SUM_MAX)
        if axis is None and x.size <= NUMPY_FULL_SUM_MAX:
            return np.asarray(_add_reduce(x, None, None, None, keepdims))
        if type(axis) is int and -x.ndim <= axis < x.ndim:
            last = axis % x.ndim == x.ndim - 1
            if x.size <= (NUMPY_AXIS_SUM_MAX if last else NUMPY_COLUMN_SUM_MAX):
                return np.asarray(_add_reduce(x, axis, None, None, keepdims))
    x = _reduce_input(x, "sum")
    axes = normalize_axes(x.ndim, axis, "sum")
    if x.dtype.kind != "f":
        return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=np.int64))
    if _numpy_sum_ok(x, axes):
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))
    out, kept = _sum_f64(x, axes)
    return _finish(out.astype(x.dtype), x, axes, kept, keepdims)


def sum_backward(grad: Array, shape: Shape, axis: Axis = None, keepdims: bool = False) -> Array:
    """dx = grad broadcast back to the input's shape (a read-only view for large shapes)."""
    grad = np.asarray(grad)
    if axis is None and grad.size == 1:
        n = 1
        for d in shape:
            n *= d
        if n <= 65536:
            out = np.empty(shape, dtype=grad.dtype)
            out.fill(grad.item())
            return out
    axes = normalize_axes(len(shape), axis, "sum_backward")
    expected = _reduced_shape(shape, axes, keepdims)
    if grad.shape != expected:
        raise ValueError(
            f"sum_backward: grad has shape {fmt_shape(grad.shape)}, expected {fmt_shape(expected)}"
        )
    return np.broadcast_to(grad.reshape(_reduced_shape(shape, axes, True)), shape)


def _count(shape: Shape, axes: tuple[int, ...]) -> int:
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def mean(x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
    """y = x.mean(axis); the mean of nothing is NaN (no warning)."""
    x = _float(x, "mean")
    axes = normalize_axes(x.ndim, axis, "mean")
    n = _count(x.shape, axes)
    if n and _numpy_sum_ok(x, axes):
        total = x.sum(axis=axes, keepdims=keepdims)
        return np.asarray(np.true_divide(total, x.dtype.type(n), dtype=x.dtype))
    out, kept = _sum_f64(x, axes)
    if n == 0:
        out.fill(np.nan)
    else:
        out /= n
    return _finish(out.astype(x.dtype), x, axes, kept, keepdims)


def mean_backward(grad: Array, shape: Shape, axis: Axis = None, keepdims: bool = False) -> Array:
    """dx = grad / n broadcast back to the input's shape."""
    axes = normalize_axes(len(shape), axis, "mean_backward")
    n = _count(shape, axes)
    g = np.asarray(grad)
    scaled = g / g.dtype.type(n) if n else np.full_like(g, np.nan)
    return contiguous(sum_backward(scaled, shape, axis, keepdims))


def _extreme(x: Array, axis: Axis, keepdims: bool, want_max: bool) -> Array:
    quick = type(x) is np.ndarray and x.size > 0 and x.dtype.kind in "biuf"
    if quick and (axis is None or (type(axis) is int and -x.ndim <= axis < x.ndim)):
        reduce = _max_reduce if want_max else _min_reduce
        return np.asarray(reduce(x, axis, None, None, keepdims))
    op = "max" if want_max else "min"
    x = _reduce_input(x, op)
    axes = normalize_axes(x.ndim, axis, op)
    if _count(x.shape, axes) == 0:
        raise ValueError(
            f"{op}: cannot reduce an empty array of shape {fmt_shape(x.shape)} over axis {axis}"
        )
    # NumPy's SIMD max/min propagate NaN and beat any Numba loop we could write (see
    # _kernels/reduce.py); they are exact, so also deterministic.
    ax = None if len(axes) == x.ndim else axes
    return np.asarray(x.max(ax, keepdims=keepdims) if want_max else x.min(ax, keepdims=keepdims))


def max(x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
    """y = x.max(axis); NaN propagates; empty raises ValueError."""
    if (
        axis is None
        and not keepdims
        and type(x) is np.ndarray
        and x.size
        and x.dtype.kind in "biuf"
    ):
        return np.asarray(_max_reduce(x, None))  # the whole-array case, nothing in the way
    return _extreme(x, axis, keepdims, True)


def min(x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
    """y = x.min(axis); NaN propagates; empty raises ValueError."""
    if (
        axis is None
        and not keepdims
        and type(x) is np.ndarray
        and x.size
        and x.dtype.kind in "biuf"
    ):
        return np.asarray(_min_reduce(x, None))
    return _extreme(x, axis, keepdims, False)


def extreme_backward(
    x: Array, y: Array, grad: Array, axis: Axis = None, keepdims: bool = False
) -> Array:
    """Gradient of max or min: grad split evenly between the elements equal to y (ties)."""
    x = _float(x, "max_backward")
    axes = normalize_axes(x.ndim, axis, "max_backward")
    x3, _kept = _plan(x, axes)
    n_a, _n_r, n_b = x3.shape
    y2 = contiguous(y, dtype=x.dtype).reshape(n_a, n_b)
    g2 = contiguous(grad, dtype=x.dtype).reshape(n_a, n_b)
    out3 = _empty(x3)
    _red.extreme_backward.pick(x.size)(x3, y2, g2, out3)
    return _unplan(out3, x.shape, axes)


def _unplan(out3: Array, shape: Shape, axes: tuple[int, ...]) -> Array:
    """Inverse of :func:`_plan` for a full-size (A, R, B) result."""
    ndim = len(shape)
    if not axes or axes[-1] - axes[0] + 1 == len(axes):
        return out3.reshape(shape)
    order = [i for i in range(ndim) if i not in axes] + list(axes)
    moved = out3.reshape(tuple(shape[i] for i in order))
    return contiguous(moved.transpose(np.argsort(order)))


def _var_f64(x: Array, axes: tuple[int, ...], ddof: float) -> tuple[Array, Shape]:
    x3, kept = _plan(x, axes)
    n_a, n_r, n_b = x3.shape
    out = np.empty((n_a, n_b), dtype=np.float64)
    if out.size == 0:
        return out, kept
    if n_r == 0:
        out.fill(np.nan)
        return out, kept
    kernel_ddof = float(ddof) if n_r - ddof > 0 else 0.0
    if n_b == 1:
        _red.var_rows.pick(x.size)(x3.reshape(n_a, n_r), kernel_ddof, out.reshape(n_a))
    else:
        mean = _sum_cols(x3) / n_r
        n_c = _red.row_chunks(n_a, n_r)
        partial = np.empty((n_a, n_c, n_b), dtype=np.float64)
        _red.sq_dev_cols.pick(x.size)(x3, mean, _red.column_blocks(n_c, n_b), partial)
        out[:] = partial.sum(axis=1) / (n_r - kernel_ddof)
    if n_r - ddof <= 0:
        # PyTorch: zero spread over no degrees of freedom is NaN, a positive one is inf.
        out[:] = np.where(out == 0.0, np.nan, np.where(np.isnan(out), np.nan, np.inf))
    return out, kept


def var(x: Array, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> Array:
    """y = mean((x - mean(x))^2) * n / (n - ddof), two-pass in float64."""
    x = _float(x, "var")
    axes = normalize_axes(x.ndim, axis, "var")
    d = _scalar(ddof, "var", "ddof")
    out, kept = _var_f64(x, axes, d)
    with np.errstate(over="ignore"):  # a float64 variance beyond float32's range is inf
        narrowed = out.astype(x.dtype)
    return _finish(narrowed, x, axes, kept, keepdims)


def var_backward(
    x: Array, grad: Array, axis: Axis = None, keepdims: bool = False, ddof: float = 0
) -> Array:
    """dx = grad * 2 (x - mean) / (n - ddof)."""
    x = _float(x, "var_backward")
    axes = normalize_axes(x.ndim, axis, "var_backward")
    x3, _ = _plan(x, axes)
    n_a, n_r, n_b = x3.shape
    mean64, _ = _sum_f64(x, axes)
    if n_r:
        mean64 /= n_r
    g2 = contiguous(grad, dtype=x.dtype).reshape(n_a, n_b)
    denom = n_r - _scalar(ddof, "var_backward", "ddof")
    scale = 2.0 / denom if denom > 0 else math.nan
    out3 = _empty(x3)
    _red.var_backward.pick(x.size)(x3, mean64, g2, scale, out3)
    return _unplan(out3, x.shape, axes)


def unbroadcast(grad: Array, shape: Shape) -> Array:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    grad = np.asarray(grad)
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    ok = extra >= 0 and all(s in (1, g) for s, g in zip(shape, grad.shape[extra:], strict=True))
    if not ok:
        raise ValueError(
            f"unbroadcast: a gradient of shape {fmt_shape(grad.shape)} cannot be reduced to "
            f"shape {fmt_shape(shape)}"
        )
    axes = tuple(range(extra)) + tuple(
        extra + i for i, s in enumerate(shape) if s == 1 and grad.shape[extra + i] != 1
    )
    if grad.dtype.kind == "f":
        reduced = sum(grad, axis=axes, keepdims=True)
    else:
        reduced = np.sum(grad, axis=axes, keepdims=True)
    return reduced.reshape(shape)


# ---------------------------------------------------------------------------------------
# softmax family (over one axis)


def _rows(x: Array, axis: int, op: str) -> tuple[Array, int]:
    """x with ``axis`` moved last, as a C-contiguous (rows, n) array; plus the axis."""
    if x.ndim == 2 and (axis == -1 or axis == 1) and x.flags.c_contiguous:
        return x, 1  # the common (batch, classes) case
    ax = normalize_axes(x.ndim, axis, op)
    a = ax[0] if ax else 0
    if x.ndim == 0:
        return x.reshape(1, 1), a
    moved = x if a == x.ndim - 1 else contiguous(np.moveaxis(x, a, -1))
    n_rows = math.prod(moved.shape[:-1])
    return moved.reshape(n_rows, x.shape[a]), a


def _unrows(y2: Array, x: Array, axis: int) -> Array:
    if x.ndim == 0:
        return y2.reshape(())
    if axis == x.ndim - 1:
        return y2.reshape(x.shape)
    moved_shape = (*tuple(d for i, d in enumerate(x.shape) if i != axis), x.shape[axis])
    return contiguous(np.moveaxis(y2.reshape(moved_shape), -1, axis))


def _shift(x2: Array) -> Array:
    """Per-row max (the kernels use 0 instead where it is not finite)."""
    row_max: Array = x2.max(axis=1)
    return row_max


def softmax(x: Array, axis: int = -1) -> Array:
    """y = exp(x - max) / sum(exp(x - max)) along ``axis``."""
    x = _float(x, "softmax")
    x2, a = _rows(x, axis, "softmax")
    out = _empty(x2)
    if x2.size:
        _sm.softmax_rows.pick(x2.size)(x2, _shift(x2), out)
    return _unrows(out, x, a)


def softmax_backward(y: Array, grad: Array, axis: int = -1) -> Array:
    """dx = y * (grad - sum(grad * y)) along ``axis``, from the forward output y."""
    y = _float(y, "softmax_backward", "y")
    grad = _like(y, grad, "softmax_backward", "grad", "y")
    y2, a = _rows(y, axis, "softmax_backward")
    g2, _ = _rows(grad, axis, "softmax_backward")
    out = _empty(y2)
    _sm.softmax_backward.pick(y2.size)(y2, g2, out)
    return _unrows(out, y, a)


def _lse_rows(x2: Array) -> Array:
    """Row logsumexp in float64; an empty row gives -inf."""
    lse = np.empty(x2.shape[0], dtype=np.float64)
    if x2.shape[1] == 0:
        lse.fill(-np.inf)
    elif lse.size:
        _sm.logsumexp_rows.pick(x2.size)(x2, _shift(x2), _empty(x2), lse)
    return lse


def logsumexp(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
    """y = log(sum(exp(x))) along ``axis``, stable; empty or all -inf gives -inf."""
    x = _float(x, "logsumexp")
    x2, a = _rows(x, axis, "logsumexp")
    lse = _lse_rows(x2).astype(x.dtype)
    if x.ndim == 0:
        return lse.reshape(())
    shape = tuple(1 if i == a else d for i, d in enumerate(x.shape))
    out = lse.reshape(tuple(d for i, d in enumerate(x.shape) if i != a))
    return out.reshape(shape) if keepdims else out


def logsumexp_backward(
    x: Array, y: Array, grad: Array, axis: int = -1, keepdims: bool = False
) -> Array:
    """dx = grad * exp(x - y) = grad * softmax(x) along ``axis``."""
    x = _float(x, "logsumexp_backward")
    ax = normalize_axes(x.ndim, axis, "logsumexp_backward")
    a = ax[0] if ax else 0
    keep = tuple(1 if i == a else d for i, d in enumerate(x.shape)) if x.ndim else ()
    y_b = np.asarray(y, dtype=x.dtype).reshape(keep)
    g_b = np.asarray(grad, dtype=x.dtype).reshape(keep)
    with np.errstate(invalid="ignore"):
        p: Array = np.exp(x - y_b)
    p *= g_b
    return p


def log_softmax(x: Array, axis: int = -1) -> Array:
    """y = x - logsumexp(x) along ``axis``."""
    x = _float(x, "log_softmax")
    x2, a = _rows(x, axis, "log_softmax")
    lse = _lse_rows(x2)
    out = _empty(x2)
    if out.size:
        _sm.subtract_rows.pick(x2.size)(x2, lse, out)
    return _unrows(out, x, a)


def log_softmax_backward(y: Array, grad: Array, axis: int = -1) -> Array:
    """dx = grad - exp(y) * sum(grad) along ``axis``, from the forward output y."""
    y = _float(y, "log_softmax_backward", "y")
    grad = _like(y, grad, "log_softmax_backward", "grad", "y")
    y2, a = _rows(y, axis, "log_softmax_backward")
    g2, _ = _rows(grad, axis, "log_softmax_backward")
    out = _empty(y2)
    if out.size:
        _sm.log_softmax_backward.pick(y2.size)(y2, g2, out)
    return _unrows(out, y, a)


# ---------------------------------------------------------------------------------------
# fused softmax cross-entropy over (N, C) logits with integer targets


def _ce_inputs(
    logits: Array, target: Array, weight: Array | None, op: str
) -> tuple[Array, Array, Array]:
    x = _float(logits, op, "logits")
    if x.ndim != 2:
        raise ValueError(f"{op}: logits must be (N, C), got shape {fmt_shape(x.shape)}")
    if not isinstance(target, np.ndarray) or target.dtype.kind not in "iu":
        got = target.dtype if isinstance(target, np.ndarray) else type(target).__name__
        raise TypeError(f"{op}: target must be an integer array of class indices, got {got}")
    if target.shape != (x.shape[0],):
        raise ValueError(
            f"{op}: target has shape {fmt_shape(target.shape)} but logits have shape "
            f"{fmt_shape(x.shape)}; expected ({x.shape[0]},)"
        )
    t = contiguous(target, dtype=np.int64)
    c = x.shape[1]
    if weight is None:
        w = _unit_weights(c)
    else:
        w = contiguous(weight, dtype=np.float64)
        if w.shape != (c,):
            raise ValueError(
                f"{op}: weight has shape {fmt_shape(w.shape)}, expected ({c},) for {c} classes"
            )
    return x, t, w


_UNIT_WEIGHTS: dict[int, Array] = {}


def _unit_weights(c: int) -> Array:
    """A read-only float64 array of c ones (cached: kernels only read class weights)."""
    w = _UNIT_WEIGHTS.get(c)
    if w is None:
        w = np.ones(c, dtype=np.float64)
        w.flags.writeable = False
        if len(_UNIT_WEIGHTS) < 64:
            _UNIT_WEIGHTS[c] = w
    return w


def _check_targets(t: Array, c: int, ignore_index: int, op: str) -> None:
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        i = int(np.argmax(bad))
        raise IndexError(
            f"{op}: target {int(t[i])} at position {i} is out of range for {c} classes "
            f"(valid: 0 to {c - 1}, or ignore_index={ignore_index})"
        )


def softmax_cross_entropy(
    logits: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[Array, Array, Array]:
    """Per-row cross-entropy of softmax(logits) against integer class targets.

    Returns ``(losses, lse, target_weight)``: the unreduced losses (N,) in the logits' dtype,
    the row logsumexp (N,) in float64 to pass to the backward, and w[target] (0 where
    ignored) whose sum is the denominator of PyTorch's ``reduction='mean'``.
    """
    op = "softmax_cross_entropy"
    x, t, w = _ce_inputs(logits, target, weight, op)
    eps = _scalar(label_smoothing, op, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {eps}")
    n, c = x.shape
    if not c:
        _check_targets(t, c, ignore_index, op)
    losses = np.empty(n, dtype=np.float64)
    target_weight = np.empty(n, dtype=np.float64)
    if not c:
        lse = np.full(n, -np.inf)
        losses.fill(0.0)  # only ignored rows are left (the check above raised otherwise)
        target_weight.fill(0.0)
    else:
        lse = np.empty(n, dtype=np.float64)
        if n:
            bad = _sm.cross_entropy_lse_rows.pick(x.size)(
                x, t, w, int(ignore_index), eps, _empty(x), lse, losses, target_weight
            )
            if bad:  # the kernel found targets outside [0, C): name the first
                _check_targets(t, c, ignore_index, op)
    return losses.astype(x.dtype), lse, target_weight


def softmax_cross_entropy_backward(
    logits: Array,
    target: Array,
    lse: Array,
    grad: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Array:
    """d loss_i / d logits scaled by grad[i] (N,): one fused pass."""
    op = "softmax_cross_entropy_backward"
    x, t, w = _ce_inputs(logits, target, weight, op)
    n = x.shape[0]
    g = contiguous(grad, dtype=np.float64).reshape(n)
    out = _empty(x)
    if out.size:
        bad = _sm.cross_entropy_backward_rows.pick(x.size)(
            x,
            contiguous(lse, dtype=np.float64),
            t,
            w,
            g,
            int(ignore_index),
            float(label_smoothing),
            float(x.shape[1]) if weight is None else float(w.sum()),
            out,
        )
        if bad:  # the kernel skipped targets outside [0, C): name the first
            _check_targets(t, x.shape[1], ignore_index, op)
    return out


# ---------------------------------------------------------------------------------------
# matmul (BLAS through NumPy) and its backward


def matmul(a: Array, b: Array) -> Array:
    """y = a @ b as ``np.matmul``: 1-D, 2-D and batched N-D with broadcasting."""
    for name, arr in (("a", a), ("b", b)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"matmul: {name} must be a NumPy array, got {type(arr).__name__}")
        if arr.ndim == 0:
            raise ValueError(f"matmul: {name} is 0-d (shape ()); matmul needs at least 1-D")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)} do not align "
            f"({k_a} != {k_b})"
        )
    try:
        out: Array = _mm(a, b)
    except ValueError as exc:
        raise ValueError(
            f"matmul: batch shapes of {fmt_shape(a.shape)} and {fmt_shape(b.shape)} "
            "do not broadcast"
        ) from exc
    return out


def matmul_backward(a: Array, b: Array, grad: Array) -> tuple[Array, Array]:
    """(da, db) for y = a @ b: da = grad @ b^T, db = a^T @ grad, summed back to each shape."""
    g = np.asarray(grad)
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    if a.ndim == 1:
        da = _mm(g[..., None, :], np.swapaxes(b, -1, -2))[..., 0, :]
        db = a[:, None] * g[..., None, :]
        return unbroadcast(da, a.shape), unbroadcast(db, b.shape)
    if b.ndim == 1:
        da = g[..., :, None] * b
        db = _mm(np.swapaxes(a, -1, -2), g[..., :, None])[..., 0]
        return unbroadcast(da, a.shape), unbroadcast(db, b.shape)
    if b.ndim == 2:
        # (..., m, k) @ (k, n): fold the batch into rows, one GEMM each and no batch loop.
        k, n = b.shape
        g2 = g.reshape(-1, n)
        return _mm(g2, b.T).reshape(a.shape), _mm(a.reshape(-1, k).T, g2)
    da = _mm(g, np.swapaxes(b, -1, -2))
    db = _mm(np.swapaxes(a, -1, -2), g)
    return unbroadcast(da, a.shape), unbroadcast(db, b.shape)


# ---------------------------------------------------------------------------------------
# fused in-place optimizer updates


def _state(param: Array, other: Array | None, op: str, name: str) -> Array:
    # the common case first, in a few attribute reads (this runs per parameter and step)
    if type(other) is np.ndarray and other.dtype is param.dtype and other.shape == param.shape:
        flags = other.flags
        if flags.c_contiguous and flags.writeable:
            return other.reshape(-1)
    if other is None:
        raise ValueError(f"{op}: {name} is required with these options")
    if not isinstance(other, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(other).__name__}")
    if other.shape != param.shape:
        raise ValueError(
            f"{op}: {name} has shape {fmt_shape(other.shape)} but param has shape "
            f"{fmt_shape(param.shape)}"
        )
    if other.dtype != param.dtype:
        raise TypeError(f"{op}: {name} has dtype {other.dtype} but param has dtype {param.dtype}")
    if not other.flags.c_contiguous or not other.flags.writeable:
        raise ValueError(f"{op}: {name} must be a writeable C-contiguous array (updated in place)")
    return other.reshape(-1)


def _param_grad(param: Array, grad: Array, op: str) -> tuple[Array, Array]:
    # the common case first: float32/float64 arrays of one shape and dtype, contiguous
    if type(param) is np.ndarray and type(grad) is np.ndarray:
        dt = param.dtype
        if grad.dtype is dt and (dt is _F32 or dt is _F64) and grad.shape == param.shape:
            flags = param.flags
            if flags.c_contiguous and flags.writeable and grad.flags.c_contiguous:
                return param.reshape(-1), grad.reshape(-1)
    if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
        raise TypeError(f"{op}: param must be a float32 or float64 NumPy array")
    if not param.flags.c_contiguous or not param.flags.writeable:
        raise ValueError(f"{op}: param must be a writeable C-contiguous array (updated in place)")
    g = _like(param, grad, op, "grad", "param")
    return param.reshape(-1), g.reshape(-1)


def sgd_(
    param: Array,
    grad: Array,
    momentum_buffer: Array | None = None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    first_step: bool = False,
) -> None:
    """One SGD step in place (PyTorch's rule; the buffer starts as the first gradient)."""
    op = "sgd_"
    p, g = _param_grad(param, grad, op)
    buf = _state(param, momentum_buffer, op, "momentum_buffer") if momentum != 0.0 else p
    _opt.sgd.pick(p.size)(
        p,
        g,
        buf,
        float(lr),
        float(momentum),
        float(dampening),
        float(weight_decay),
        bool(nesterov),
        bool(maximize),
        bool(first_step),
    )


def adam_(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array | None = None,
    *,
    step: int,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    """One Adam (or AdamW, with ``decoupled_weight_decay``) step in place; ``step`` >= 1."""
    op = "adamw_" if decoupled_weight_decay else "adam_"
    if step < 1:
        raise ValueError(f"{op}: step counts from 1, got {step}")
    p, g = _param_grad(param, grad, op)
    m = _state(param, exp_avg, op, "exp_avg")
    v = _state(param, exp_avg_sq, op, "exp_avg_sq")
    vmax = _state(param, max_exp_avg_sq, op, "max_exp_avg_sq") if amsgrad else v
    lr_ = float(lr)
    _opt.adam.pick(p.size)(
        p,
        g,
        m,
        v,
        vmax,
        lr_ / (1.0 - float(beta1) ** step),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        1.0 - lr_ * float(weight_decay),
        math.sqrt(1.0 - float(beta2) ** step),
        bool(amsgrad),
        bool(maximize),
        bool(decoupled_weight_decay),
    )


def rmsprop_(
    param: Array,
    grad: Array,
    square_avg: Array,
    grad_avg: Array | None = None,
    momentum_buffer: Array | None = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None:
    """One RMSprop step in place (PyTorch's rule, with centered and momentum variants)."""
    op = "rmsprop_"
    p, g = _param_grad(param, grad, op)
    sq = _state(param, square_avg, op, "square_avg")
    ga = _state(param, grad_avg, op, "grad_avg") if centered else sq
    buf = _state(param, momentum_buffer, op, "momentum_buffer") if momentum > 0.0 else sq
    _opt.rmsprop.pick(p.size)(
        p,
        g,
        sq,
        ga,
        buf,
        float(lr),
        float(alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        bool(centered),
        bool(maximize),
    )


def adagrad_(
    param: Array,
    grad: Array,
    state_sum: Array,
    *,
    step: int,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    """One Adagrad step in place; ``step`` >= 1 (the count after this update)."""
    op = "adagrad_"
    if step < 1:
        raise ValueError(f"{op}: step counts from 1, got {step}")
    p, g = _param_grad(param, grad, op)
    s = _state(param, state_sum, op, "state_sum")
    clr = float(lr) / (1.0 + (step - 1) * float(lr_decay))
    _opt.adagrad.pick(p.size)(p, g, s, clr, float(weight_decay), float(eps), bool(maximize))


__all__ = [
    "adagrad_",
    "adam_",
    "extreme_backward",
    "fmt_shape",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "matmul",
    "matmul_backward",
    "max",
    "mean",
    "mean_backward",
    "min",
    "normalize_axes",
    "relu",
    "relu_backward",
    "rmsprop_",
    "sgd_",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "softplus",
    "softplus_backward",
    "sum",
    "sum_backward",
    "tanh",
    "tanh_backward",
    "unbroadcast",
    "var",
    "var_backward",
]
