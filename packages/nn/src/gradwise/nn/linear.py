"""``Linear`` and ``Identity``; the fused ``y = x @ W^T + b`` op node behind ``Linear``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.autograd import Tensor
from gradwise.autograd.function import Grads, Op
from gradwise.core import ops as cops
from gradwise.core.blas import matmul as _mm
from gradwise.core.dtypes import Array, as_dtype
from gradwise.nn import init
from gradwise.nn.module import _Unary
from gradwise.nn.parameter import Parameter

_add_reduce: Any = np.add.reduce  # what ndarray.sum calls, without its Python wrapper


class LinearFunction(Op):
    """y = x @ W^T + b;  dx = g @ W,  dW = g^T @ x,  db = sum(g) (batch axes folded into rows)

    One graph node for the whole affine map: one GEMM forward, at most two backward (the
    input's gradient is skipped when the input needs none), transposes passed to BLAS as
    views.
    """

    __slots__ = ("s_w", "s_x2", "x_shape")
    saves = (0, 1)

    def forward(self, x: Array, w: Array, *b: Array) -> Array:
        """Compute the affine map of the last axis of ``x``."""
        x2 = x.reshape(math.prod(x.shape[:-1]), w.shape[1])
        y = _mm(x2, w.T)
        if b:
            y += b[0]
        self.s_x2, self.s_w, self.x_shape = x2, w, x.shape
        out: Array = y.reshape(*x.shape[:-1], w.shape[0])
        return out

    def jvp(
        self, out: Array, tx: Array | None, tw: Array | None, *tb: Array | None
    ) -> Array | None:
        """Forward-mode tangent: dy = tx @ W^T + x @ tW^T + tb."""
        w, x2 = self.s_w, self.s_x2
        dy = np.zeros((x2.shape[0], w.shape[0]), dtype=out.dtype)
        if tx is not None:
            dy += _mm(tx.reshape(x2.shape), w.T)
        if tw is not None:
            dy += _mm(x2, tw.T)
        if tb and tb[0] is not None:
            dy += tb[0]
        return dy.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gradients of x, W (and b)."""
        w, x2 = self.s_w, self.s_x2
        g2 = grad.reshape(x2.shape[0], w.shape[0])
        inputs = self.inputs
        dx = None if inputs[0] is None else _mm(g2, w).reshape(self.x_shape)
        dw = None if inputs[1] is None else _mm(g2.T, x2)
        if len(inputs) == 2:
            return dx, dw
        db = None if inputs[2] is None else _add_reduce(g2, axis=0)  # g2.sum(axis=0)
        return dx, dw, db


class _LinearBias(LinearFunction):
    """``LinearFunction`` with its bias as a named input: ``forward``'s fixed signature gets
    the specialised ``apply`` (see ``gradwise.autograd.function``), which the variadic
    ``*b`` of the bias-free form cannot. The same node otherwise, under the same name.
    """

    __slots__ = ()

    def forward(self, x: Array, w: Array, b: Array) -> Array:  # type: ignore[override]
        """Compute the affine map of the last axis of ``x``, plus the bias."""
        x2 = x if x.ndim == 2 else x.reshape(math.prod(x.shape[:-1]), w.shape[1])
        y = _mm(x2, w.T)
        y += b
        self.s_x2, self.s_w, self.x_shape = x2, w, x.shape
        out: Array = y.reshape(*x.shape[:-1], w.shape[0])
        return out

    def name(self) -> str:
        """``"LinearFunctionBackward"``: one op, with or without a bias."""
        return "LinearFunctionBackward"


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, op: str = "linear") -> Tensor:
    """y = x @ weight^T + bias for ``x`` of shape ``(..., in_features)``.

    Args:
        x: Input of shape ``(..., in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.
        op: The name used in error messages.

    Raises:
        TypeError: non-Tensor arguments, or dtypes that differ / are not float.
        ValueError: shapes that do not fit.
    """
    for name, t in (("input", x), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    w = weight.data
    xd = x.data
    if w.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D, got shape {cops.fmt_shape(w.shape)}")
    if xd.dtype != w.dtype:
        raise TypeError(
            f"{op}: input has dtype {xd.dtype} but the weight has dtype {w.dtype} (no silent "
            "casts; convert the input, or the module with .to(dtype))"
        )
    if w.dtype.kind != "f":
        raise TypeError(f"{op}: expected float32 or float64 tensors, got {w.dtype}")
    if xd.ndim == 0 or xd.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{op}: input of shape {cops.fmt_shape(xd.shape)} does not fit weight of shape "
            f"{cops.fmt_shape(w.shape)} (expected last axis {w.shape[1]} = in_features)"
        )
    if bias is None:
        return LinearFunction.apply(x, weight)
    if bias.data.shape != (w.shape[0],):
        raise ValueError(
            f"{op}: bias of shape {cops.fmt_shape(bias.data.shape)} does not fit weight of shape "
            f"{cops.fmt_shape(w.shape)} (expected ({w.shape[0]},))"
        )
    if bias.data.dtype != w.dtype:
        raise TypeError(f"{op}: bias has dtype {bias.data.dtype} but weight has dtype {w.dtype}")
    return _LinearBias.apply(x, weight, bias)


def _float_dtype(dtype: Any, op: str) -> np.dtype[Any]:
    dt = np.dtype(np.float32) if dtype is None else as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dt}")
    return dt


def _positive(value: object, op: str, name: str, allow_zero: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{op}: {name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return int(value)


class Linear(_Unary):
    """y = x @ weight^T + bias, on the last axis of ``(..., in_features)`` inputs.

    ``weight`` has shape ``(out_features, in_features)`` and, like ``bias``, starts as
    U(-1/sqrt(in_features), 1/sqrt(in_features)) drawn from
    ``gradwise.core.default_generator`` (PyTorch's ``kaiming_uniform_(a=sqrt(5))``).

    Args:
        in_features: Size of each input sample.
        out_features: Size of each output sample.
        bias: Whether to learn an additive bias.
        dtype: float32 (default) or float64.
    """

    in_features: int
    out_features: int
    weight: Parameter
    bias: Parameter | None

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "Linear", "in_features")
        self.out_features = _positive(out_features, "Linear", "out_features")
        dt = _float_dtype(dtype, "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """The affine map of the last axis of ``x``."""
        return linear(x, self.weight, self.bias, "Linear")

    def extra_repr(self) -> str:
        """``in_features=.., out_features=.., bias=..``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(_Unary):
    """y = x (a placeholder; constructor arguments are accepted and ignored, as PyTorch)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        """Return the input unchanged."""
        return x
