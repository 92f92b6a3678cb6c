"""In-place ops: ``add_``, ``sub_``, ``mul_``, ``div_``, ``fill_``, ``copy_``, ``clamp_``,
``x[key] = value``. Each bumps the tensor's version counter.

On a non-leaf tensor in a graph, the op is recorded like its out-of-place twin and the
tensor's ``grad_fn`` moves to the new node, so gradients flow through in-place updates as
in PyTorch. On a leaf that requires grad (outside ``no_grad``) it is an error.

A write through a *view* (``y[0].mul_(2)``, ``y[:, 1] += z``) is recorded on the view's
base, as PyTorch's CopySlices: the base's new value is its old value with the view's
elements replaced by the op's result, so the base's ``grad_fn`` moves to a
:class:`WriteBack` node and the view's ``grad_fn`` to a fresh view of it. Views of the
same base taken *before* the write keep their old history (PyTorch regenerates it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import function as _function
from gradwise.autograd import grad_mode
from gradwise.autograd._tangents import lin
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.ops.shape import _index_parts
from gradwise.autograd.tensor import Tensor, as_tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array

_UFUNCS: dict[str, np.ufunc] = {
    "add_": np.add,
    "sub_": np.subtract,
    "mul_": np.multiply,
    "div_": np.true_divide,
}


class InplaceBinary(Function):
    """a <op>= b in place;  gradients as for the out-of-place op (from a's old value)"""

    __slots__ = ("op", "s_a", "s_b")
    saves = (1,)

    def forward(self, a: Array, b: Array, *, op: str) -> Array:
        self.op = op
        self.s_b = b
        self.s_a = a.copy() if op in ("mul_", "div_") else None
        _UFUNCS[op](a, b, out=a, casting="same_kind")
        return a

    def name(self) -> str:
        """``AddBackward``, ``MulBackward``, ...: the out-of-place op's name, as in PyTorch."""
        return self.op[:-1].capitalize() + "Backward"

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """As the out-of-place op's rule, with a's old value"""
        name, b = self.op, self.s_b
        if name == "add_":
            return lin((ta, None), (tb, None))
        if name == "sub_":
            return lin((ta, None), (tb, -1))
        if name == "mul_":
            return lin((ta, b), (tb, self.s_a))
        d = lin((ta, None), (tb, np.negative(out)))
        return None if d is None else np.divide(d, b)

    def backward(self, grad: Array) -> Grads:
        name, a, b = self.op, self.s_a, self.s_b
        if name == "add_":
            return grad, grad
        if name == "sub_":
            return grad, np.negative(grad)
        assert a is not None
        assert b is not None
        if name == "mul_":
            return grad * b, grad * a
        da = grad / b
        return da, np.negative(da) * a / b


class SetItem(Function):
    """a[key] = b in place;  da = grad with zeros at key,  db = grad[key]"""

    __slots__ = ("key",)

    def forward(self, a: Array, b: Array, *, key: Any) -> Array:
        self.key = key
        a[key] = b
        return a

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """da = ta with tb written at key"""
        t = np.zeros(out.shape, out.dtype) if ta is None else np.array(ta, copy=True)
        t[self.key] = 0 if tb is None else tb
        return t

    def backward(self, grad: Array) -> Grads:
        ga = grad.copy()
        ga[self.key] = 0
        return ga, grad[self.key]


class Clamp(Function):
    """a = clip(a, lo, hi) in place;  da = grad where lo <= a_old <= hi"""

    __slots__ = ("hi", "lo", "s_keep")

    def forward(self, a: Array, *, lo: float | None, hi: float | None) -> Array:
        keep = np.ones(a.shape, dtype=bool)
        if lo is not None:
            keep &= a >= lo
        if hi is not None:
            keep &= a <= hi
        self.s_keep, self.lo, self.hi = keep, lo, hi
        t = a.dtype.type
        np.clip(a, None if lo is None else t(lo), None if hi is None else t(hi), out=a)
        return a

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t where the old value was within the bounds"""
        return None if t is None else self.backward(t)[0]

    def backward(self, grad: Array) -> Grads:
        return (np.where(self.s_keep, grad, grad.dtype.type(0)),)


class Gather(Function):
    """y = x.flat[positions] (C order; a copy shaped like positions);  dx = grad scattered back"""

    __slots__ = ("positions", "shape")

    def forward(self, x: Array, *, positions: Array) -> Array:
        self.positions, self.shape = positions, x.shape
        return np.asarray(np.take(x, positions))  # 0-d positions: take gives a scalar

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t.flat[positions]"""
        return None if t is None else np.asarray(np.take(t, self.positions))

    def backward(self, grad: Array) -> Grads:
        out = np.zeros(self.shape, dtype=grad.dtype)
        np.put(out, self.positions, grad)
        return (out,)


class WriteBack(Function):
    """y = x with y.flat[positions] = v (already written, through a view);

    dx = grad with zeros at positions,  dv = grad.flat[positions]
    """

    __slots__ = ("positions",)

    def forward(self, x: Array, v: Array, *, positions: Array) -> Array:
        self.positions = positions
        return x  # the write went through the view: x's memory holds v already

    def jvp(self, out: Array, tx: Array | None, tv: Array | None) -> Array | None:
        """dy = tx with tv written at positions"""
        t = np.zeros(out.shape, out.dtype) if tx is None else np.array(tx, copy=True, order="C")
        np.put(t, self.positions, 0 if tv is None else tv)
        return t

    def backward(self, grad: Array) -> Grads:
        gx = np.array(grad, copy=True, order="C")
        np.put(gx, self.positions, 0)
        return gx, np.asarray(np.take(grad, self.positions))


def view_positions(view: Array, base: Array) -> Array | None:
    """The C-order flat index into ``base`` of each element of ``view`` (shaped like the
    view), or None if the view's elements are not all distinct elements of ``base``.

    Found from memory addresses, so any chain of basic indexing, reshapes and transposes
    between the two works.
    """
    if view.dtype != base.dtype or base.size == 0:
        return None
    base_addr = _addresses(base).ravel()
    order = np.argsort(base_addr, kind="stable")
    sorted_addr = base_addr[order]
    if sorted_addr.size > 1 and not np.all(np.diff(sorted_addr) > 0):
        return None  # the base overlaps itself (a broadcast view)
    view_addr = _addresses(view)
    where = np.searchsorted(sorted_addr, view_addr)
    if np.any(where >= sorted_addr.size) or not np.array_equal(sorted_addr[where], view_addr):
        return None
    positions = order[where]
    if np.unique(positions).size != positions.size:
        return None
    return positions


def _addresses(a: Array) -> Array:
    """The memory address of each element of ``a`` (int64, shaped like ``a``)."""
    addr = np.full(a.shape, a.__array_interface__["data"][0], dtype=np.int64)
    for axis, (n, stride) in enumerate(zip(a.shape, a.strides, strict=True)):
        shape = [1] * a.ndim
        shape[axis] = n
        addr += (np.arange(n, dtype=np.int64) * stride).reshape(shape)
    return addr


def _through_view(t: Tensor, what: str, inner: type[Function], *args: Tensor, **kw: Any) -> Tensor:
    """Record an in-place write into view ``t`` on its base (see the module doc); returns t."""
    base = t._base
    assert base is not None
    positions = view_positions(t.data, base.data)
    if positions is None:
        raise RuntimeError(
            f"{what}: in-place change of a view whose elements are not distinct elements of "
            f"its base (shape {cops.fmt_shape(base.data.shape)}) is not supported; clone() "
            "the view first"
        )
    # the base as it is now (its history before the write), as a tensor of its own
    prior = Tensor._wrap(base.data, base.grad_fn)
    prior._acc, prior._rg, prior._version = base._acc, base._rg, base.version_counter()
    if _function._FORWARD_ON:
        _prior_tangent(prior, base, t, positions)
    old = Gather.apply(prior, positions=positions)  # the view's elements, before
    new = inner.apply(old, *args, **kw)  # the op, on that copy
    t.data[...] = new.data  # the write itself, through the view
    result = WriteBack.apply(prior, new, positions=positions)
    base.version_counter().value += 1
    if result.grad_fn is not None:
        base.grad_fn, base._rg, base._acc = result.grad_fn, True, None
        t.grad_fn = Gather.apply(base, positions=positions).grad_fn
        t._rg, t._acc = True, None
    if _function._FORWARD_ON:
        _move_tangent(base, result)
        _move_tangent(t, Gather.apply(base, positions=positions))
    return t


def _prior_tangent(prior: Tensor, base: Tensor, view: Tensor, positions: Array) -> None:
    """Forward mode: the base's tangent, with the view's own tangent (if any) at its place."""
    from gradwise.autograd.forward_ad import set_tangent

    tb: Array | None = getattr(base, "_tangent", None)
    tv: Array | None = getattr(view, "_tangent", None)
    if tv is not None:
        tb = np.zeros(base.data.shape, base.data.dtype) if tb is None else tb.copy()
        np.put(tb, positions, tv)
    set_tangent(prior, tb)


def _move_tangent(t: Tensor, result: Tensor) -> None:
    """Forward mode: ``t`` takes the tangent of the op that replaced its value."""
    from gradwise.autograd.forward_ad import set_tangent

    set_tangent(t, getattr(result, "_tangent", None))


def _recording(*tensors: Tensor) -> bool:
    state = grad_mode.STATE
    if state.enabled and not state.inference and any(t._rg for t in tensors):
        return True
    # forward mode (not stopped by no_grad): tangents must follow the write
    return bool(_function._FORWARD_ON) and any(hasattr(t, "_tangent") for t in tensors)


def check_inplace(t: Tensor, op: str) -> None:
    """Raise if an in-place write into ``t`` would corrupt gradients."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    if not grad_mode.STATE.record:
        return
    if t.grad_fn is None and t._rg:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad cannot be modified in place; wrap the "
            "update in `with no_grad():` (as optimizers do) or work on a clone()"
        )
    base = t._base
    if base is not None and base.grad_fn is None and base._rg:
        raise RuntimeError(
            f"{op}: a view of a leaf tensor that requires grad cannot be modified in place; "
            "wrap the update in `with no_grad():` or work on a clone()"
        )
    if not t.data.flags.writeable:
        raise RuntimeError(
            f"{op}: the tensor is a read-only view (from expand or broadcast_to); clone() "
            "it before writing"
        )


def _finish(t: Tensor, result: Tensor) -> Tensor:
    t.version_counter().value += 1
    if _function._FORWARD_ON:
        _move_tangent(t, result)
    if result.grad_fn is not None:
        t.grad_fn = result.grad_fn
        t._rg = True
        t._acc = None  # no longer a leaf
    return t


def _operand(t: Tensor, other: Any, op: str) -> Tensor:
    o = as_tensor(other, op) if not isinstance(other, Tensor) else other
    weak_int = o.data.ndim == 0 and o.data.dtype.kind in "biu" and t.data.dtype.kind == "f"
    if o.data.dtype != t.data.dtype and not (
        np.can_cast(o.data.dtype, t.data.dtype, casting="same_kind") or weak_int
    ):
        raise TypeError(
            f"{op}: the result of type {o.data.dtype} cannot be stored in a tensor of "
            f"dtype {t.data.dtype}"
        )
    try:
        ok = np.broadcast_shapes(t.data.shape, o.data.shape) == t.data.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{op}: an operand of shape {cops.fmt_shape(o.data.shape)} cannot be applied in "
            f"place to a tensor of shape {cops.fmt_shape(t.data.shape)}"
        )
    return o


def inplace(t: Tensor, other: Any, name: str) -> Tensor:
    """``t <op>= other`` for name in add_, sub_, mul_, div_; returns t."""
    check_inplace(t, name)
    o = _operand(t, other, name)
    if name == "div_" and t.data.dtype.kind != "f":
        raise TypeError(f"div_: true division cannot be stored in a tensor of dtype {t.dtype}")
    if not _recording(t, o):
        _UFUNCS[name](t.data, o.data, out=t.data, casting="unsafe")
        t.version_counter().value += 1
        return t
    if t._base is not None:
        return _through_view(t, name, InplaceBinary, o, op=name)
    return _finish(t, InplaceBinary.apply(t, o, op=name))


def fill_(t: Tensor, value: float, op: str = "fill_") -> Tensor:
    """Fill ``t`` with ``value`` in place; the gradient to t's old value is zero."""
    check_inplace(t, op)
    if _recording(t):
        v = as_tensor(np.asarray(value, t.data.dtype), op)
        if t._base is not None:
            return _through_view(t, op, SetItem, v, key=...)
        return _finish(t, SetItem.apply(t, v, key=...))
    t.data.fill(value)
    t.version_counter().value += 1
    return t


def copy_(t: Tensor, src: Any) -> Tensor:
    """Copy ``src`` into ``t`` (broadcasting, casting to t's dtype); returns t."""
    check_inplace(t, "copy_")
    s = as_tensor(src, "copy_")
    try:
        np.broadcast_to(s.data, t.data.shape)
    except ValueError:
        raise ValueError(
            f"copy_: a source of shape {cops.fmt_shape(s.data.shape)} cannot be copied into a "
            f"tensor of shape {cops.fmt_shape(t.data.shape)}"
        ) from None
    if _recording(t, s):
        if t._base is not None:
            return _through_view(t, "copy_", SetItem, s, key=...)
        return _finish(t, SetItem.apply(t, s, key=...))
    np.copyto(t.data, s.data, casting="unsafe")
    t.version_counter().value += 1
    return t


def clamp_(t: Tensor, lo: float | None, hi: float | None) -> Tensor:
    """Clip ``t`` to [lo, hi] in place; returns t."""
    check_inplace(t, "clamp_")
    if lo is None and hi is None:
        raise ValueError("clamp_: at least one of min and max must be given")
    if _recording(t):
        if t._base is not None:
            return _through_view(t, "clamp_", Clamp, lo=lo, hi=hi)
        return _finish(t, Clamp.apply(t, lo=lo, hi=hi))
    dt = t.data.dtype.type
    np.clip(t.data, None if lo is None else dt(lo), None if hi is None else dt(hi), out=t.data)
    t.version_counter().value += 1
    return t


def setitem(t: Tensor, key: Any, value: Any) -> None:
    """``t[key] = value`` (value broadcast to the indexed shape and cast to t's dtype)."""
    check_inplace(t, "setitem")
    k, _ = _index_parts(key)
    v = as_tensor(value, "setitem")
    try:
        np.broadcast_to(v.data, t.data[k].shape)
    except IndexError as exc:
        raise IndexError(f"setitem: {exc} (tensor of shape {cops.fmt_shape(t.shape)})") from None
    except ValueError:
        raise ValueError(
            f"setitem: a value of shape {cops.fmt_shape(v.data.shape)} cannot be assigned to "
            f"an indexed region of shape {cops.fmt_shape(t.data[k].shape)}"
        ) from None
    if _recording(t, v):
        if t._base is not None:
            _through_view(t, "setitem", SetItem, v, key=k)
            return
        _finish(t, SetItem.apply(t, v, key=k))
        return
    t.data[k] = v.data
    t.version_counter().value += 1
