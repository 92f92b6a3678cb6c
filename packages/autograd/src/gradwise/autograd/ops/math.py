"""Element-wise math beyond the MLP: trigonometry, log1p/expm1, erf, rounding, casts.

Each op is one :class:`~gradwise.autograd.function.Function` with its derivative beside
it. Integer inputs to the float-valued functions (``sin``, ``erf``, ...) give float32, as
in PyTorch; ``square``, ``sign`` and the rounding functions keep an integer dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.autograd._tangents import lin
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.tensor import Cast, Tensor, as_tensor, binary_operands
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, as_dtype

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
TGrads = tuple[Tensor | None, ...]


def _float_input(x: Any, op: str) -> Tensor:
    """x as a tensor; integer and bool tensors become float32 (PyTorch's type promotion)."""
    t = as_tensor(x, op)
    if t.data.dtype.kind != "f":
        return Tensor._wrap(t.data.astype(np.float32))
    return t


# ---- trigonometry ------------------------------------------------------------------------


class Sin(Function):
    """y = sin(x);  dx = grad cos(x)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return np.sin(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t cos(x)"""
        return None if t is None else t * np.cos(self.s_x)

    def backward(self, grad: Array) -> Grads:
        return (grad * np.cos(self.s_x),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad cos(x), differentiable."""
        return (grad * cos(self.saved_input(0, self.s_x)),)


class Cos(Function):
    """y = cos(x);  dx = -grad sin(x)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return np.cos(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = -t sin(x)"""
        return None if t is None else -(t * np.sin(self.s_x))

    def backward(self, grad: Array) -> Grads:
        return (-(grad * np.sin(self.s_x)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """-grad sin(x), differentiable."""
        return (-(grad * sin(self.saved_input(0, self.s_x))),)


class Tan(Function):
    """y = tan(x);  dx = grad (1 + y^2)"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        self.s_y = np.tan(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t (1 + y^2)"""
        return None if t is None else t * (out * out + out.dtype.type(1))

    def backward(self, grad: Array) -> Grads:
        y = self.s_y
        return (grad * (y * y + y.dtype.type(1)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad (1 + y^2), differentiable."""
        y = self.saved_output(self.s_y)
        return (grad * (y * y + 1.0),)


class Atan2(Function):
    """z = atan2(a, b);  da = grad b / (a^2 + b^2),  db = -grad a / (a^2 + b^2)"""

    __slots__ = ("s_a", "s_b")
    saves = (0, 1)

    def forward(self, a: Array, b: Array) -> Array:
        self.s_a, self.s_b = a, b
        try:
            return np.arctan2(a, b)
        except ValueError:
            raise ValueError(
                f"atan2: shapes {cops.fmt_shape(a.shape)} and {cops.fmt_shape(b.shape)} do "
                "not broadcast"
            ) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = (ta b - tb a) / (a^2 + b^2)"""
        d = lin((ta, self.s_b), (tb, np.negative(self.s_a)))
        if d is None:
            return None
        a, b = self.s_a, self.s_b
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(d / (a * a + b * b))

    def backward(self, grad: Array) -> Grads:
        a, b = self.s_a, self.s_b
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = grad / (a * a + b * b)
        return scale * b, -(scale * a)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad b / r^2 and -grad a / r^2, differentiable."""
        a, b = self.saved_input(0, self.s_a), self.saved_input(1, self.s_b)
        scale = grad / (a * a + b * b)
        return scale * b, -(scale * a)


# ---- logs and exponentials ---------------------------------------------------------------


class Log1p(Function):
    """y = log(1 + x);  dx = grad / (1 + x)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t / (1 + x)"""
        if t is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(t / (self.s_x + self.s_x.dtype.type(1)))

    def backward(self, grad: Array) -> Grads:
        x = self.s_x
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad / (x + x.dtype.type(1)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad / (1 + x), differentiable."""
        return (grad / (self.saved_input(0, self.s_x) + 1.0),)


class Expm1(Function):
    """y = exp(x) - 1;  dx = grad (y + 1)"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        with np.errstate(over="ignore"):
            self.s_y = np.expm1(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t (y + 1)"""
        return None if t is None else t * (out + out.dtype.type(1))

    def backward(self, grad: Array) -> Grads:
        y = self.s_y
        return (grad * (y + y.dtype.type(1)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad (y + 1), differentiable."""
        return (grad * (self.saved_output(self.s_y) + 1.0),)


class Erf(Function):
    """y = erf(x);  dx = grad 2 / sqrt(pi) exp(-x^2)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        if x.dtype.itemsize in (4, 8):
            return cops.erf(x)  # a Numba loop over libm's erf: ~12 ns per element
        # float16: NumPy has no erf; math.erf per element (float64, then rounded)
        values = np.fromiter(map(math.erf, x.ravel().tolist()), np.float64, count=x.size)
        return values.astype(x.dtype, copy=False).reshape(x.shape)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t 2 / sqrt(pi) exp(-x^2)"""
        if t is None:
            return None
        x = self.s_x
        return np.asarray(t * (np.exp(-(x * x)) * x.dtype.type(_TWO_OVER_SQRT_PI)))

    def backward(self, grad: Array) -> Grads:
        x = self.s_x
        if x.dtype.itemsize in (4, 8) and grad.dtype == x.dtype:
            return (cops.erf_backward(x, grad),)
        return (grad * (np.exp(-(x * x)) * x.dtype.type(_TWO_OVER_SQRT_PI)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad 2 / sqrt(pi) exp(-x^2), differentiable."""
        x = self.saved_input(0, self.s_x)
        return (grad * ((-(x * x)).exp() * _TWO_OVER_SQRT_PI),)


# ---- powers ------------------------------------------------------------------------------


class Square(Function):
    """y = x^2;  dx = 2 x grad"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return np.square(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = 2 x t"""
        return None if t is None else t * (self.s_x + self.s_x)

    def backward(self, grad: Array) -> Grads:
        x = self.s_x
        return (grad * (x + x),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """2 x grad, differentiable."""
        return (grad * (self.saved_input(0, self.s_x) * 2.0),)


class Reciprocal(Function):
    """y = 1 / x;  dx = -grad y^2"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        with np.errstate(divide="ignore"):
            self.s_y = np.reciprocal(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = -t y^2"""
        if t is None:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(-(t * (out * out)))

    def backward(self, grad: Array) -> Grads:
        y = self.s_y
        with np.errstate(over="ignore", invalid="ignore"):
            return (-(grad * (y * y)),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """-grad y^2, differentiable."""
        y = self.saved_output(self.s_y)
        return (-(grad * (y * y)),)


# ---- piecewise constant (zero gradient) --------------------------------------------------


class Piecewise(Function):
    """y = sign(x), floor(x), ceil(x) or round(x);  dx = 0 (the derivative almost everywhere)"""

    __slots__ = ("kind",)

    def forward(self, x: Array, *, kind: str, decimals: int = 0) -> Array:
        self.kind = kind
        if kind == "sign":
            return np.sign(x)
        if kind == "floor":
            return np.floor(x)
        if kind == "ceil":
            return np.ceil(x)
        return np.round(x, decimals)  # half to even, as PyTorch

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = 0"""
        return None if t is None else np.zeros_like(out)

    def name(self) -> str:
        """``SignBackward``, ``FloorBackward``, ``CeilBackward`` or ``RoundBackward``."""
        return self.kind.capitalize() + "Backward"

    def backward(self, grad: Array) -> Grads:
        return (np.zeros_like(grad),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """Zeros (a constant)."""
        return (Tensor._wrap(np.zeros_like(grad.data)),)


# ---- public functions --------------------------------------------------------------------


def sin(x: Tensor) -> Tensor:
    """Sine, element-wise."""
    return Sin.apply(_float_input(x, "sin"))


def cos(x: Tensor) -> Tensor:
    """Cosine, element-wise."""
    return Cos.apply(_float_input(x, "cos"))


def tan(x: Tensor) -> Tensor:
    """Tangent, element-wise."""
    return Tan.apply(_float_input(x, "tan"))


def atan2(input: Tensor | float, other: Tensor | float) -> Tensor:
    """The angle of the point (other, input), in (-pi, pi]; the two-argument arctangent.

    Broadcasts as NumPy; integer operands give float32.
    """
    a, b = binary_operands(input, other, "atan2", true_divide=True)
    return Atan2.apply(a, b)


arctan2 = atan2


def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate for small x."""
    return Log1p.apply(_float_input(x, "log1p"))


def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate for small x."""
    return Expm1.apply(_float_input(x, "expm1"))


def erf(x: Tensor) -> Tensor:
    """The error function 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x."""
    return Erf.apply(_float_input(x, "erf"))


def square(x: Tensor) -> Tensor:
    """x * x (integer tensors stay integer)."""
    return Square.apply(as_tensor(x, "square"))


def reciprocal(x: Tensor) -> Tensor:
    """1 / x (1 / 0 is inf; integer tensors give float32)."""
    return Reciprocal.apply(_float_input(x, "reciprocal"))


def _piecewise(x: Tensor, kind: str, decimals: int = 0) -> Tensor:
    t = as_tensor(x, kind)
    if t.data.dtype.kind == "b" and kind != "sign":
        raise TypeError(f"{kind}: not defined for bool tensors")
    if t.data.dtype.kind in "iu" and kind != "sign":
        return Tensor._wrap(np.array(t.data, copy=True))  # already integral
    return Piecewise.apply(t, kind=kind, decimals=decimals)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x (NaN stays NaN); the gradient is 0."""
    return _piecewise(x, "sign")


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x; the gradient is 0."""
    return _piecewise(x, "floor")


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x; the gradient is 0."""
    return _piecewise(x, "ceil")


def round(x: Tensor, decimals: int = 0) -> Tensor:
    """Round to ``decimals`` decimal places, halves to even (as PyTorch); the gradient is 0."""
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError(f"round: decimals must be an int, got {type(decimals).__name__}")
    return _piecewise(x, "round", decimals)


def to(x: Tensor, dtype: Any) -> Tensor:
    """x as ``dtype``: x itself if it already has it.

    Between float32 and float64 the result stays in the graph and its gradient is cast
    back to x's dtype; an integer or bool target gives a tensor outside the graph.
    """
    t = as_tensor(x, "to")
    dt = as_dtype(dtype)
    if t.data.dtype == dt:
        return t
    if dt.kind == "f" and t.data.dtype.kind == "f":
        return Cast.apply(t, dtype=dt)
    if t._rg:
        t._mark_cut("no_gradient_op", f"to({dt})")
    return Tensor._wrap(t.data.astype(dt))
