"""gradwise.autograd.linalg: differentiable linear algebra, as ``torch.linalg``.

``det``, ``slogdet``, ``inv``, ``solve``, ``cholesky`` and ``norm``, batched over leading
axes as NumPy's ``linalg``. Singular or non-positive-definite inputs raise
:class:`LinAlgError`, which is both a ``ValueError`` and (as PyTorch's
``torch.linalg.LinAlgError``) a ``RuntimeError``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from gradwise.autograd.function import Function, Grads
from gradwise.autograd.tensor import Tensor, _cast, as_tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, result_dtype

fmt = cops.fmt_shape
TGrads = tuple[Tensor | None, ...]

__all__ = [
    "LinAlgError",
    "SlogdetResult",
    "cholesky",
    "det",
    "diagonal",
    "inv",
    "norm",
    "slogdet",
    "solve",
    "svdvals",
    "trace",
]


class LinAlgError(ValueError, RuntimeError):
    """A singular or non-positive-definite matrix (named as ``torch.linalg.LinAlgError``)."""


def _mT(a: Array) -> Array:
    return np.swapaxes(a, -1, -2)


def _square(x: Any, op: str) -> Tensor:
    t = as_tensor(x, op)
    shape = t.data.shape
    if t.data.ndim < 2 or shape[-1] != shape[-2]:
        raise ValueError(
            f"{op}: expected a square matrix or a batch of them (shape (*, n, n)), got "
            f"shape {fmt(shape)}"
        )
    if t.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {t.data.dtype}")
    return t


def _singular(op: str, shape: tuple[int, ...], what: str = "singular") -> LinAlgError:
    return LinAlgError(f"{op}: the input of shape {fmt(shape)} is {what}")


# ---- determinants ------------------------------------------------------------------------


def _adjugate_t(a: Array) -> Array:
    """adj(a)^T = d det(a) / da, from the SVD so that singular matrices are exact too:
    det(U) det(V) U diag(prod_{j != i} s_j) V^T.
    """
    n = a.shape[-1]
    if n == 0:
        return np.zeros(a.shape, dtype=a.dtype)
    u, s, vt = np.linalg.svd(a)
    ones = np.ones((*s.shape[:-1], 1), dtype=s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.flip(
        np.cumprod(np.concatenate([ones, np.flip(s, -1)[..., :-1]], axis=-1), axis=-1), -1
    )
    sign = np.linalg.det(u) * np.linalg.det(vt)
    out: Array = (u * (before * after)[..., None, :]) @ vt
    adj: Array = out * sign[..., None, None]
    return adj


class Det(Function):
    """y = det(A);  dA = grad adj(A)^T (= grad det(A) A^-T where A is invertible)"""

    __slots__ = ("s_a",)
    saves = (0,)

    def forward(self, a: Array) -> Array:
        self.s_a = a
        return np.asarray(np.linalg.det(a), dtype=a.dtype)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = sum(adj(A)^T * t) (= det(A) tr(A^-1 t))"""
        if t is None:
            return None
        return np.asarray(np.sum(_adjugate_t(self.s_a) * t, axis=(-2, -1)), dtype=out.dtype)

    def backward(self, grad: Array) -> Grads:
        return (_adjugate_t(self.s_a) * grad[..., None, None],)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad det(A) A^-T, differentiable (A must be invertible here)."""
        a = self.saved_input(0, self.s_a)
        if self.s_a.shape[-1] == 0:
            return (Tensor._wrap(np.zeros(self.s_a.shape, dtype=self.s_a.dtype)),)
        d = Det.apply(a)  # recomputed: the output array is not kept
        scale = (grad * d).reshape(*grad.data.shape, 1, 1)
        return (scale * inv(a).mT,)


class LogAbsDet(Function):
    """y = log|det(A)|;  dA = grad A^-T"""

    __slots__ = ("s_a",)
    saves = (0,)

    def forward(self, a: Array, *, value: Array) -> Array:
        self.s_a = a
        return value

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = tr(A^-1 t)"""
        if t is None:
            return None
        try:
            inv_t = _mT(np.linalg.inv(self.s_a))
        except np.linalg.LinAlgError:
            raise LinAlgError(
                f"slogdet: forward-mode derivative at a singular matrix of shape "
                f"{fmt(self.s_a.shape)} (its logabsdet is -inf)"
            ) from None
        return np.asarray(np.sum(inv_t * t, axis=(-2, -1)), dtype=out.dtype)

    def backward(self, grad: Array) -> Grads:
        try:
            inv_t = _mT(np.linalg.inv(self.s_a))
        except np.linalg.LinAlgError:
            raise LinAlgError(
                f"slogdet: backward through a singular matrix of shape "
                f"{fmt(self.s_a.shape)} (its logabsdet is -inf)"
            ) from None
        return (inv_t * grad[..., None, None],)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad A^-T, differentiable."""
        a = self.saved_input(0, self.s_a)
        return (grad.reshape(*grad.data.shape, 1, 1) * inv(a).mT,)


class SlogdetResult(NamedTuple):
    """``(sign, logabsdet)`` of :func:`slogdet`; det = sign * exp(logabsdet)."""

    sign: Tensor
    logabsdet: Tensor


def det(A: Tensor) -> Tensor:
    """The determinant of a square matrix or of each in a batch ``(*, n, n)``.

    The gradient is the adjugate's transpose, also for singular matrices.
    """
    return Det.apply(_square(A, "det"))


def slogdet(A: Tensor) -> SlogdetResult:
    """``(sign, logabsdet)`` with det(A) = sign * exp(logabsdet), stable for large
    determinants; the gradient flows through ``logabsdet`` (sign has none).
    """
    t = _square(A, "slogdet")
    sign, logabs = np.linalg.slogdet(t.data)
    dt = t.data.dtype
    s = Tensor._wrap(np.asarray(sign, dtype=dt))
    return SlogdetResult(s, LogAbsDet.apply(t, value=np.asarray(logabs, dtype=dt)))


# ---- inverse, solve, cholesky ------------------------------------------------------------


class Inv(Function):
    """Y = A^-1;  dA = -Y^T grad Y^T"""

    __slots__ = ("s_y",)
    saves = (-1,)

    def forward(self, a: Array) -> Array:
        try:
            self.s_y = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise _singular("inv", a.shape) from None
        if not np.isfinite(self.s_y).all() and np.isfinite(a).all():
            raise _singular("inv", a.shape)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dY = -Y t Y"""
        return None if t is None else -(out @ t @ out)

    def backward(self, grad: Array) -> Grads:
        yt = _mT(self.s_y)
        return (-(yt @ grad @ yt),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """-Y^T grad Y^T, differentiable."""
        yt = self.saved_output(self.s_y).mT
        return (-(yt @ grad @ yt),)


class Solve(Function):
    """X = A^-1 B;  dB = A^-T grad,  dA = -dB X^T (B a matrix batch; vectors get an axis)"""

    __slots__ = ("s_a", "s_x", "vector")
    saves = (0, -1)

    def forward(self, a: Array, b: Array, *, vector: bool) -> Array:
        self.vector = vector
        bm = b[..., None] if vector else b
        batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
        try:
            x = np.linalg.solve(
                np.broadcast_to(a, (*batch, *a.shape[-2:])),
                np.broadcast_to(bm, (*batch, *bm.shape[-2:])),
            )
        except np.linalg.LinAlgError:
            raise _singular("solve", a.shape) from None
        self.s_a, self.s_x = a, x
        return x[..., 0] if vector else x

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dX = A^-1 (tb - ta X)"""
        if ta is None and tb is None:
            return None
        x = self.s_x
        rhs = np.zeros(x.shape, x.dtype)
        if tb is not None:
            rhs = rhs + (tb[..., None] if self.vector else tb)
        if ta is not None:
            rhs = rhs - ta @ x
        a = np.broadcast_to(self.s_a, (*rhs.shape[:-2], *self.s_a.shape[-2:]))
        dx = np.linalg.solve(a, rhs)
        return dx[..., 0] if self.vector else dx

    def backward(self, grad: Array) -> Grads:
        g = grad[..., None] if self.vector else grad
        a = self.s_a
        batch = g.shape[:-2]
        db = np.linalg.solve(np.broadcast_to(_mT(a), (*batch, *a.shape[-2:])), g)
        da = -(db @ _mT(self.s_x))
        return da, (db[..., 0] if self.vector else db)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """dB = solve(A^T, grad), dA = -dB X^T, differentiable."""
        a = self.saved_input(0, self.s_a)
        x = self.saved_output(self.s_x[..., 0] if self.vector else self.s_x)
        g = grad
        if self.vector:
            g, x = g.unsqueeze(-1), x.unsqueeze(-1)
        db = solve(a.mT, g)
        da = -(db @ x.mT)
        return da, (db.squeeze(-1) if self.vector else db)


class Cholesky(Function):
    """L = cholesky(A), A = L L^T;  dA = sym(L^-T Phi(L^T grad) L^-1), Phi = the lower
    triangle with the diagonal halved (PyTorch's formula, symmetrised)
    """

    __slots__ = ("s_l", "upper")
    saves = (-1,)

    def forward(self, a: Array, *, upper: bool) -> Array:
        self.upper = upper
        try:
            low = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise _singular("cholesky", a.shape, "not positive-definite") from None
        self.s_l = _mT(low).copy() if upper else low
        return self.s_l

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dL = L Phi(L^-1 sym(t) L^-T), Phi the lower triangle with the diagonal halved"""
        if t is None:
            return None
        low = _mT(self.s_l) if self.upper else self.s_l
        n = low.shape[-1]
        l_inv = np.linalg.solve(low, np.broadcast_to(np.eye(n, dtype=low.dtype), low.shape))
        sym = (t + _mT(t)) * low.dtype.type(0.5)
        phi = np.tril(l_inv @ sym @ _mT(l_inv))
        diag = np.einsum("...ii->...i", phi)
        diag *= 0.5
        dl = low @ phi
        return _mT(dl) if self.upper else dl

    def backward(self, grad: Array) -> Grads:
        low = _mT(self.s_l) if self.upper else self.s_l
        g = _mT(grad) if self.upper else grad
        n = low.shape[-1]
        eye = np.eye(n, dtype=low.dtype)
        l_inv = np.linalg.solve(low, np.broadcast_to(eye, low.shape))
        phi = np.tril(_mT(low) @ g)
        diag = np.einsum("...ii->...i", phi)
        diag *= 0.5
        ga = _mT(l_inv) @ phi @ l_inv
        return ((ga + _mT(ga)) * low.dtype.type(0.5),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The same formula with tensor ops, differentiable."""
        out = self.saved_output(self.s_l)
        low = out.mT if self.upper else out
        g = grad.mT if self.upper else grad
        n = self.s_l.shape[-1]
        half = np.tril(np.ones((n, n), dtype=self.s_l.dtype)) - 0.5 * np.eye(
            n, dtype=self.s_l.dtype
        )
        phi = (low.mT @ g) * Tensor._wrap(half)
        l_inv = inv(low)
        ga = l_inv.mT @ phi @ l_inv
        return ((ga + ga.mT) * 0.5,)


def inv(A: Tensor) -> Tensor:
    """The inverse of a square matrix or of each in a batch; singular: :class:`LinAlgError`."""
    return Inv.apply(_square(A, "inv"))


def solve(A: Tensor, B: Tensor) -> Tensor:
    """X with A X = B, as ``torch.linalg.solve``: B of shape ``(*, n)`` (a batch of vectors:
    B 1-D, or of A's batch shape plus n) or ``(*, n, k)``; batches broadcast.
    """
    a = _square(A, "solve")
    b = as_tensor(B, "solve")
    dt = result_dtype(a.data.dtype, b.data.dtype)
    if dt.kind != "f":
        raise TypeError(f"solve: expected float tensors, got {a.data.dtype} and {b.data.dtype}")
    a, b = _cast(a, dt, "solve"), _cast(b, dt, "solve")
    n = a.data.shape[-1]
    bs = b.data.shape
    vector = b.data.ndim == 1 or (b.data.ndim == a.data.ndim - 1 and bs == a.data.shape[:-1])
    bm = (*bs, 1) if vector else bs
    ok = len(bm) >= 2 and bm[-2] == n
    if ok:
        try:
            np.broadcast_shapes(a.data.shape[:-2], bm[:-2])
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"solve: A of shape {fmt(a.data.shape)} and B of shape {fmt(bs)} do not fit "
            "(B must be (*, n) or (*, n, k) with broadcastable batches)"
        )
    return Solve.apply(a, b, vector=vector)


def cholesky(A: Tensor, upper: bool = False) -> Tensor:
    """L lower-triangular with A = L L^T (``upper=True``: U = L^T, A = U^T U), reading A's
    lower triangle; not positive-definite: :class:`LinAlgError`.
    """
    return Cholesky.apply(_square(A, "cholesky"), upper=bool(upper))


# ---- norms -------------------------------------------------------------------------------


class VectorNorm(Function):
    """y = (sum |x|^p)^(1/p) over axes (p = inf: max |x|; p = 0: count of non-zeros);
    dx = grad sign(x) |x|^(p-1) / y^(p-1), and 0 where y == 0 (PyTorch's subgradient)
    """

    __slots__ = ("axes", "keepdims", "p", "s_x", "s_y")
    saves = (0, -1)

    def forward(self, x: Array, *, p: float, axes: tuple[int, ...], keepdims: bool) -> Array:
        self.s_x, self.p, self.axes, self.keepdims = x, p, axes, keepdims
        ax = np.abs(x)
        t = x.dtype.type
        if p == 2:
            y = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        elif p == 1:
            y = np.sum(ax, axis=axes, keepdims=True)
        elif p == math.inf:
            y = _amax(ax, axes)
        elif p == -math.inf:
            y = -_amax(-ax, axes)
        elif p == 0:
            y = np.sum(x != 0, axis=axes, keepdims=True).astype(x.dtype)
        else:
            with np.errstate(divide="ignore"):
                y = np.power(np.sum(np.power(ax, t(p)), axis=axes, keepdims=True), t(1 / p))
        y = np.asarray(y, dtype=x.dtype)
        self.s_y = y
        return y if keepdims else y.reshape([n for d, n in enumerate(y.shape) if d not in axes])

    def _slope(self) -> Array:
        """dy/dx element-wise (y with kept axes broadcasts against it); 0 where y == 0."""
        x, y, p = self.s_x, self.s_y, self.p
        t = x.dtype.type
        zero = t(0)
        if p == 0:
            return np.zeros(x.shape, dtype=x.dtype)
        if p == 1:
            return np.sign(x)
        if math.isinf(p):
            ax = np.abs(x)
            mask = (ax == y) | np.isnan(ax)
            count = np.sum(mask, axis=self.axes, keepdims=True)
            return np.asarray(np.sign(x) * np.where(mask, t(1) / count, zero))
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                out = x / y
            else:
                out = np.sign(x) * np.power(np.abs(x), t(p - 1)) / np.power(y, t(p - 1))
        return np.asarray(np.where((y == 0) | (x == 0), zero, out))

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = sum(dy/dx * t) over the axes"""
        if t is None:
            return None
        d = np.sum(self._slope() * t, axis=self.axes, keepdims=True)
        return np.asarray(d.reshape(out.shape), dtype=out.dtype)

    def backward(self, grad: Array) -> Grads:
        g = grad if self.keepdims else grad.reshape(self.s_y.shape)
        return (self._slope() * g,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad dy/dx with tensor ops, differentiable (0 where y == 0 or, for p != 2, x == 0)."""
        from gradwise.autograd.ops.elementwise import where as _where
        from gradwise.autograd.ops.math import sign as _sign

        xa, ya, p = self.s_x, self.s_y, self.p
        g = grad if self.keepdims else grad.reshape(*ya.shape)
        if p == 0:
            return (Tensor._wrap(np.zeros(xa.shape, dtype=xa.dtype)),)
        x = self.saved_input(0, xa)
        if p == 1:
            return (_sign(x) * g,)
        if math.isinf(p):
            return (_sign(x) * Tensor._wrap(self._slope() * np.sign(xa)) * g,)
        kept = (
            ya
            if self.keepdims
            else ya.reshape([n for d, n in enumerate(ya.shape) if d not in self.axes])
        )
        y = self.saved_output(kept)
        if not self.keepdims:
            y = y.reshape(*ya.shape)
        y_zero = np.broadcast_to(ya == 0, xa.shape)
        y_safe = _where(ya == 0, 1.0, y)
        if p == 2:
            return (_where(y_zero, 0.0, x / y_safe) * g,)
        dead = y_zero | (xa == 0)
        x_safe = _where(xa == 0, 1.0, x)
        slope = _sign(x) * x_safe.abs() ** (p - 1) / y_safe ** (p - 1)
        return (_where(dead, 0.0, slope) * g,)


class SingularValues(Function):
    """s = the singular values of A (descending);  dA = U diag(grad) V^T (distinct values)"""

    __slots__ = ("s_u", "s_vt")

    def forward(self, a: Array) -> Array:
        u, sv, vt = np.linalg.svd(a, full_matrices=False)
        self.s_u, self.s_vt = u, vt
        return np.asarray(sv, dtype=a.dtype)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """ds_k = u_k^T t v_k"""
        if t is None:
            return None
        ds: Array = np.einsum("...ik,...ij,...kj->...k", self.s_u, t, self.s_vt)
        return ds

    def backward(self, grad: Array) -> Grads:
        return ((self.s_u * grad[..., None, :]) @ self.s_vt,)


def _matrix_norm(t: Tensor, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """``torch.linalg.matrix_norm`` over ``axes`` for ord 'nuc', 2, -2, 1, -1, inf, -inf."""
    nd = t.data.ndim
    a0, a1 = axes
    keep = [n for d, n in enumerate(t.data.shape) if d not in axes]
    if ord == "nuc" or ord in (2, -2):
        rest = [d for d in range(nd) if d not in axes]
        s = SingularValues.apply(t.permute(*rest, a0, a1))
        if ord == "nuc":
            r = s.sum(axis=-1)
        else:
            if s.data.shape[-1] == 0:
                raise ValueError(
                    f"norm: the matrix {ord}-norm of an empty matrix is undefined (shape "
                    f"{fmt(t.data.shape)})"
                )
            r = s.max(axis=-1) if ord == 2 else s.min(axis=-1)
    else:
        p = _ord(ord)
        if p not in (1.0, -1.0, math.inf, -math.inf):
            raise ValueError(
                f"norm: matrix ord {ord!r} is not supported; use 'fro', 'nuc', 2, -2, 1, -1, "
                "inf or -inf"
            )
        inner, outer = (a0, a1) if p in (1.0, -1.0) else (a1, a0)
        summed = t.abs().sum(axis=inner, keepdims=True)
        if summed.data.shape[outer] == 0:
            raise ValueError(
                f"norm: the matrix {ord}-norm of an empty matrix is undefined (shape "
                f"{fmt(t.data.shape)})"
            )
        r = (
            summed.max(axis=outer, keepdims=True)
            if p > 0
            else summed.min(axis=outer, keepdims=True)
        )
        r = r.reshape(*keep)
    if keepdims:
        r = r.reshape(*[1 if d in axes else n for d, n in enumerate(t.data.shape)])
    return r


def _amax(x: Array, axes: tuple[int, ...]) -> Array:
    if any(x.shape[d] == 0 for d in axes):
        raise ValueError(
            f"norm: the inf norms of an empty axis are undefined (shape {fmt(x.shape)}, "
            f"axes {axes})"
        )
    top: Array = np.max(x, axis=axes, keepdims=True)
    return top


def _ord(ord: Any) -> float:
    if isinstance(ord, bool) or not isinstance(ord, int | float | np.integer | np.floating):
        raise TypeError(f"norm: ord must be a number, 'fro' or None, got {ord!r}")
    return float(ord)


def norm(
    x: Tensor,
    ord: float | str | None = None,
    axis: int | tuple[int, ...] | None = None,
    keepdims: bool = False,
) -> Tensor:
    """Vector or matrix norm, as ``torch.linalg.norm``.

    ``axis=None, ord=None``: the 2-norm of all elements. An int ``axis`` (or a 1-D input):
    the vector norm of order ``ord`` (any p, ``inf``, ``-inf``, 0). A 2-tuple ``axis`` (or
    a 2-D input with an ``ord``): the matrix norm: ``'fro'`` (the default, Frobenius),
    ``'nuc'`` (the sum of singular values), 2 / -2 (the largest / smallest singular value),
    1 / -1 (max / min column sum of |x|) and inf / -inf (max / min row sum). The gradient
    at a zero norm is 0; ties in the max/min share the gradient evenly.
    """
    t = as_tensor(x, "norm")
    if t.data.dtype.kind != "f":
        raise TypeError(f"norm: expected a float32 or float64 tensor, got {t.data.dtype}")
    nd = t.data.ndim
    if axis is None:
        if ord is None:
            return VectorNorm.apply(t, p=2.0, axes=tuple(range(nd)), keepdims=bool(keepdims))
        if nd == 1:
            axes: tuple[int, ...] = (0,)
        elif nd == 2:
            axes = (0, 1)
        else:
            raise ValueError(
                f"norm: with ord={ord!r} and axis=None the input must be 1-D or 2-D, got "
                f"shape {fmt(t.data.shape)}"
            )
    else:
        items = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
        if len(items) not in (1, 2):
            raise ValueError(f"norm: axis must be an int or a 2-tuple, got {axis!r}")
        axes = tuple(cops.normalize_axes(nd, a, "norm")[0] for a in items)
        if len(axes) == 2 and axes[0] == axes[1]:
            raise ValueError(f"norm: the two axes must differ, got {axis!r}")
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"norm: ord {ord!r} is for matrices; a vector norm takes a number")
        p = 2.0 if ord is None else _ord(ord)
        return VectorNorm.apply(t, p=p, axes=axes, keepdims=bool(keepdims))
    if ord is None or ord == "fro":
        return VectorNorm.apply(t, p=2.0, axes=tuple(sorted(axes)), keepdims=bool(keepdims))
    if isinstance(ord, str) and ord != "nuc":
        raise ValueError(f"norm: matrix ord {ord!r} is not supported; use 'fro' or 'nuc'")
    return _matrix_norm(t, ord, axes, bool(keepdims))


def svdvals(A: Tensor) -> Tensor:
    """The singular values of a matrix or of each in a batch, descending
    (``torch.linalg.svdvals``); the gradient is U diag(grad) V^T (distinct values).
    """
    t = as_tensor(A, "svdvals")
    if t.data.ndim < 2:
        raise ValueError(f"svdvals: expected a matrix (*, m, n), got shape {fmt(t.data.shape)}")
    if t.data.dtype.kind != "f":
        raise TypeError(f"svdvals: expected a float32 or float64 tensor, got {t.data.dtype}")
    return SingularValues.apply(t)


def diagonal(A: Tensor, offset: int = 0, axis1: int = -2, axis2: int = -1) -> Tensor:
    """The diagonal ``offset`` of each matrix in a batch (``torch.linalg.diagonal``: by
    default the last two axes; :func:`gradwise.autograd.diagonal` defaults to the first
    two), as a view appended as the last axis.
    """
    from gradwise.autograd.ops.index import diagonal as _diagonal

    return _diagonal(as_tensor(A, "linalg.diagonal"), offset, axis1, axis2)


def trace(A: Tensor) -> Tensor:
    """The sum of the main diagonal of a matrix or of each in a batch (*, m, n), as
    ``np.trace(A, axis1=-2, axis2=-1)``; the gradient is the identity pattern.
    """
    t = as_tensor(A, "linalg.trace")
    if t.data.ndim < 2:
        raise ValueError(
            f"linalg.trace: expected a matrix (*, m, n), got shape {fmt(t.data.shape)}"
        )
    return diagonal(t).sum(axis=-1)
