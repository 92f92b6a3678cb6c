"""Activation modules and ``Flatten``: thin Modules around the autograd functions."""

from __future__ import annotations

import math

import numpy as np

import gradwise.autograd as ag
from gradwise.autograd import (
    Tensor,
    flatten,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from gradwise.autograd.function import Grads, Op
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array
from gradwise.nn.module import _Unary


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class ReLU(_Unary):
    """y = max(x, 0).

    Args:
        inplace: Accepted for PyTorch compatibility; the result is computed out of place
            (same values).
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply ReLU."""
        return relu(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)


class LeakyReLU(_Unary):
    """y = x if x > 0 else negative_slope * x.

    Args:
        negative_slope: The slope for negative inputs.
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply leaky ReLU."""
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        """``negative_slope=..``."""
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(_Unary):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply the logistic sigmoid."""
        return sigmoid(x)


class Tanh(_Unary):
    """y = tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply tanh."""
        return tanh(x)


class GELU(_Unary):
    """y = x Phi(x), or PyTorch's tanh approximation with ``approximate='tanh'``.

    Raises:
        ValueError: ``approximate`` other than ``'none'`` or ``'tanh'``.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        """Apply GELU."""
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        """``approximate='..'``."""
        return f"approximate={self.approximate!r}"


class SiLU(_Unary):
    """y = x sigmoid(x) (swish).

    Args:
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply SiLU."""
        return silu(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)


class Softplus(_Unary):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        """Apply softplus."""
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """``beta=.., threshold=..``."""
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(_Unary):
    """y = exp(x) / sum(exp(x)) along ``axis`` (``Softmax(1)`` works positionally)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        """Apply softmax along ``axis``."""
        return softmax(x, self.axis)

    def extra_repr(self) -> str:
        """``axis=..``."""
        return f"axis={self.axis}"


class LogSoftmax(_Unary):
    """y = x - logsumexp(x) along ``axis``."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        """Apply log-softmax along ``axis``."""
        return log_softmax(x, self.axis)

    def extra_repr(self) -> str:
        """``axis=..``."""
        return f"axis={self.axis}"


class Flatten(_Unary):
    """Merge axes ``start_axis`` .. ``end_axis`` (by default all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis = start_axis
        self.end_axis = end_axis

    def forward(self, x: Tensor) -> Tensor:
        """Flatten the axes."""
        return flatten(x, self.start_axis, self.end_axis)

    def extra_repr(self) -> str:
        """``start_axis=.., end_axis=..``."""
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


# ---- Mish, Hardtanh, ELU, SELU, SwiGLU: one fused node each ------------------------------

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_tensor(x: object, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {x.data.dtype}")
    return x


class MishFunction(Op):
    """y = x tanh(softplus(x));  dx = grad (t + x sigmoid(x) (1 - t^2)), t = tanh(softplus(x))"""

    __slots__ = ("s_t", "s_x")
    saves = (0,)

    def forward(self, x: Array) -> Array:
        """Apply Mish."""
        t = np.tanh(np.logaddexp(x.dtype.type(0.0), x))
        self.s_x, self.s_t = x, t
        y: Array = x * t
        return y

    def _slope(self) -> Array:
        x, t = self.s_x, self.s_t
        one = x.dtype.type(1.0)
        slope: Array = t + x * cops.sigmoid(x) * (one - t * t)
        return slope

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: tx * mish'(x)."""
        return None if tx is None else tx * self._slope()

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        return (grad * self._slope(),)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """grad (t + x sigmoid(x) (1 - t^2)), t = tanh(softplus(x)), differentiable."""
        x = self.saved_input(0, self.s_x)
        t = ag.tanh(ag.softplus(x, 1.0, math.inf))
        return (grad * (t + x * ag.sigmoid(x) * (1.0 - t * t)),)


class HardtanhFunction(Op):
    """y = clip(x, min_val, max_val);  dx = grad where min_val < x < max_val, else 0"""

    __slots__ = ("max_val", "min_val", "s_x")
    saves = (0,)

    def forward(self, x: Array, *, min_val: float, max_val: float) -> Array:
        """Clip x."""
        self.s_x, self.min_val, self.max_val = x, min_val, max_val
        lo, hi = x.dtype.type(min_val), x.dtype.type(max_val)
        # NaN propagates, as in PyTorch (np.clip keeps NaN)
        return np.clip(x, lo, hi)

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        x = self.s_x
        inside = (x > x.dtype.type(self.min_val)) & (x < x.dtype.type(self.max_val))
        return (np.where(inside, grad, grad.dtype.type(0.0)),)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: tx inside the bounds, 0 outside."""
        return None if tx is None else self.backward(tx)[0]

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """grad times a constant mask (zero second derivative, as PyTorch)."""
        x = self.s_x
        inside = (x > x.dtype.type(self.min_val)) & (x < x.dtype.type(self.max_val))
        return (grad * Tensor._wrap(inside.astype(x.dtype)),)


class ELUFunction(Op):
    """y = scale (x if x > 0 else alpha (exp(x) - 1));  dx = grad scale (1 or alpha exp(x))"""

    __slots__ = ("alpha", "s_x", "scale")
    saves = (0,)

    def forward(self, x: Array, *, alpha: float, scale: float) -> Array:
        """Apply (scaled) ELU."""
        self.s_x, self.alpha, self.scale = x, alpha, scale
        a, s = x.dtype.type(alpha), x.dtype.type(scale)
        zero = x.dtype.type(0.0)
        neg = a * np.expm1(np.minimum(x, zero))
        y: Array = np.where(x > zero, x, neg) * s
        return y

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        x = self.s_x
        a, s = x.dtype.type(self.alpha), x.dtype.type(self.scale)
        zero = x.dtype.type(0.0)
        slope = np.where(x > zero, x.dtype.type(1.0), a * np.exp(np.minimum(x, zero)))
        return (grad * (s * slope),)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: tx * elu'(x)."""
        return None if tx is None else self.backward(tx)[0]

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """grad scale (1 where x > 0, else alpha exp(x)), differentiable."""
        x = self.saved_input(0, self.s_x)
        positive = Tensor._wrap(self.s_x > 0)
        negative = ag.exp(ag.minimum(x, 0.0)) * self.alpha
        return (grad * ag.where(positive, 1.0, negative) * self.scale,)


class SwiGLUFunction(Op):
    """y = silu(a) * b for x = [a, b] split on the last axis

    da = grad b s (1 + a (1 - s)), s = sigmoid(a);  db = grad a s.
    """

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        """Gate the second half of the last axis with SiLU of the first half."""
        self.s_x = x
        half = x.shape[-1] // 2
        return cops.silu(np.ascontiguousarray(x[..., :half])) * x[..., half:]

    def backward(self, grad: Array) -> Grads:
        """Gradient of x (both halves)."""
        x = self.s_x
        half = x.shape[-1] // 2
        a = np.ascontiguousarray(x[..., :half])
        b = x[..., half:]
        s = cops.sigmoid(a)
        one = x.dtype.type(1.0)
        dx = np.empty_like(x)
        dx[..., :half] = grad * b * s * (one + a * (one - s))
        dx[..., half:] = grad * a * s
        return (dx,)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: ta b s (1 + a (1 - s)) + tb a s."""
        if tx is None:
            return None
        x = self.s_x
        half = x.shape[-1] // 2
        a = np.ascontiguousarray(x[..., :half])
        b = x[..., half:]
        s = cops.sigmoid(a)
        one = x.dtype.type(1.0)
        dy: Array = tx[..., :half] * b * s * (one + a * (one - s)) + tx[..., half:] * a * s
        return dy

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """[grad b s (1 + a (1 - s)), grad a s], differentiable."""
        x = self.saved_input(0, self.s_x)
        half = self.s_x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        s = ag.sigmoid(a)
        da = grad * b * s * (1.0 + a * (1.0 - s))
        return (ag.cat([da, grad * a * s], axis=-1),)


def mish(x: Tensor) -> Tensor:
    """y = x tanh(softplus(x)) (PyTorch's ``F.mish``)."""
    return MishFunction.apply(_float_tensor(x, "mish"))


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """y = clip(x, min_val, max_val); the gradient is 0 outside (and at) the bounds.

    Raises:
        ValueError: ``max_val < min_val``.
    """
    t = _float_tensor(x, "hardtanh")
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) cannot be less than min_val ({min_val})")
    return HardtanhFunction.apply(t, min_val=float(min_val), max_val=float(max_val))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """y = x if x > 0 else alpha (exp(x) - 1) (PyTorch's ``F.elu``)."""
    return ELUFunction.apply(_float_tensor(x, "elu"), alpha=float(alpha), scale=1.0)


def selu(x: Tensor) -> Tensor:
    """y = scale * elu(x, alpha), alpha = 1.6732632..., scale = 1.0507009... (``F.selu``)."""
    return ELUFunction.apply(_float_tensor(x, "selu"), alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def swiglu(x: Tensor) -> Tensor:
    """y = silu(a) * b, where ``a, b`` are the first and second halves of x's last axis.

    PyTorch has no ``F.swiglu``; this follows the usual definition (Shazeer, 2020) with the
    gate in the first half, as ``a, b = x.chunk(2, -1); F.silu(a) * b``. The output's last
    axis is half the input's.

    Raises:
        ValueError: a 0-d input or an odd last axis.
    """
    t = _float_tensor(x, "swiglu")
    shape = t.data.shape
    if not shape or shape[-1] % 2:
        raise ValueError(
            f"swiglu: the last axis must have an even size to split in two halves, got shape "
            f"{cops.fmt_shape(shape)}"
        )
    return SwiGLUFunction.apply(t)


class Mish(_Unary):
    """y = x tanh(softplus(x)).

    Args:
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply Mish."""
        return mish(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)


class Hardtanh(_Unary):
    """y = clip(x, min_val, max_val).

    Args:
        min_val: Lower bound.
        max_val: Upper bound.
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if max_val < min_val:
            raise ValueError(
                f"Hardtanh: max_val ({max_val}) cannot be less than min_val ({min_val})"
            )
        self.min_val, self.max_val, self.inplace = float(min_val), float(max_val), inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply hardtanh."""
        return hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        """``min_val=.., max_val=..``."""
        return f"min_val={self.min_val}, max_val={self.max_val}" + (
            ", inplace=True" if self.inplace else ""
        )


class ELU(_Unary):
    """y = x if x > 0 else alpha (exp(x) - 1).

    Args:
        alpha: The saturation value for negative inputs.
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = float(alpha), inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply ELU."""
        return elu(x, self.alpha)

    def extra_repr(self) -> str:
        """``alpha=..``."""
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(_Unary):
    """y = scale * elu(x, alpha) with the self-normalising constants.

    Args:
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply SELU."""
        return selu(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)
