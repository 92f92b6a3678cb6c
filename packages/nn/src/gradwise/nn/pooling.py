"""2-D pooling: ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d`` and their modules.

Each is one graph node over Numba loops (``gradwise.core.conv``), one plane ``(n, c)``
per parallel iteration. Max pooling saves the argmax indices (int64) and scatters the
gradient to them; average pooling saves nothing but the geometry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradwise.autograd import Tensor
from gradwise.autograd.function import Grads, Op
from gradwise.core import conv as cconv
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape
from gradwise.nn.module import _Unary

Pair = tuple[int, int]
IntOrPair = int | Sequence[int]


def _gather(x: Array, index: Array) -> Array:
    """x[n, c].flat[index[n, c]] (0 where the index is -1)."""
    n, c = index.shape[:2]
    flat = x.reshape(n, c, -1)
    idx = index.reshape(n, c, -1)
    picked = np.take_along_axis(flat, np.maximum(idx, 0), axis=2) if flat.size else flat[..., :0]
    picked = np.where(idx >= 0, picked, x.dtype.type(0)) if picked.size else picked
    return np.ascontiguousarray(picked.reshape(index.shape))


class MaxPool2dFunction(Op):
    """y = max over each window;  dx = grad scattered to the argmax positions."""

    __slots__ = ("s_index", "x_shape")

    def forward(
        self,
        x: Array,
        *,
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        out_size: Pair,
    ) -> Array:
        """Window maxima of ``(N, C, H, W)``."""
        out, self.s_index = cconv.max_pool2d(x, kernel_size, stride, padding, dilation, out_size)
        self.x_shape = x.shape
        return out

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: tx at each window's argmax."""
        if tx is None:
            return None
        return _gather(tx, self.s_index)

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        return (cconv.max_pool2d_backward(grad, self.s_index, self.x_shape),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The scatter as a differentiable op (its derivative is the gather)."""
        return (_MaxPoolScatter.apply(grad, index=self.s_index, x_shape=self.x_shape),)


class _MaxPoolScatter(Op):
    """dx = grad scattered to the argmax positions;  d(grad) = gather of the upstream gradient."""

    __slots__ = ("s_index",)

    def forward(self, g: Array, *, index: Array, x_shape: Shape) -> Array:
        """Scatter g."""
        self.s_index = index
        return cconv.max_pool2d_backward(g, index, x_shape)

    def jvp(self, out: Array, tg: Array | None) -> Array | None:
        """Linear: the scatter of the tangent."""
        return None if tg is None else cconv.max_pool2d_backward(tg, self.s_index, out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gather at the argmax positions."""
        return (_gather(grad, self.s_index),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The gather as a differentiable op."""
        return (_MaxPoolGather.apply(grad, index=self.s_index),)


class _MaxPoolGather(Op):
    """y = x at the argmax positions;  dx = grad scattered back."""

    __slots__ = ("s_index", "x_shape")

    def forward(self, x: Array, *, index: Array) -> Array:
        """Gather x."""
        self.s_index, self.x_shape = index, x.shape
        return _gather(x, index)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Linear: the gather of the tangent."""
        return None if tx is None else _gather(tx, self.s_index)

    def backward(self, grad: Array) -> Grads:
        """Scatter back."""
        return (cconv.max_pool2d_backward(grad, self.s_index, self.x_shape),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The scatter as a differentiable op."""
        return (_MaxPoolScatter.apply(grad, index=self.s_index, x_shape=self.x_shape),)


class AvgPool2dFunction(Op):
    """y = window sum / divisor;  dx = grad / divisor spread over each window."""

    __slots__ = ("count_include_pad", "kernel_size", "padding", "stride", "x_shape")

    def forward(
        self,
        x: Array,
        *,
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        out_size: Pair,
        count_include_pad: bool,
    ) -> Array:
        """Window means of ``(N, C, H, W)``."""
        self.x_shape, self.kernel_size, self.stride = x.shape, kernel_size, stride
        self.padding, self.count_include_pad = padding, count_include_pad
        return cconv.avg_pool2d(x, kernel_size, stride, padding, out_size, count_include_pad)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: the same pooling of tx (a linear map)."""
        if tx is None:
            return None
        size = (out.shape[2], out.shape[3])
        t = np.ascontiguousarray(tx, dtype=out.dtype)
        return cconv.avg_pool2d(
            t, self.kernel_size, self.stride, self.padding, size, self.count_include_pad
        )

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        return (
            cconv.avg_pool2d_backward(
                grad,
                self.x_shape,
                self.kernel_size,
                self.stride,
                self.padding,
                self.count_include_pad,
            ),
        )

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The adjoint as a differentiable op (its derivative is this pooling)."""
        return (
            _AvgPoolAdjoint.apply(
                grad,
                x_shape=self.x_shape,
                kernel_size=self.kernel_size,
                stride=self.stride,
                padding=self.padding,
                count_include_pad=self.count_include_pad,
            ),
        )


class _AvgPoolAdjoint(Op):
    """dx = A^T g for the average pooling A;  d(g) = A applied to the upstream gradient."""

    __slots__ = ("count_include_pad", "kernel_size", "padding", "stride", "x_shape")

    def forward(
        self,
        g: Array,
        *,
        x_shape: Shape,
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        count_include_pad: bool,
    ) -> Array:
        """Spread g back over the windows."""
        self.x_shape, self.kernel_size, self.stride = x_shape, kernel_size, stride
        self.padding, self.count_include_pad = padding, count_include_pad
        return cconv.avg_pool2d_backward(
            g, x_shape, kernel_size, stride, padding, count_include_pad
        )

    def _pool(self, t: Array) -> Array:
        size = (self.shapes[0][2], self.shapes[0][3])  # g's spatial shape
        return cconv.avg_pool2d(
            np.ascontiguousarray(t),
            self.kernel_size,
            self.stride,
            self.padding,
            size,
            self.count_include_pad,
        )

    def jvp(self, out: Array, tg: Array | None) -> Array | None:
        """Linear: the adjoint of the tangent."""
        if tg is None:
            return None
        return cconv.avg_pool2d_backward(
            tg, self.x_shape, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )

    def backward(self, grad: Array) -> Grads:
        """The pooling of the upstream gradient."""
        return (self._pool(grad),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The pooling as a differentiable op."""
        return (
            AvgPool2dFunction.apply(
                grad,
                kernel_size=self.kernel_size,
                stride=self.stride,
                padding=self.padding,
                out_size=(self.shapes[0][2], self.shapes[0][3]),
                count_include_pad=self.count_include_pad,
            ),
        )


class AdaptiveAvgPool2dFunction(Op):
    """y = mean over PyTorch's adaptive windows;  dx = grad / window size spread back."""

    __slots__ = ("x_shape",)

    def forward(self, x: Array, *, out_size: Pair) -> Array:
        """Adaptive window means of ``(N, C, H, W)``."""
        self.x_shape = x.shape
        return cconv.adaptive_avg_pool2d(x, out_size)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: the same pooling of tx (a linear map)."""
        if tx is None:
            return None
        t = np.ascontiguousarray(tx, dtype=out.dtype)
        return cconv.adaptive_avg_pool2d(t, (out.shape[2], out.shape[3]))

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        return (cconv.adaptive_avg_pool2d_backward(grad, self.x_shape),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The adjoint as a differentiable op (its derivative is this pooling)."""
        return (_AdaptiveAdjoint.apply(grad, x_shape=self.x_shape),)


class _AdaptiveAdjoint(Op):
    """dx = A^T g for the adaptive average pooling A;  d(g) = A of the upstream gradient."""

    __slots__ = ("x_shape",)

    def forward(self, g: Array, *, x_shape: Shape) -> Array:
        """Spread g back over the windows."""
        self.x_shape = x_shape
        return cconv.adaptive_avg_pool2d_backward(g, x_shape)

    def jvp(self, out: Array, tg: Array | None) -> Array | None:
        """Linear: the adjoint of the tangent."""
        return None if tg is None else cconv.adaptive_avg_pool2d_backward(tg, self.x_shape)

    def backward(self, grad: Array) -> Grads:
        """The pooling of the upstream gradient."""
        size = (self.shapes[0][2], self.shapes[0][3])
        return (cconv.adaptive_avg_pool2d(np.ascontiguousarray(grad), size),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The pooling as a differentiable op."""
        size = (self.shapes[0][2], self.shapes[0][3])
        return (AdaptiveAvgPool2dFunction.apply(grad, out_size=size),)


def _pair(value: object, op: str, name: str, low: int) -> Pair:
    items = (value, value) if isinstance(value, int | np.integer) else value
    if (
        not isinstance(items, Sequence)
        or len(items) not in (1, 2)
        or any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in items)
    ):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    a, b = (items[0], items[0]) if len(items) == 1 else (items[0], items[1])
    if min(a, b) < low:
        raise ValueError(f"{op}: {name} must be >= {low}, got {value!r}")
    return int(a), int(b)


def _input(x: object, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {x.data.dtype}")
    if x.data.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
            f"{cops.fmt_shape(x.data.shape)}"
        )
    return x


def _geometry(
    x: Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair,
    ceil_mode: bool,
    op: str,
) -> tuple[Pair, Pair, Pair, Pair, Pair]:
    k = _pair(kernel_size, op, "kernel_size", 1)
    s = k if stride is None or stride == () else _pair(stride, op, "stride", 1)
    p = _pair(padding, op, "padding", 0)
    d = _pair(dilation, op, "dilation", 1)
    for ki, pi, di in zip(k, p, d, strict=True):
        if pi > (di * (ki - 1) + 1) // 2:
            raise ValueError(
                f"{op}: pad should be at most half of effective kernel size, but got "
                f"pad={pi}, kernel_size={ki} and dilation={di}"
            )
    h, w = x.data.shape[-2:]
    out = (
        cconv.pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode),
        cconv.pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode),
    )
    if min(out) < 1:
        raise ValueError(
            f"{op}: input of shape {cops.fmt_shape(x.data.shape)} is too small for "
            f"kernel_size={k}, stride={s}, padding={p}, dilation={d}: output size "
            f"{cops.fmt_shape(out)}"
        )
    return k, s, p, d, out


def _batched(x: Tensor) -> tuple[Tensor, bool]:
    if x.data.ndim == 3:
        return x.unsqueeze(0), True
    return x, False


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """y[n, c, oh, ow] = max of the (dilated, padded with -inf) window; NaN propagates.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size: An int or a pair.
        stride: Defaults to ``kernel_size``.
        padding: Implicit -inf padding on both sides, at most half the effective kernel.
        dilation: Spacing between window elements.
        ceil_mode: Round the output size up (the last window must start inside the input
            or the left padding).

    Raises:
        ValueError: bad geometry, or an input too small for it. TypeError: bad types.
    """
    x = _input(input, "max_pool2d")
    k, s, p, d, out = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    xb, unbatched = _batched(x)
    y = MaxPool2dFunction.apply(xb, kernel_size=k, stride=s, padding=p, dilation=d, out_size=out)
    return y.squeeze(0) if unbatched else y


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """y[n, c, oh, ow] = sum of the window / divisor, as PyTorch's ``F.avg_pool2d``.

    The divisor is the window's size clipped to the padded input when
    ``count_include_pad``, else the number of real (non-padding) elements in it.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size: An int or a pair.
        stride: Defaults to ``kernel_size``.
        padding: Implicit zero padding on both sides, at most half the kernel.
        ceil_mode: Round the output size up.
        count_include_pad: Count padding zeros in the divisor.

    Raises:
        ValueError: bad geometry, or an input too small for it. TypeError: bad types.
    """
    x = _input(input, "avg_pool2d")
    k, s, p, _, out = _geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    xb, unbatched = _batched(x)
    y = AvgPool2dFunction.apply(
        xb,
        kernel_size=k,
        stride=s,
        padding=p,
        out_size=out,
        count_include_pad=bool(count_include_pad),
    )
    return y.squeeze(0) if unbatched else y


def _adaptive_size(output_size: int | Sequence[int | None], space: Shape, op: str) -> Pair:
    items = (output_size, output_size) if isinstance(output_size, int | np.integer) else output_size
    if not isinstance(items, Sequence) or len(items) not in (1, 2):
        raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    if len(items) == 1:
        items = (items[0], items[0])
    sizes: list[int] = []
    for v, full in zip(items, space, strict=True):
        if v is None:
            sizes.append(int(full))
        elif isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise TypeError(f"{op}: output_size must hold ints or None, got {output_size!r}")
        elif v < 0:
            raise ValueError(f"{op}: output_size must be >= 0, got {output_size!r}")
        else:
            sizes.append(int(v))
    return sizes[0], sizes[1]


def adaptive_avg_pool2d(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """Means over windows ``[floor(i H / OH), ceil((i + 1) H / OH))`` (same for W).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)`` with H, W > 0.
        output_size: An int, or a pair whose ``None`` entries keep the input's size.

    Raises:
        ValueError: an empty spatial input or negative sizes. TypeError: bad types.
    """
    op = "adaptive_avg_pool2d"
    x = _input(input, op)
    space = x.data.shape[-2:]
    if min(space) < 1:
        raise ValueError(
            f"{op}: expected non-empty spatial dimensions, got input of shape "
            f"{cops.fmt_shape(x.data.shape)}"
        )
    out = _adaptive_size(output_size, space, op)
    xb, unbatched = _batched(x)
    y = AdaptiveAvgPool2dFunction.apply(xb, out_size=out)
    return y.squeeze(0) if unbatched else y


def _show(value: object) -> str:
    return str(tuple(value)) if isinstance(value, list) else str(value)


class MaxPool2d(_Unary):
    """Max pooling over ``(N, C, H, W)``; arguments as :func:`max_pool2d`.

    Args:
        kernel_size: An int or a pair.
        stride: Defaults to ``kernel_size``.
        padding: Implicit -inf padding.
        dilation: Spacing between window elements.
        return_indices: Not supported (must be False).
        ceil_mode: Round the output size up.
    """

    def __init__(
        self,
        kernel_size: IntOrPair,
        stride: IntOrPair | None = None,
        padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        if return_indices:
            raise NotImplementedError("MaxPool2d: return_indices=True is not supported")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )

    def extra_repr(self) -> str:
        """PyTorch's ``kernel_size=.., stride=.., padding=.., dilation=.., ceil_mode=..``."""
        return (
            f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, "
            f"padding={_show(self.padding)}, dilation={_show(self.dilation)}, "
            f"ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(_Unary):
    """Average pooling over ``(N, C, H, W)``; arguments as :func:`avg_pool2d`.

    Args:
        kernel_size: An int or a pair.
        stride: Defaults to ``kernel_size``.
        padding: Implicit zero padding.
        ceil_mode: Round the output size up.
        count_include_pad: Count padding zeros in the divisor.
        divisor_override: Not supported (must be None).
    """

    def __init__(
        self,
        kernel_size: IntOrPair,
        stride: IntOrPair | None = None,
        padding: IntOrPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        if divisor_override is not None:
            raise NotImplementedError("AvgPool2d: divisor_override is not supported")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )

    def extra_repr(self) -> str:
        """PyTorch's ``kernel_size=.., stride=.., padding=..``."""
        return (
            f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, "
            f"padding={_show(self.padding)}"
        )


class AdaptiveAvgPool2d(_Unary):
    """Adaptive average pooling to a fixed ``output_size`` (``None`` entries keep the size).

    Args:
        output_size: An int or a pair of ints / None.
    """

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        """``output_size=..``."""
        return f"output_size={_show(self.output_size)}"


__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "MaxPool2d",
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "max_pool2d",
]
