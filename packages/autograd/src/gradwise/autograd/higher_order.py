"""Double backward: each built-in op's ``backward`` written again with Tensor ops.

``backward(create_graph=True)`` and ``grad(..., create_graph=True)`` call an op's
``backward_graph(grad)`` instead of its array ``backward``: the same formula, built from
differentiable gradwise ops, so the gradients it returns are in a graph of their own and
can be differentiated again (second, third derivatives). The arrays an op saved enter as
tensors on the op's input nodes (``saved_input``) or on the op itself (``saved_output``),
so the new graph reaches the original one without any node keeping a tensor alive.

The rules live here, beside each other, rather than in the op classes: they are attached
as ``backward_graph`` methods when this module is imported (by ``gradwise.autograd``).
Ops whose derivative is a constant mask (relu, abs, clip, where, max) multiply by that
mask, so their second derivative is zero, as in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.function import Grads, Op
from gradwise.autograd.ops import elementwise as ew
from gradwise.autograd.ops import inplace as ip
from gradwise.autograd.ops import reduce as rd
from gradwise.autograd.ops import shape as sh
from gradwise.autograd.ops.linalg import MatMul
from gradwise.autograd.tensor import Cast, Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Axis, Shape

TGrads = tuple[Tensor | None, ...]
Rule = Callable[[Any, Tensor], TGrads]


def _rule(*classes: type[Op]) -> Callable[[Rule], Rule]:
    def attach(fn: Rule) -> Rule:
        for cls in classes:
            cls.backward_graph = fn  # type: ignore[method-assign,assignment]
        return fn

    return attach


def _const(a: Array) -> Tensor:
    return Tensor._wrap(a)


def _axes(ndim: int, axis: Axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return cops.normalize_axes(ndim, axis, "backward")


def _expand_back(g: Tensor, shape: Shape, axis: Axis, keepdims: bool) -> Tensor:
    """A reduction's output gradient broadcast back to the input's shape."""
    if not keepdims:
        axes = _axes(len(shape), axis)
        g = sh.Reshape.apply(g, shape=tuple(1 if i in axes else d for i, d in enumerate(shape)))
    return sh.Expand.apply(g, shape=tuple(shape))


# ---- arithmetic --------------------------------------------------------------------------


@_rule(ew.Add, sh.Clone, sh.Expand, Cast)
def _identity(n: Any, g: Tensor) -> TGrads:
    return (g,) * len(n.inputs)


@_rule(ew.Sub)
def _sub(n: ew.Sub, g: Tensor) -> TGrads:
    return g, ew.Neg.apply(g)


@_rule(ew.Neg)
def _neg(n: ew.Neg, g: Tensor) -> TGrads:
    return (ew.Neg.apply(g),)


def _mul_grads(n: Op, g: Tensor, a: Array, b: Array) -> TGrads:
    return g * n.saved_input(1, b), g * n.saved_input(0, a)


def _div_grads(n: Op, g: Tensor, a: Array, b: Array) -> TGrads:
    ta, tb = n.saved_input(0, a), n.saved_input(1, b)
    da = g / tb
    return da, ew.Neg.apply(da * ta / tb)


@_rule(ew.Mul)
def _mul(n: ew.Mul, g: Tensor) -> TGrads:
    return _mul_grads(n, g, n.s_a, n.s_b)


@_rule(ew.Div)
def _div(n: ew.Div, g: Tensor) -> TGrads:
    return _div_grads(n, g, n.s_a, n.s_b)


@_rule(ew.PowScalar)
def _pow_scalar(n: ew.PowScalar, g: Tensor) -> TGrads:
    p, x = n.p, n.saved_input(0, n.s_x)
    if p == 0:
        return (_const(np.zeros(g.data.shape, g.data.dtype)),)
    if p == 1:
        return (g,)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (g * (ew.PowScalar.apply(x, p=p - 1) * p),)


@_rule(ew.Pow)
def _pow(n: ew.Pow, g: Tensor) -> TGrads:
    a, b = n.saved_input(0, n.s_a), n.saved_input(1, n.s_b)
    z = n.saved_output(n.s_z)
    with np.errstate(divide="ignore", invalid="ignore"):
        da = ew.where(n.s_b == 0, 0.0, g * b * ew.Pow.apply(a, b - 1.0))
        db = ew.where((n.s_a == 0) & (n.s_b >= 0), 0.0, g * z * ew.Log.apply(a))
    return da, db


# ---- unary math and activations ----------------------------------------------------------


@_rule(ew.Exp)
def _exp(n: ew.Exp, g: Tensor) -> TGrads:
    return (g * n.saved_output(n.s_y),)


@_rule(ew.Log)
def _log(n: ew.Log, g: Tensor) -> TGrads:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (g / n.saved_input(0, n.s_x),)


@_rule(ew.Sqrt)
def _sqrt(n: ew.Sqrt, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (g / (y + y),)


@_rule(ew.Abs)
def _abs(n: ew.Abs, g: Tensor) -> TGrads:
    return (g * _const(np.sign(n.s_x)),)


@_rule(ew.Clip)
def _clip(n: ew.Clip, g: Tensor) -> TGrads:
    x = n.s_x
    keep = np.ones(x.shape, dtype=bool)
    if n.lo is not None:
        keep &= x >= n.lo
    if n.hi is not None:
        keep &= x <= n.hi
    return (ew.where(keep, g, 0.0),)


@_rule(ew.ReLU)
def _relu(n: ew.ReLU, g: Tensor) -> TGrads:
    return (g * _const((n.s_x > 0).astype(g.data.dtype)),)


@_rule(ew.LeakyReLU)
def _leaky_relu(n: ew.LeakyReLU, g: Tensor) -> TGrads:
    x = n.s_x
    return (g * _const(np.where(x > 0, 1.0, n.slope).astype(g.data.dtype)),)


@_rule(ew.Sigmoid)
def _sigmoid(n: ew.Sigmoid, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    return (g * y * (1.0 - y),)


@_rule(ew.Tanh)
def _tanh(n: ew.Tanh, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    return (g * (1.0 - y * y),)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gauss(x: Tensor) -> Tensor:
    """The standard normal density phi(x), with differentiable ops."""
    return ew.Exp.apply(x * x * -0.5) * _INV_SQRT_2PI


class GeluGrad(Op):
    """y = gelu'(x) = Phi(x) + x phi(x) (exact GELU);  dx = grad phi(x) (2 - x^2)"""

    __slots__ = ("s_x",)
    saves = (0,)

    def forward(self, x: Array) -> Array:
        """gelu'(x)."""
        self.s_x = x
        return cops.gelu_backward(x, np.ones_like(x), "none")

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Forward mode: t phi(x) (2 - x^2), element-wise as backward."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        """grad phi(x) (2 - x^2)."""
        x = self.s_x
        return (grad * np.exp(x * x * -0.5) * (2.0 - x * x) * x.dtype.type(_INV_SQRT_2PI),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """phi(x) (2 - x^2) with differentiable ops."""
        x = self.saved_input(0, self.s_x)
        return (grad * _gauss(x) * (2.0 - x * x),)


@_rule(ew.GELU)
def _gelu(n: ew.GELU, g: Tensor) -> TGrads:
    x = n.saved_input(0, n.s_x)
    if n.approximate == "none":
        return (g * GeluGrad.apply(x),)
    c = 0.044715
    t = ew.Tanh.apply((x + x * x * x * c) * _SQRT_2_OVER_PI)
    du = (1.0 + x * x * (3.0 * c)) * _SQRT_2_OVER_PI
    return (g * ((1.0 + t) * 0.5 + x * 0.5 * (1.0 - t * t) * du),)


@_rule(ew.SiLU)
def _silu(n: ew.SiLU, g: Tensor) -> TGrads:
    x = n.saved_input(0, n.s_x)
    s = ew.Sigmoid.apply(x)
    return (g * s * (1.0 + x * (1.0 - s)),)


@_rule(ew.Softplus)
def _softplus(n: ew.Softplus, g: Tensor) -> TGrads:
    x = n.saved_input(0, n.s_x)
    linear = n.s_x * n.beta > n.threshold
    return (ew.where(linear, g, g * ew.Sigmoid.apply(x * n.beta)),)


@_rule(ew.Maximum)
def _maximum(n: ew.Maximum, g: Tensor) -> TGrads:
    a, b = n.s_a, n.s_b
    wins = (a > b) if n.take_max else (a < b)
    share = np.where(wins, 1.0, np.where(a == b, 0.5, 0.0)).astype(g.data.dtype)
    ga = g * _const(share)
    return ga, g - ga


@_rule(ew.Where)
def _where(n: ew.Where, g: Tensor) -> TGrads:
    return ew.where(n.s_cond, g, 0.0), ew.where(n.s_cond, 0.0, g)


@_rule(ew.Dropout)
def _dropout(n: ew.Dropout, g: Tensor) -> TGrads:
    return (g * _const(n.s_scale),)


# ---- reductions, softmax family ----------------------------------------------------------


@_rule(rd.Sum)
def _sum(n: rd.Sum, g: Tensor) -> TGrads:
    return (_expand_back(g, n.shape, n.axis, n.keepdims),)


@_rule(rd.Mean)
def _mean(n: rd.Mean, g: Tensor) -> TGrads:
    count = math.prod(n.shape) // max(g.data.size, 1) if g.data.size else 0
    return (_expand_back(g, n.shape, n.axis, n.keepdims) * (1.0 / count if count else math.nan),)


@_rule(rd.Extreme)
def _extreme(n: rd.Extreme, g: Tensor) -> TGrads:
    ones = np.ones(n.s_y.shape, dtype=g.data.dtype)
    weights = cops.extreme_backward(n.s_x, n.s_y, ones, n.axis, n.keepdims)
    return (_expand_back(g, n.s_x.shape, n.axis, n.keepdims) * _const(weights),)


def _var_grad(n: rd.Var | rd.Std, g: Tensor) -> Tensor:
    x = n.saved_input(0, n.s_x)
    count = x.data.size // max(g.data.size, 1)
    centred = x - rd.Mean.apply(x, axis=n.axis, keepdims=True)
    scale = 2.0 / (count - n.ddof) if count != n.ddof else math.inf
    return _expand_back(g, x.data.shape, n.axis, n.keepdims) * centred * scale


@_rule(rd.Var)
def _var(n: rd.Var, g: Tensor) -> TGrads:
    return (_var_grad(n, g),)


@_rule(rd.Std)
def _std(n: rd.Std, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (_var_grad(n, g / (y + y)),)


@_rule(rd.Softmax)
def _softmax(n: rd.Softmax, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    return (y * (g - rd.Sum.apply(g * y, axis=n.axis, keepdims=True)),)


@_rule(rd.LogSoftmax)
def _log_softmax(n: rd.LogSoftmax, g: Tensor) -> TGrads:
    y = n.saved_output(n.s_y)
    return (g - ew.Exp.apply(y) * rd.Sum.apply(g, axis=n.axis, keepdims=True),)


@_rule(rd.LogSumExp)
def _logsumexp(n: rd.LogSumExp, g: Tensor) -> TGrads:
    kept = n.s_y.shape
    y = n.saved_output(n.s_y.reshape(g.data.shape))
    x = n.saved_input(0, n.s_x)
    yk = sh.Reshape.apply(y, shape=kept)
    with np.errstate(invalid="ignore"):
        return (sh.Reshape.apply(g, shape=kept) * ew.Exp.apply(x - yk),)


# ---- matmul --------------------------------------------------------------------------------


def _mT(t: Tensor) -> Tensor:
    nd = t.data.ndim
    axes = (*range(nd - 2), nd - 1, nd - 2)
    return sh.Permute.apply(t, axes=axes)


@_rule(MatMul)
def _matmul(n: MatMul, g: Tensor) -> TGrads:
    a, b = n.saved_input(0, n.s_a), n.saved_input(1, n.s_b)
    a1, b1 = a.data.ndim == 1, b.data.ndim == 1
    if a1:
        a = sh.Reshape.apply(a, shape=(1, a.data.shape[0]))
    if b1:
        b = sh.Reshape.apply(b, shape=(b.data.shape[0], 1))
    gs = g.data.shape
    if a1 and b1:
        g = sh.Reshape.apply(g, shape=(1, 1))
    elif a1:
        g = sh.Reshape.apply(g, shape=(*gs[:-1], 1, gs[-1]))
    elif b1:
        g = sh.Reshape.apply(g, shape=(*gs, 1))
    da = MatMul.apply(g, _mT(b))
    db = MatMul.apply(_mT(a), g)
    if a1:  # (..., 1, k): drop the 1 so that the engine sums the batch axes away
        da = sh.Reshape.apply(da, shape=(*da.data.shape[:-2], da.data.shape[-1]))
    if b1:
        db = sh.Reshape.apply(db, shape=db.data.shape[:-1])
    return da, db


# ---- shape ops and indexing --------------------------------------------------------------


class ScatterAdd(Op):
    """y = zeros(shape) with x added at key (GetItem's backward);  dx = grad[key]"""

    __slots__ = ("advanced", "key")

    def forward(self, x: Array, *, key: Any, shape: Shape, advanced: bool) -> Array:
        """Scatter x into zeros."""
        self.key, self.advanced = key, advanced
        out = np.zeros(shape, dtype=x.dtype)
        if advanced:
            np.add.at(out, key, x)
        else:
            out[key] = x
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Forward mode: the tangent scattered the same way."""
        if t is None:
            return None
        dy = np.zeros(out.shape, dtype=out.dtype)
        if self.advanced:
            np.add.at(dy, self.key, t)
        else:
            dy[self.key] = t
        return dy

    def backward(self, grad: Array) -> Grads:
        """grad[key]."""
        return (np.asarray(grad[self.key]),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad[key], differentiable."""
        return (sh.GetItem.apply(grad, key=self.key, advanced=self.advanced),)


class ZeroAt(Op):
    """y = x with zeros at key (SetItem's backward for the overwritten tensor);  dx likewise"""

    __slots__ = ("key",)

    def forward(self, x: Array, *, key: Any) -> Array:
        """x with zeros at key."""
        self.key = key
        out = np.array(x, copy=True)
        out[key] = 0
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """Forward mode: the tangent with zeros at key."""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        """grad with zeros at key."""
        out = np.array(grad, copy=True)
        out[self.key] = 0
        return (out,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The same masking, differentiable."""
        return (ZeroAt.apply(grad, key=self.key),)


@_rule(sh.Reshape)
def _reshape(n: sh.Reshape, g: Tensor) -> TGrads:
    return (sh.Reshape.apply(g, shape=n.shape),)


@_rule(sh.Permute)
def _permute(n: sh.Permute, g: Tensor) -> TGrads:
    return (sh.Permute.apply(g, axes=tuple(int(i) for i in np.argsort(n.axes))),)


@_rule(sh.GetItem)
def _getitem(n: sh.GetItem, g: Tensor) -> TGrads:
    return (ScatterAdd.apply(g, key=n.key, shape=n.shape, advanced=n.advanced),)


@_rule(sh.Cat)
def _cat(n: sh.Cat, g: Tensor) -> TGrads:
    out: list[Tensor | None] = []
    lo = 0
    for size in n.sizes:
        key = (*[slice(None)] * n.axis, slice(lo, lo + size))
        out.append(sh.GetItem.apply(g, key=key, advanced=False))
        lo += size
    return tuple(out)


@_rule(sh.Stack)
def _stack(n: sh.Stack, g: Tensor) -> TGrads:
    pre = (slice(None),) * n.axis
    return tuple(sh.GetItem.apply(g, key=(*pre, i), advanced=False) for i in range(n.n))


# ---- in-place ops ------------------------------------------------------------------------


@_rule(ip.InplaceBinary)
def _inplace_binary(n: ip.InplaceBinary, g: Tensor) -> TGrads:
    if n.op == "add_":
        return g, g
    if n.op == "sub_":
        return g, ew.Neg.apply(g)
    assert n.s_a is not None
    assert n.s_b is not None
    if n.op == "mul_":
        return _mul_grads(n, g, n.s_a, n.s_b)
    return _div_grads(n, g, n.s_a, n.s_b)


def _is_advanced(key: Any) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray) for k in parts)


@_rule(ip.SetItem)
def _setitem(n: ip.SetItem, g: Tensor) -> TGrads:
    gb = sh.GetItem.apply(g, key=n.key, advanced=_is_advanced(n.key))
    return ZeroAt.apply(g, key=n.key), gb


@_rule(ip.Clamp)
def _clamp(n: ip.Clamp, g: Tensor) -> TGrads:
    return (ew.where(n.s_keep, g, 0.0),)


@_rule(ip.Gather)
def _gather(n: ip.Gather, g: Tensor) -> TGrads:
    key = np.unravel_index(n.positions, n.shape)
    return (ScatterAdd.apply(g, key=key, shape=n.shape, advanced=True),)


@_rule(ip.WriteBack)
def _write_back(n: ip.WriteBack, g: Tensor) -> TGrads:
    key = np.unravel_index(n.positions, g.data.shape)
    return ZeroAt.apply(g, key=key), sh.GetItem.apply(g, key=key, advanced=True)
