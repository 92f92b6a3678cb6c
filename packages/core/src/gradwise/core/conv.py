"""Typed entry points of the convolution and pooling kernels (NCHW float arrays).

Geometry (kernel size, stride, padding, dilation) is given as ``(h, w)`` pairs of ints;
padding is ``(top, left)`` and the output size ``(OH, OW)`` is passed in, which lets the
caller pad asymmetrically (``padding='same'`` with an even kernel, ``ceil_mode``). Each
function validates, makes its inputs contiguous, picks the serial or parallel kernel by
size and allocates the output.
"""

from __future__ import annotations

import math

import numpy as np

from gradwise.core._kernels import conv as _conv
from gradwise.core.dtypes import Array, Shape, contiguous

Pair = tuple[int, int]


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _float4(x: object, op: str, name: str = "x", ndim: int = 4) -> Array:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {_fmt(x.shape)}")
    return contiguous(x)


def _pairs(op: str, **pairs: Pair) -> None:
    for name, value in pairs.items():
        if len(value) != 2 or not all(isinstance(v, int | np.integer) for v in value):
            raise TypeError(f"{op}: {name} must be a pair of ints, got {value!r}")
        low = 0 if name in ("padding", "out_size") else 1
        if min(value) < low:
            raise ValueError(f"{op}: {name} must be >= {low}, got {value!r}")


def output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """floor((size + pad_total - dilation (kernel - 1) - 1) / stride) + 1 (may be <= 0)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's pooling size: floor or ceil; in ceil mode the last window must start
    inside the input or the left padding.
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def im2col(
    x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, out_size: Pair
) -> Array:
    """Columns ``(C, kH, kW, N, OH, OW)`` of ``x`` ``(N, C, H, W)``: one receptive field per
    ``(n, oh, ow)``, zero where the window reaches into the padding.
    """
    x = _float4(x, "im2col")
    _pairs(
        "im2col",
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        out_size=out_size,
    )
    n, c = x.shape[:2]
    cols = np.empty((c, *kernel_size, n, *out_size), dtype=x.dtype)
    if cols.size:
        _conv.im2col.pick(cols.size)(x, *stride, *padding, *dilation, cols)
    return cols


def col2im(cols: Array, x_shape: Shape, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """The adjoint of :func:`im2col`: ``dx`` of shape ``x_shape`` with every column entry
    added back where it was read from (padding entries dropped).
    """
    cols = _float4(cols, "col2im", "cols", ndim=6)
    _pairs("col2im", stride=stride, padding=padding, dilation=dilation)
    if len(x_shape) != 4 or cols.shape[0] != x_shape[1] or cols.shape[3] != x_shape[0]:
        raise ValueError(
            f"col2im: cols of shape {_fmt(cols.shape)} do not fit input shape {_fmt(x_shape)}"
        )
    dx = np.zeros(x_shape, dtype=cols.dtype)
    if cols.size and dx.size:
        _conv.col2im.pick(cols.size)(cols, *stride, *padding, *dilation, dx)
    return dx


def _planes(x: Array) -> Array:
    n, c, h, w = x.shape
    return x.reshape(n * c, h, w)


def max_pool2d(
    x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, out_size: Pair
) -> tuple[Array, Array]:
    """Window maxima of ``(N, C, H, W)`` and the flat ``h * W + w`` index of each (int64);
    NaN propagates. Windows lying wholly in the padding give -inf and index -1.
    """
    x = _float4(x, "max_pool2d")
    _pairs(
        "max_pool2d",
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        out_size=out_size,
    )
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    index = np.empty((n, c, *out_size), dtype=np.int64)
    if out.size:
        _conv.max_pool2d.pick(out.size * math.prod(kernel_size))(
            _planes(x), *kernel_size, *stride, *padding, *dilation, _planes(out), _planes(index)
        )
    return out, index


def max_pool2d_backward(grad: Array, index: Array, x_shape: Shape) -> Array:
    """Scatter ``grad`` to the positions ``index`` chose (repeated positions add up)."""
    grad = _float4(grad, "max_pool2d_backward", "grad")
    if index.shape != grad.shape or index.dtype != np.int64:
        raise ValueError(
            f"max_pool2d_backward: index of shape {_fmt(index.shape)} ({index.dtype}) does not "
            f"fit grad of shape {_fmt(grad.shape)} (int64 expected)"
        )
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.max_pool2d_backward.pick(dx.size)(_planes(grad), _planes(index), _planes(dx))
    return dx


def avg_pool2d(
    x: Array,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    out_size: Pair,
    count_include_pad: bool = True,
) -> Array:
    """Window means of ``(N, C, H, W)``, the sum accumulated in float64."""
    x = _float4(x, "avg_pool2d")
    _pairs("avg_pool2d", kernel_size=kernel_size, stride=stride, padding=padding, out_size=out_size)
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    if out.size:
        _conv.avg_pool2d.pick(out.size * math.prod(kernel_size))(
            _planes(x), *kernel_size, *stride, *padding, bool(count_include_pad), _planes(out)
        )
    return out


def avg_pool2d_backward(
    grad: Array,
    x_shape: Shape,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    count_include_pad: bool = True,
) -> Array:
    """Each output's gradient divided by its divisor, spread over its window."""
    grad = _float4(grad, "avg_pool2d_backward", "grad")
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.avg_pool2d_backward.pick(grad.size * math.prod(kernel_size))(
            _planes(grad), *kernel_size, *stride, *padding, bool(count_include_pad), _planes(dx)
        )
    return dx


def adaptive_avg_pool2d(x: Array, out_size: Pair) -> Array:
    """Means over PyTorch's adaptive windows ``[floor(i H / OH), ceil((i + 1) H / OH))``."""
    x = _float4(x, "adaptive_avg_pool2d")
    _pairs("adaptive_avg_pool2d", out_size=out_size)
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    if out.size:
        _conv.adaptive_avg_pool2d.pick(x.size)(_planes(x), _planes(out))
    return out


def adaptive_avg_pool2d_backward(grad: Array, x_shape: Shape) -> Array:
    """Each output's gradient divided by its window size, spread over its window."""
    grad = _float4(grad, "adaptive_avg_pool2d_backward", "grad")
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.adaptive_avg_pool2d_backward.pick(dx.size)(_planes(grad), _planes(dx))
    return dx


__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "output_size",
    "pool_output_size",
]
