"""Reductions and the softmax family; kernels come from ``gradwise.core.ops``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradwise.autograd.function import Function, Grads
from gradwise.autograd.ops.elementwise import as_float
from gradwise.autograd.tensor import Tensor, as_tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Axis, Shape

_add_reduce: Callable[..., Array] = np.add.reduce
_asarray = np.asarray
_ndarray = np.ndarray
_FULL_SUM_MAX = cops.NUMPY_FULL_SUM_MAX


class Sum(Function):
    """y = x.sum(axis);  dx = grad broadcast back to x's shape"""

    __slots__ = ("axis", "keepdims", "shape")

    def forward(self, x: Array, *, axis: Axis, keepdims: bool) -> Array:
        self.shape = x.shape
        self.axis = axis
        self.keepdims = keepdims
        if axis is None and type(x) is _ndarray and x.size <= _FULL_SUM_MAX and x.dtype.kind == "f":
            # cops.sum's own first step, without the call (a third of a small sum)
            return _asarray(_add_reduce(x, None, None, None, keepdims))
        return cops.sum(x, axis, keepdims)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t.sum(axis)"""
        return None if t is None else cops.sum(t, self.axis, self.keepdims)

    def backward(self, grad: Array) -> Grads:
        if self.axis is None and grad.size == 1:  # whole-array sum: a filled array
            out = np.empty(self.shape, grad.dtype)
            out.fill(grad.item())
            return (out,)
        return (cops.sum_backward(grad, self.shape, self.axis, self.keepdims),)


class Mean(Function):
    """y = x.mean(axis);  dx = grad / n broadcast back"""

    __slots__ = ("axis", "keepdims", "shape")

    def forward(self, x: Array, *, axis: Axis, keepdims: bool) -> Array:
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return cops.mean(x, axis, keepdims)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t.mean(axis)"""
        return None if t is None else cops.mean(t, self.axis, self.keepdims)

    def backward(self, grad: Array) -> Grads:
        return (cops.mean_backward(grad, self.shape, self.axis, self.keepdims),)


class Extreme(Function):
    """y = x.max(axis) or x.min(axis);  dx = grad split evenly between the tied maxima"""

    __slots__ = ("axis", "keepdims", "s_x", "s_y")
    saves = (0, -1)

    def forward(self, x: Array, *, axis: Axis, keepdims: bool, want_max: bool) -> Array:
        self.s_x, self.axis, self.keepdims = x, axis, keepdims
        self.s_y = cops.max(x, axis, keepdims) if want_max else cops.min(x, axis, keepdims)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = the mean of t over the tied extremes (backward's weights, summed with t)"""
        if t is None:
            return None
        x, y = self.s_x, self.s_y
        w = cops.extreme_backward(x, y, np.ones(y.shape, x.dtype), self.axis, self.keepdims)
        return cops.sum(w * t, self.axis, self.keepdims)

    def backward(self, grad: Array) -> Grads:
        return (cops.extreme_backward(self.s_x, self.s_y, grad, self.axis, self.keepdims),)


class Var(Function):
    """y = var(x, axis, ddof);  dx = grad 2 (x - mean) / (n - ddof)"""

    __slots__ = ("axis", "ddof", "keepdims", "s_x")
    saves = (0,)

    def forward(self, x: Array, *, axis: Axis, keepdims: bool, ddof: float) -> Array:
        self.s_x, self.axis, self.keepdims, self.ddof = x, axis, keepdims, ddof
        return cops.var(x, axis, keepdims, ddof)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = sum(2 (x - mean) t) / (n - ddof)"""
        if t is None:
            return None
        ones = np.ones(out.shape, out.dtype)
        w = cops.var_backward(self.s_x, ones, self.axis, self.keepdims, self.ddof)
        return cops.sum(w * t, self.axis, self.keepdims)

    def backward(self, grad: Array) -> Grads:
        return (cops.var_backward(self.s_x, grad, self.axis, self.keepdims, self.ddof),)


class Std(Function):
    """y = sqrt(var(x));  dx = var'(x) grad / (2 y)"""

    __slots__ = ("axis", "ddof", "keepdims", "s_x", "s_y")
    saves = (0, -1)

    def forward(self, x: Array, *, axis: Axis, keepdims: bool, ddof: float) -> Array:
        self.s_x, self.axis, self.keepdims, self.ddof = x, axis, keepdims, ddof
        self.s_y = np.sqrt(cops.var(x, axis, keepdims, ddof))
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = dvar / (2 y)"""
        if t is None:
            return None
        ones = np.ones(out.shape, out.dtype)
        w = cops.var_backward(self.s_x, ones, self.axis, self.keepdims, self.ddof)
        with np.errstate(divide="ignore", invalid="ignore"):
            dy: Array = cops.sum(w * t, self.axis, self.keepdims) / (self.s_y + self.s_y)
        return dy

    def backward(self, grad: Array) -> Grads:
        with np.errstate(divide="ignore", invalid="ignore"):
            g = grad / (self.s_y + self.s_y)
        return (cops.var_backward(self.s_x, g, self.axis, self.keepdims, self.ddof),)


class Softmax(Function):
    """y = softmax(x, axis);  dx = y (grad - sum(grad y))"""

    __slots__ = ("axis", "s_y")
    saves = (-1,)

    def forward(self, x: Array, *, axis: int) -> Array:
        self.axis = axis
        self.s_y = cops.softmax(x, axis)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = y (t - sum(y t)): the Jacobian is symmetric, so backward's product"""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.softmax_backward(self.s_y, grad, self.axis),)


class LogSoftmax(Function):
    """y = x - logsumexp(x, axis);  dx = grad - exp(y) sum(grad)"""

    __slots__ = ("axis", "s_y")
    saves = (-1,)

    def forward(self, x: Array, *, axis: int) -> Array:
        self.axis = axis
        self.s_y = cops.log_softmax(x, axis)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t - sum(softmax(x) t)"""
        if t is None:
            return None
        p = np.exp(self.s_y)
        dy: Array = t - np.sum(p * t, axis=self.axis, keepdims=True)
        return dy

    def backward(self, grad: Array) -> Grads:
        return (cops.log_softmax_backward(self.s_y, grad, self.axis),)


class LogSumExp(Function):
    """y = log(sum(exp(x), axis));  dx = grad exp(x - y)"""

    __slots__ = ("axes", "keepdims", "s_x", "s_y")
    saves = (0, -1)

    def forward(self, x: Array, *, axes: tuple[int, ...], keepdims: bool) -> Array:
        self.s_x, self.axes, self.keepdims = x, axes, keepdims
        y = cops.logsumexp(_merge(x, axes), -1, keepdims=False)
        self.s_y = y.reshape(_kept_shape(x.shape, axes, True))
        return self.s_y if keepdims else y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = sum(exp(x - y) t) over the axes"""
        if t is None:
            return None
        with np.errstate(invalid="ignore"):
            w = np.exp(self.s_x - self.s_y)
        dy: Array = np.sum(w * t, axis=self.axes, keepdims=True).reshape(out.shape)
        return dy

    def backward(self, grad: Array) -> Grads:
        x, y = self.s_x, self.s_y
        g = grad.reshape(y.shape)
        # x - y may overflow to -inf (x = -1e38, y = 3e38): exp gives the exact 0
        with np.errstate(over="ignore", invalid="ignore"):
            return (g * np.exp(x - y),)


def _kept_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _merge(x: Array, axes: tuple[int, ...]) -> Array:
    """x with ``axes`` moved to the end and merged into one (for a one-axis kernel)."""
    if x.ndim == 0:
        return x.reshape(1)
    kept = [i for i in range(x.ndim) if i not in axes]
    merged = 1
    for i in axes:
        merged *= x.shape[i]
    moved = np.transpose(x, kept + list(axes))
    return moved.reshape((*[x.shape[i] for i in kept], merged))


def _float_tensor(x: Tensor, op: str) -> Tensor:
    t = as_tensor(x, op)
    if t.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {t.data.dtype}")
    return t


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all by default); ints and bools sum to int64."""
    return Sum.apply(as_tensor(x, "sum"), axis=axis, keepdims=keepdims)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; the mean of nothing is NaN."""
    return Mean.apply(_float_tensor(x, "mean"), axis=axis, keepdims=keepdims)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; NaN propagates; empty raises ValueError."""
    return Extreme.apply(as_tensor(x, "max"), axis=axis, keepdims=keepdims, want_max=True)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``; NaN propagates; empty raises ValueError."""
    return Extreme.apply(as_tensor(x, "min"), axis=axis, keepdims=keepdims, want_max=False)


def var(x: Tensor, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> Tensor:
    """Variance over ``axis`` (``ddof=1`` for the unbiased estimate)."""
    return Var.apply(_float_tensor(x, "var"), axis=axis, keepdims=keepdims, ddof=ddof)


def std(x: Tensor, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> Tensor:
    """Standard deviation over ``axis``."""
    return Std.apply(_float_tensor(x, "std"), axis=axis, keepdims=keepdims, ddof=ddof)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, stable."""
    return Softmax.apply(as_float(x, "softmax"), axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``, stable."""
    return LogSoftmax.apply(as_float(x, "log_softmax"), axis=axis)


def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis`` (one or several; all by default), stable."""
    t = as_float(x, "logsumexp")
    axes = cops.normalize_axes(t.data.ndim, axis, "logsumexp")
    return LogSumExp.apply(t, axes=axes, keepdims=keepdims)
