"""Element-wise ops: arithmetic with NumPy broadcasting, activations, clip, where, dropout.

Binary ops return full-shape gradients; the engine sums them back to each input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd._tangents import lin
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.tensor import Tensor, as_tensor, binary_operands
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array
from gradwise.core.random import default_generator


def _broadcast_error(op: str, a: Array, b: Array) -> ValueError:
    return ValueError(
        f"{op}: shapes {cops.fmt_shape(a.shape)} and {cops.fmt_shape(b.shape)} do not "
        "broadcast (NumPy rules: trailing axes must match or be 1)"
    )


# ---- arithmetic ------------------------------------------------------------------------


class Add(Function):
    """z = a + b;  da = grad,  db = grad"""

    __slots__ = ()

    def forward(self, a: Array, b: Array) -> Array:
        try:
            return np.add(a, b)
        except ValueError:
            raise _broadcast_error("add", a, b) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = ta + tb"""
        return lin((ta, None), (tb, None))

    def backward(self, grad: Array) -> Grads:
        return grad, grad


class Sub(Function):
    """z = a - b;  da = grad,  db = -grad"""

    __slots__ = ()

    def forward(self, a: Array, b: Array) -> Array:
        try:
            return np.subtract(a, b)
        except ValueError:
            raise _broadcast_error("sub", a, b) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = ta - tb"""
        return lin((ta, None), (tb, -1))

    def backward(self, grad: Array) -> Grads:
        return grad, np.negative(grad)


class Mul(Function):
    """z = a * b;  da = grad * b,  db = grad * a"""

    __slots__ = ("s_a", "s_b")
    saves = (0, 1)

    def forward(self, a: Array, b: Array) -> Array:
        self.s_a, self.s_b = a, b
        try:
            return np.multiply(a, b)
        except ValueError:
            raise _broadcast_error("mul", a, b) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = ta b + a tb"""
        return lin((ta, self.s_b), (tb, self.s_a))

    def backward(self, grad: Array) -> Grads:
        return np.multiply(grad, self.s_b), np.multiply(grad, self.s_a)


class Div(Function):
    """z = a / b;  da = grad / b,  db = -grad * a / b^2"""

    __slots__ = ("s_a", "s_b")
    saves = (0, 1)

    def forward(self, a: Array, b: Array) -> Array:
        self.s_a, self.s_b = a, b
        try:
            return np.divide(a, b)
        except ValueError:
            raise _broadcast_error("div", a, b) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = (ta - z tb) / b"""
        d = lin((ta, None), (tb, np.negative(out)))
        return None if d is None else np.divide(d, self.s_b)

    def backward(self, grad: Array) -> Grads:
        da = np.divide(grad, self.s_b)
        db = np.negative(da) * self.s_a / self.s_b
        return da, db


class Neg(Function):
    """y = -x;  dx = -grad"""

    __slots__ = ()

    def forward(self, x: Array) -> Array:
        return np.negative(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (np.negative(grad),)


class PowScalar(Function):
    """y = x ** p (p a number);  dx = grad * p * x ** (p - 1), and 0 where p == 0"""

    __slots__ = ("p", "s_x")
    saves = (0,)

    def forward(self, x: Array, *, p: float) -> Array:
        self.s_x, self.p = x, p
        return np.power(x, x.dtype.type(p)) if x.dtype.kind == "f" else np.power(x, p)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        p, x = self.p, self.s_x
        if p == 0:
            return (np.zeros_like(grad),)
        if p == 1:
            return (grad,)
        if p == 2:
            return (grad * (x + x),)
        return (grad * x.dtype.type(p) * np.power(x, x.dtype.type(p - 1)),)


class Pow(Function):
    """z = a ** b;  da = grad b a ** (b - 1),  db = grad z log(a) (0 where a == 0, b >= 0)"""

    __slots__ = ("s_a", "s_b", "s_z")
    saves = (0, 1, -1)

    def forward(self, a: Array, b: Array) -> Array:
        self.s_a, self.s_b = a, b
        try:
            self.s_z = np.power(a, b)
        except ValueError:
            raise _broadcast_error("pow", a, b) from None
        return self.s_z

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = b a ** (b - 1) ta + z log(a) tb (the zeros of backward kept)"""
        a, b = self.s_a, self.s_b
        ca = cb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ta is not None:
                ca = np.where(b == 0, 0.0, b * np.power(a, b - 1)).astype(out.dtype, copy=False)
            if tb is not None:
                cb = np.where((a == 0) & (b >= 0), 0.0, out * np.log(a)).astype(
                    out.dtype, copy=False
                )
            return lin((ta, ca), (tb, cb))

    def backward(self, grad: Array) -> Grads:
        a, b, z = self.s_a, self.s_b, self.s_z
        with np.errstate(divide="ignore", invalid="ignore"):
            da = grad * b * np.power(a, b - 1)
            da = np.where(b == 0, 0.0, da).astype(grad.dtype, copy=False)
            db = grad * z * np.log(a)
            db = np.where((a == 0) & (b >= 0), 0.0, db).astype(grad.dtype, copy=False)
        return da, db


def add(a: Tensor | float, b: Tensor | float) -> Tensor:
    """a + b with NumPy broadcasting."""
    x, y = binary_operands(a, b, "add")
    return Add.apply(x, y)


def sub(a: Tensor | float, b: Tensor | float) -> Tensor:
    """a - b with NumPy broadcasting."""
    x, y = binary_operands(a, b, "sub")
    return Sub.apply(x, y)


def mul(a: Tensor | float, b: Tensor | float) -> Tensor:
    """a * b with NumPy broadcasting."""
    x, y = binary_operands(a, b, "mul")
    return Mul.apply(x, y)


def div(a: Tensor | float, b: Tensor | float) -> Tensor:
    """a / b (true division) with NumPy broadcasting; integer tensors give float32."""
    x, y = binary_operands(a, b, "div", true_divide=True)
    return Div.apply(x, y)


def neg(x: Tensor) -> Tensor:
    """-x."""
    return Neg.apply(as_tensor(x, "neg"))


def pow(x: Tensor | float, p: Tensor | float) -> Tensor:
    """x ** p, for a number or a tensor exponent (broadcasting)."""
    if isinstance(x, Tensor) and isinstance(p, int | float) and not isinstance(p, bool):
        return PowScalar.apply(x, p=float(p) if isinstance(p, float) else p)
    a, b = binary_operands(x, p, "pow")
    if a.data.dtype.kind != "f":
        raise TypeError(
            f"pow: a tensor exponent needs a float base, got dtypes {a.dtype} and {b.dtype}"
        )
    return Pow.apply(a, b)


# ---- unary math -------------------------------------------------------------------------


class Exp(Function):
    """y = exp(x);  dx = grad * y"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        self.s_y = np.exp(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (grad * self.s_y,)


class Log(Function):
    """y = log(x);  dx = grad / x"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad / self.s_x,)


class Sqrt(Function):
    """y = sqrt(x);  dx = grad / (2 y)"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        with np.errstate(invalid="ignore"):
            self.s_y = np.sqrt(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad / (self.s_y + self.s_y),)


class Abs(Function):
    """y = |x|;  dx = grad * sign(x)   (abs'(0) = 0)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return np.abs(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (grad * np.sign(self.s_x),)


class Clip(Function):
    """y = min(max(x, lo), hi);  dx = grad where lo <= x <= hi (bounds included), else 0"""

    __slots__ = ("hi", "lo", "s_x")
    saves = (0,)

    def forward(self, x: Array, *, lo: float | None, hi: float | None) -> Array:
        self.s_x, self.lo, self.hi = x, lo, hi
        t = x.dtype.type
        return np.clip(x, None if lo is None else t(lo), None if hi is None else t(hi))

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        x = self.s_x
        keep = np.ones(x.shape, dtype=bool)
        if self.lo is not None:
            keep &= x >= self.lo
        if self.hi is not None:
            keep &= x <= self.hi
        return (np.where(keep, grad, grad.dtype.type(0)),)


def exp(x: Tensor) -> Tensor:
    """e ** x."""
    return Exp.apply(as_float(x, "exp"))


def log(x: Tensor) -> Tensor:
    """Natural logarithm (log(0) = -inf, negative inputs give NaN, as in PyTorch)."""
    return Log.apply(as_float(x, "log"))


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(as_float(x, "sqrt"))


def abs(x: Tensor) -> Tensor:
    """|x|; the gradient at 0 is 0."""
    return Abs.apply(as_tensor(x, "abs"))


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Limit x to [min, max] (either may be None); the gradient passes at the bounds."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    for name, bound in (("min", min), ("max", max)):
        real = isinstance(bound, int | float | np.integer | np.floating) or (
            isinstance(bound, np.ndarray) and bound.ndim == 0 and bound.dtype.kind in "iuf"
        )
        if bound is not None and (isinstance(bound, bool) or not real):
            kind = type(bound).__name__
            raise TypeError(f"clip: {name} must be a real number or None, got {kind}")
    return Clip.apply(as_tensor(x, "clip"), lo=min, hi=max)


def as_float(x: Tensor, op: str) -> Tensor:
    """x itself if floating; an int or bool tensor becomes float32 (as PyTorch's exp etc.)."""
    t = as_tensor(x, op)
    if t.data.dtype.kind != "f":
        return Tensor._wrap(t.data.astype(np.float32))
    return t


# ---- activations (kernels in gradwise.core) ----------------------------------------------


class ReLU(Function):
    """y = max(x, 0);  dx = grad * (x > 0)   (relu'(0) = 0)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return cops.relu(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.relu_backward(self.s_x, grad),)


class LeakyReLU(Function):
    """y = x if x > 0 else s x;  dx = grad if x > 0 else s grad"""

    __slots__ = ("s_x", "slope")
    saves = (0,)

    def forward(self, x: Array, *, slope: float) -> Array:
        self.s_x, self.slope = x, slope
        return cops.leaky_relu(x, slope)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.leaky_relu_backward(self.s_x, grad, self.slope),)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  dx = grad y (1 - y)"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        self.s_y = cops.sigmoid(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.sigmoid_backward(self.s_y, grad),)


class Tanh(Function):
    """y = tanh(x);  dx = grad (1 - y^2)"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, x: Array) -> Array:
        self.s_y = cops.tanh(x)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.tanh_backward(self.s_y, grad),)


class GELU(Function):
    """y = x Phi(x) (or its tanh approximation);  dx = grad gelu'(x)"""

    __slots__ = ("approximate", "s_x")
    saves = (0,)

    def forward(self, x: Array, *, approximate: str) -> Array:
        self.s_x, self.approximate = x, approximate
        return cops.gelu(x, approximate)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.gelu_backward(self.s_x, grad, self.approximate),)


class SiLU(Function):
    """y = x sigmoid(x);  dx = grad s (1 + x (1 - s))"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        self.s_x = x
        return cops.silu(x)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.silu_backward(self.s_x, grad),)


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta (x past the threshold);  dx = grad sigmoid(beta x)"""

    __slots__ = ("beta", "s_x", "threshold")
    saves = (0,)

    def forward(self, x: Array, *, beta: float, threshold: float) -> Array:
        self.s_x, self.beta, self.threshold = x, beta, threshold
        return cops.softplus(x, beta, threshold)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (cops.softplus_backward(self.s_x, grad, self.beta, self.threshold),)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ReLU.apply(_float_only(x, "relu"))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return LeakyReLU.apply(_float_only(x, "leaky_relu"), slope=float(negative_slope))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return Sigmoid.apply(as_float(x, "sigmoid"))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(as_float(x, "tanh"))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x); ``approximate='tanh'`` uses PyTorch's tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float_only(x, "gelu"), approximate=approximate)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return SiLU.apply(_float_only(x, "silu"))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (PyTorch's defaults)."""
    return Softplus.apply(_float_only(x, "softplus"), beta=float(beta), threshold=float(threshold))


def _float_only(x: Tensor, op: str) -> Tensor:
    t = as_tensor(x, op)
    if t.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {t.data.dtype}")
    return t


# ---- maximum, minimum, where, dropout ----------------------------------------------------


class Maximum(Function):
    """z = max(a, b);  the larger input gets grad, ties split it evenly"""

    __slots__ = ("s_a", "s_b", "take_max")
    saves = (0, 1)

    def forward(self, a: Array, b: Array, *, take_max: bool) -> Array:
        self.s_a, self.s_b, self.take_max = a, b, take_max
        try:
            return np.maximum(a, b) if take_max else np.minimum(a, b)
        except ValueError:
            raise _broadcast_error("maximum" if take_max else "minimum", a, b) from None

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = s ta + (1 - s) tb, s = 1 where a wins, 1/2 at ties (as backward)"""
        a, b = self.s_a, self.s_b
        wins = (a > b) if self.take_max else (a < b)
        share = np.where(wins, 1.0, np.where(a == b, 0.5, 0.0)).astype(out.dtype)
        return lin((ta, share), (tb, 1 - share))

    def backward(self, grad: Array) -> Grads:
        a, b = self.s_a, self.s_b
        wins = (a > b) if self.take_max else (a < b)
        share = np.where(wins, 1.0, np.where(a == b, 0.5, 0.0)).astype(grad.dtype)
        ga = grad * share
        return ga, grad - ga


class Where(Function):
    """z = a where cond else b;  da = grad where cond else exactly 0, db the rest"""

    __slots__ = ("s_cond",)

    def forward(self, a: Array, b: Array, *, cond: Array) -> Array:
        self.s_cond = cond
        return np.where(cond, a, b)

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = ta where cond else tb"""
        zero = out.dtype.type(0)
        return np.where(self.s_cond, zero if ta is None else ta, zero if tb is None else tb)

    def backward(self, grad: Array) -> Grads:
        zero = grad.dtype.type(0)
        return np.where(self.s_cond, grad, zero), np.where(self.s_cond, zero, grad)


class Dropout(Function):
    """y = x * mask / (1 - p);  dx = grad * mask / (1 - p)"""

    __slots__ = ("s_scale",)

    def forward(self, x: Array, *, scale: Array) -> Array:
        self.s_scale = scale
        return x * scale

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Tangent: an element-wise map, so the same product as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (grad * self.s_scale,)


def maximum(a: Tensor | float, b: Tensor | float) -> Tensor:
    """Element-wise max with broadcasting; NaN propagates; ties split the gradient."""
    x, y = binary_operands(a, b, "maximum")
    return Maximum.apply(x, y, take_max=True)


def minimum(a: Tensor | float, b: Tensor | float) -> Tensor:
    """Element-wise min with broadcasting; NaN propagates; ties split the gradient."""
    x, y = binary_operands(a, b, "minimum")
    return Maximum.apply(x, y, take_max=False)


def where(cond: Any, a: Tensor | float, b: Tensor | float) -> Tensor:
    """a where cond is True, else b (broadcasting all three)."""
    c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if c.dtype != np.bool_:
        raise TypeError(f"where: cond must be a bool tensor or array, got dtype {c.dtype}")
    x, y = binary_operands(a, b, "where")
    try:
        shape = np.broadcast_shapes(c.shape, x.data.shape, y.data.shape)
    except ValueError as exc:
        raise ValueError(
            f"where: shapes {_fmt(c.shape)}, {_fmt(x.data.shape)} and {_fmt(y.data.shape)} "
            "do not broadcast"
        ) from exc
    return Where.apply(x, y, cond=np.broadcast_to(c, shape))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) when training."""
    t = _float_only(x, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return t
    if p == 1.0:
        return t * 0.0
    keep = default_generator.bernoulli(t.data.shape, 1.0 - p)
    scale = keep.astype(t.data.dtype) * t.data.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(t, scale=scale)


def _fmt(shape: tuple[int, ...]) -> str:
    return cops.fmt_shape(shape)
