"""``conv1d``/``conv2d`` and the ``Conv1d``/``Conv2d`` modules: im2col plus GEMMs.

The array work is in ``gradwise.core.conv``: forward unrolls the receptive fields of a
few images at a time into columns ``cols (C kH kW, B OH OW)`` (Numba), multiplies
``W (O, C kH kW) @ cols`` and copies the product into NCHW order with the bias; groups
make each product a batched GEMM over ``G`` blocks. Backward is two more GEMMs per chunk
and the adjoint col2im:

    dW^T = sum over chunks of cols @ g2^T,  dx = col2im(W^T @ g2),  db = sum(g)

with ``g2`` a chunk's output gradient as ``(O, B OH OW)``. The node saves the input and
the weight, not the columns: backward rebuilds each chunk's columns while they fit in
cache (9x less memory for a 3x3 kernel, and faster than streaming a saved column matrix
back). ``conv1d`` runs as ``conv2d`` with a height of 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from gradwise.autograd import Tensor
from gradwise.autograd._tangents import lin
from gradwise.autograd.function import Grads, Op
from gradwise.core import conv as cconv
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape
from gradwise.nn import init
from gradwise.nn.linear import _float_dtype
from gradwise.nn.module import _Unary
from gradwise.nn.parameter import Parameter

Pair = tuple[int, int]


class ConvFunction(Op):
    """y = conv(x, W) + b over NCHW (or NCL) arrays, groups as batched GEMMs.

    dW = g @ cols^T, dx = col2im(W^T @ g), db = sum(g) over batch and space (chunked).
    """

    __slots__ = ("dilation", "groups", "padding", "s_w", "s_x", "stride", "x_shape")
    saves = (0, 1)

    def forward(
        self,
        x: Array,
        w: Array,
        *b: Array,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
        out_size: Pair,
    ) -> Array:
        """Convolve (cross-correlate, as PyTorch) ``x`` with ``w``."""
        self.x_shape, self.s_x, self.s_w = x.shape, x, w
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        y = cconv.conv2d(
            _as4(x), _as4(w), b[0] if b else None, stride, padding, dilation, groups, out_size
        )
        out: Array = y.reshape(y.shape[0], y.shape[1], out_size[1]) if x.ndim == 3 else y
        return out

    def _geo(self) -> _Geometry:
        return _Geometry(self.stride, self.padding, self.dilation, self.groups)

    def jvp(
        self, out: Array, tx: Array | None, tw: Array | None, *tb: Array | None
    ) -> Array | None:
        """Forward-mode tangent: dy = conv(tx, W) + conv(x, tW) + tb (bilinear)."""
        geo, dtype = self._geo(), out.dtype
        y4 = _as4(out)
        size = (y4.shape[2], y4.shape[3])
        dy = np.zeros(y4.shape, dtype=dtype)
        if tx is not None:
            t4 = np.ascontiguousarray(_as4(tx), dtype=dtype)
            dy += _conv_arrays(t4, _as4(self.s_w), geo, size)
        if tw is not None:
            t4 = np.ascontiguousarray(_as4(tw.reshape(self.s_w.shape)), dtype=dtype)
            dy += _conv_arrays(_as4(self.s_x), t4, geo, size)
        if tb and tb[0] is not None:
            dy += tb[0].reshape(1, -1, 1, 1)
        return dy.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gradients of x, W (and b)."""
        geo, inputs = self._geo(), self.inputs
        x4, w4 = _as4(self.s_x), _as4(self.s_w)
        g4 = _as4(grad)
        dx4, dw4 = cconv.conv2d_backward(
            g4,
            None if inputs[1] is None else x4,
            None if inputs[0] is None else w4,
            x4.shape,
            w4.shape,
            *geo,
        )
        dx = None if dx4 is None else dx4.reshape(self.x_shape)
        dw = None if dw4 is None else dw4.reshape(self.shapes[1])
        if len(inputs) == 2:
            return dx, dw
        db = None if inputs[2] is None else g4.sum(axis=(0, 2, 3))
        return dx, dw, db

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """dx = ConvInputGrad(g, W), dW = ConvWeightGrad(x, g), db = sum(g): differentiable."""
        geo = self._geo()
        x = self.saved_input(0, self.s_x)
        w = self.saved_input(1, self.s_w.reshape(self.shapes[1]))
        dx = ConvInputGrad.apply(grad, w, x_shape=self.x_shape, geo=geo)
        dw = ConvWeightGrad.apply(x, grad, w_shape=self.shapes[1], geo=geo)
        if len(self.inputs) == 2:
            return dx, dw
        return dx, dw, grad.sum(axis=(0, 2, 3) if grad.ndim == 4 else (0, 2))


class _Geometry(NamedTuple):
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


def _as4(a: Array) -> Array:
    return a if a.ndim == 4 else a[:, :, None, :]


def _conv_arrays(x: Array, w: Array, geo: _Geometry, out_size: Pair) -> Array:
    """y (N, O, OH, OW) = conv(x, w) for 4-D arrays."""
    return cconv.conv2d(x, w, None, geo.stride, geo.padding, geo.dilation, geo.groups, out_size)


def _input_grad_arrays(g: Array, w: Array, geo: _Geometry, x_shape: Shape) -> Array:
    """dx = col2im(W^T g) for 4-D arrays."""
    return cconv.conv2d_input_grad(g, w, x_shape, geo.stride, geo.padding, geo.dilation, geo.groups)


def _weight_grad_arrays(x: Array, g: Array, geo: _Geometry, w_shape: Shape) -> Array:
    """dW = g @ im2col(x)^T for 4-D arrays."""
    return cconv.conv2d_weight_grad(
        x, g, w_shape, geo.stride, geo.padding, geo.dilation, geo.groups
    )


class ConvInputGrad(Op):
    """dx = conv's input gradient for output gradient g and weight W (bilinear in g, W).

    d(g) = conv(gx, W),  dW = ConvWeightGrad(gx, g): conv's double backward.
    """

    __slots__ = ("geo", "s_g", "s_w", "x_shape")
    saves = (0, 1)

    def forward(self, g: Array, w: Array, *, x_shape: Shape, geo: _Geometry) -> Array:
        """col2im(W^T g)."""
        self.s_g, self.s_w, self.x_shape, self.geo = g, w, x_shape, geo
        x4 = x_shape if len(x_shape) == 4 else (x_shape[0], x_shape[1], 1, x_shape[2])
        return _input_grad_arrays(_as4(g), _as4(w), geo, x4).reshape(x_shape)

    def jvp(self, out: Array, tg: Array | None, tw: Array | None) -> Array | None:
        """Bilinear: F(tg, W) + F(g, tW)."""
        return lin(
            (
                None
                if tg is None
                else self.forward(tg, self.s_w, x_shape=self.x_shape, geo=self.geo),
                None,
            ),
            (
                None
                if tw is None
                else self.forward(self.s_g, tw, x_shape=self.x_shape, geo=self.geo),
                None,
            ),
        )

    def backward(self, grad: Array) -> Grads:
        """d(g) = conv(grad, W), dW = weight gradient of (grad, g)."""
        g, w = self.s_g, self.s_w
        g4, w4, x4 = _as4(g), _as4(w), _as4(grad)
        dg = _conv_arrays(x4, w4, self.geo, (g4.shape[2], g4.shape[3])).reshape(g.shape)
        dw = _weight_grad_arrays(x4, g4, self.geo, w4.shape).reshape(w.shape)
        return dg, dw

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The same, as differentiable ops."""
        g = self.saved_input(0, self.s_g)
        w = self.saved_input(1, self.s_w)
        dg = ConvFunctionGraph.apply(grad, w, geo=self.geo, out_shape=self.s_g.shape)
        dw = ConvWeightGrad.apply(grad, g, w_shape=self.s_w.shape, geo=self.geo)
        return dg, dw


class ConvWeightGrad(Op):
    """dW = conv's weight gradient for input x and output gradient g (bilinear in x, g).

    dx = ConvInputGrad(g, gW),  d(g) = conv(x, gW).
    """

    __slots__ = ("geo", "s_g", "s_x", "w_shape")
    saves = (0, 1)

    def forward(self, x: Array, g: Array, *, w_shape: Shape, geo: _Geometry) -> Array:
        """g @ im2col(x)^T."""
        self.s_x, self.s_g, self.w_shape, self.geo = x, g, w_shape, geo
        w4 = w_shape if len(w_shape) == 4 else (w_shape[0], w_shape[1], 1, w_shape[2])
        return _weight_grad_arrays(_as4(x), _as4(g), geo, w4).reshape(w_shape)

    def jvp(self, out: Array, tx: Array | None, tg: Array | None) -> Array | None:
        """Bilinear: F(tx, g) + F(x, tg)."""
        return lin(
            (
                None
                if tx is None
                else self.forward(tx, self.s_g, w_shape=self.w_shape, geo=self.geo),
                None,
            ),
            (
                None
                if tg is None
                else self.forward(self.s_x, tg, w_shape=self.w_shape, geo=self.geo),
                None,
            ),
        )

    def backward(self, grad: Array) -> Grads:
        """dx = input gradient of (g, grad), d(g) = conv(x, grad)."""
        x, g = self.s_x, self.s_g
        x4, g4, w4 = _as4(x), _as4(g), _as4(grad)
        dx = _input_grad_arrays(g4, w4, self.geo, x4.shape).reshape(x.shape)
        dg = _conv_arrays(x4, w4, self.geo, (g4.shape[2], g4.shape[3])).reshape(g.shape)
        return dx, dg

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The same, as differentiable ops."""
        x = self.saved_input(0, self.s_x)
        g = self.saved_input(1, self.s_g)
        dx = ConvInputGrad.apply(g, grad, x_shape=self.s_x.shape, geo=self.geo)
        dg = ConvFunctionGraph.apply(x, grad, geo=self.geo, out_shape=self.s_g.shape)
        return dx, dg


class ConvFunctionGraph(Op):
    """y = conv(x, W) without bias, for double backward (geometry given, output shape known)."""

    __slots__ = ("geo", "s_w", "s_x")
    saves = (0, 1)

    def forward(self, x: Array, w: Array, *, geo: _Geometry, out_shape: Shape) -> Array:
        """conv(x, W)."""
        self.s_x, self.s_w, self.geo = x, w, geo
        x4, w4 = _as4(x), _as4(w)
        size = (1, out_shape[2]) if len(out_shape) == 3 else (out_shape[2], out_shape[3])
        return _conv_arrays(x4, w4, geo, size).reshape(out_shape)

    def jvp(self, out: Array, tx: Array | None, tw: Array | None) -> Array | None:
        """Bilinear: conv(tx, W) + conv(x, tW)."""
        return lin(
            (
                None
                if tx is None
                else self.forward(tx, self.s_w, geo=self.geo, out_shape=out.shape),
                None,
            ),
            (
                None
                if tw is None
                else self.forward(self.s_x, tw, geo=self.geo, out_shape=out.shape),
                None,
            ),
        )

    def backward(self, grad: Array) -> Grads:
        """dx, dW as ConvFunction's."""
        x, w = self.s_x, self.s_w
        g4, w4, x4 = _as4(grad), _as4(w), _as4(x)
        dx = _input_grad_arrays(g4, w4, self.geo, x4.shape).reshape(x.shape)
        dw = _weight_grad_arrays(x4, g4, self.geo, w4.shape).reshape(w.shape)
        return dx, dw

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The same, as differentiable ops."""
        x = self.saved_input(0, self.s_x)
        w = self.saved_input(1, self.s_w)
        dx = ConvInputGrad.apply(grad, w, x_shape=self.s_x.shape, geo=self.geo)
        dw = ConvWeightGrad.apply(x, grad, w_shape=self.s_w.shape, geo=self.geo)
        return dx, dw


def _ints(value: int | Sequence[int], n: int, op: str, name: str) -> tuple[int, ...]:
    items = (value,) * n if isinstance(value, int | np.integer) else tuple(value)
    if len(items) != n or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) for v in items
    ):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in items)


def _check_tensor(t: object, op: str, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    return t


def _conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: str | int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
    dims: int,
    op: str,
) -> Tensor:
    """Validate and run a ``dims``-D convolution (1 or 2)."""
    _check_tensor(x, op, "input")
    _check_tensor(weight, op, "weight")
    xd, wd = x.data, weight.data
    if wd.dtype.kind != "f":
        raise TypeError(f"{op}: expected float32 or float64 tensors, got weight dtype {wd.dtype}")
    if xd.dtype != wd.dtype:
        raise TypeError(
            f"{op}: input has dtype {xd.dtype} but the weight has dtype {wd.dtype} (no silent "
            "casts; convert the input, or the module with .to(dtype))"
        )
    if wd.ndim != dims + 2:
        raise ValueError(
            f"{op}: weight must be {dims + 2}-D (out_channels, in_channels/groups, kernel...), "
            f"got shape {cops.fmt_shape(wd.shape)}"
        )
    if xd.ndim == dims + 1:  # unbatched
        return _conv(
            x.unsqueeze(0), weight, bias, stride, padding, dilation, groups, dims, op
        ).squeeze(0)
    if xd.ndim != dims + 2:
        raise ValueError(
            f"{op}: expected a {dims + 1}-D (unbatched) or {dims + 2}-D (batched) input, got "
            f"shape {cops.fmt_shape(xd.shape)}"
        )
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    s = _ints(stride, dims, op, "stride")
    d = _ints(dilation, dims, op, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"{op}: stride and dilation must be >= 1, got stride={s}, dilation={d}")
    o, c_g = wd.shape[:2]
    kernel = wd.shape[2:]
    c = xd.shape[1]
    if o % groups:
        raise ValueError(
            f"{op}: out_channels={o} (weight of shape {cops.fmt_shape(wd.shape)}) is not "
            f"divisible by groups={groups}"
        )
    if c != c_g * groups:
        raise ValueError(
            f"{op}: input of shape {cops.fmt_shape(xd.shape)} has {c} channels, but weight of "
            f"shape {cops.fmt_shape(wd.shape)} with groups={groups} expects {c_g * groups}"
        )
    eff = tuple(di * (k - 1) + 1 for di, k in zip(d, kernel, strict=True))
    if isinstance(padding, str):
        if padding == "valid":
            before = after = (0,) * dims
        elif padding == "same":
            if max(s) != 1:
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            before = tuple((e - 1) // 2 for e in eff)
            after = tuple(e - 1 - b for e, b in zip(eff, before, strict=True))
        else:
            raise ValueError(
                f"{op}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}"
            )
    else:
        before = after = _ints(padding, dims, op, "padding")
        if min(before) < 0:
            raise ValueError(f"{op}: padding must be >= 0, got {padding!r}")
    space = xd.shape[2:]
    padded = tuple(sz + b + a for sz, b, a in zip(space, before, after, strict=True))
    if any(e > p for e, p in zip(eff, padded, strict=True)):
        raise ValueError(
            f"{op}: the (dilated) kernel size {cops.fmt_shape(eff)} is larger than the padded "
            f"input size {cops.fmt_shape(padded)} (input of shape {cops.fmt_shape(xd.shape)})"
        )
    out = tuple(
        cconv.output_size(sz, k, st, b + a, di)
        for sz, k, st, b, a, di in zip(space, kernel, s, before, after, d, strict=True)
    )
    if dims == 1:
        s2, p2, d2, o2 = (1, s[0]), (0, before[0]), (1, d[0]), (1, out[0])
    else:
        s2, p2, d2, o2 = (s[0], s[1]), (before[0], before[1]), (d[0], d[1]), (out[0], out[1])
    if bias is None:
        return ConvFunction.apply(
            x, weight, stride=s2, padding=p2, dilation=d2, groups=int(groups), out_size=o2
        )
    _check_tensor(bias, op, "bias")
    if bias.data.shape != (o,):
        raise ValueError(
            f"{op}: bias of shape {cops.fmt_shape(bias.data.shape)} does not fit weight of "
            f"shape {cops.fmt_shape(wd.shape)} (expected ({o},))"
        )
    if bias.data.dtype != wd.dtype:
        raise TypeError(f"{op}: bias has dtype {bias.data.dtype} but weight has dtype {wd.dtype}")
    return ConvFunction.apply(
        x, weight, bias, stride=s2, padding=p2, dilation=d2, groups=int(groups), out_size=o2
    )


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation of ``(N, C, H, W)`` (or ``(C, H, W)``) as PyTorch's ``F.conv2d``.

    out[n, o] = bias[o] + sum over c in o's group, i, j of
    weight[o, c, i, j] * x_padded[n, c, oh stride + i dilation, ow stride + j dilation].

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or None.
        stride: An int or a pair.
        padding: An int, a pair, ``'valid'`` (none) or ``'same'`` (output size = input size;
            stride 1 only; an odd total pads one more at the bottom/right, as PyTorch).
        dilation: An int or a pair.
        groups: Split channels into this many independent groups.

    Raises:
        ValueError: shapes, channels, groups or padding that do not fit.
        TypeError: non-Tensors, or dtypes that differ or are not float.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation of ``(N, C, L)`` (or ``(C, L)``) as PyTorch's ``F.conv1d``.

    Args:
        input: ``(N, C_in, L)`` or unbatched ``(C_in, L)``.
        weight: ``(C_out, C_in / groups, k)``.
        bias: ``(C_out,)`` or None.
        stride: An int or a 1-tuple.
        padding: An int, a 1-tuple, ``'valid'`` or ``'same'``.
        dilation: An int or a 1-tuple.
        groups: Split channels into this many independent groups.

    Raises:
        ValueError: shapes, channels, groups or padding that do not fit.
        TypeError: non-Tensors, or dtypes that differ or are not float.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


class _ConvNd(_Unary):
    """Shared parameters, initialisation and repr of Conv1d / Conv2d."""

    weight: Parameter
    bias: Parameter | None
    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str | int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: Any = None,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        n = self._dims
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"{op}: {name} must be a non-negative int, got {v!r}")
        if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
            raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{op}: in_channels={in_channels} must be divisible by groups")
        if out_channels % groups:
            raise ValueError(f"{op}: out_channels={out_channels} must be divisible by groups")
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"{op}: padding_mode={padding_mode!r} is not supported (only 'zeros')"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _ints(kernel_size, n, op, "kernel_size")
        self.stride = _ints(stride, n, op, "stride")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{op}: padding must be 'same' or 'valid', got {padding!r}")
            if padding == "same" and max(self.stride) != 1:
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            self.padding: str | tuple[int, ...] = padding
        else:
            self.padding = _ints(padding, n, op, "padding")
        self.dilation = _ints(dilation, n, op, "dilation")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dt = _float_dtype(dtype, op)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) weights, bias U(+-1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = math.prod(self.weight.data.shape[1:])
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        """PyTorch's ``in, out, kernel_size=.., stride=..`` plus the non-default options."""
        n = self._dims
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` inputs, as PyTorch's ``nn.Conv2d``.

    ``weight`` has shape ``(out_channels, in_channels / groups, kH, kW)`` (PyTorch's layout,
    so state dicts load across), drawn as ``kaiming_uniform_(a=sqrt(5))``; ``bias`` is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with ``fan_in = in_channels / groups * kH * kW``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: An int or a pair.
        stride: An int or a pair.
        padding: An int, a pair, ``'same'`` or ``'valid'``.
        dilation: An int or a pair.
        groups: Blocked connections from input to output channels.
        bias: Learn an additive bias.
        padding_mode: Only ``'zeros'`` is supported.
        dtype: float32 (default) or float64.
    """

    _dims = 2

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x``."""
        return _conv(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            2,
            "Conv2d",
        )


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)`` inputs, as PyTorch's ``nn.Conv1d``.

    ``weight`` has shape ``(out_channels, in_channels / groups, k)``; initialisation and
    arguments as :class:`Conv2d` with single ints.
    """

    _dims = 1

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x``."""
        return _conv(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            1,
            "Conv1d",
        )


__all__ = ["Conv1d", "Conv2d", "ConvFunction", "conv1d", "conv2d"]
