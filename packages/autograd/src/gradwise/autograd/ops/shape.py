"""Shape ops (views where NumPy gives views), indexing, concatenation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd._args import shape_args as _shape_args
from gradwise.autograd._tangents import or_zeros
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.tensor import Tensor, as_tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Axis, Shape

fmt = cops.fmt_shape


class Reshape(Function):
    """y = x.reshape(shape);  dx = grad.reshape(x.shape)"""

    __slots__ = ("shape",)
    view = True

    def forward(self, x: Array, *, shape: Shape) -> Array:
        self.shape = x.shape
        return x.reshape(shape)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t reshaped"""
        return None if t is None else t.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        return (grad.reshape(self.shape),)


class Permute(Function):
    """y = x.transpose(axes);  dx = grad.transpose(inverse axes)"""

    __slots__ = ("axes",)
    view = True

    def forward(self, x: Array, *, axes: tuple[int, ...]) -> Array:
        self.axes = axes
        return x.transpose(axes)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t transposed"""
        return None if t is None else t.transpose(self.axes)

    def backward(self, grad: Array) -> Grads:
        return (grad.transpose(np.argsort(self.axes)),)


class Expand(Function):
    """y = broadcast_to(x, shape) (a read-only view);  dx = grad summed back (by the engine)"""

    __slots__ = ()
    view = True

    def forward(self, x: Array, *, shape: Shape) -> Array:
        return np.broadcast_to(x, shape)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t broadcast"""
        return None if t is None else np.broadcast_to(t, out.shape)

    def backward(self, grad: Array) -> Grads:
        return (grad,)


class Clone(Function):
    """y = copy of x;  dx = grad"""

    __slots__ = ()

    def forward(self, x: Array) -> Array:
        return np.array(x, copy=True)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = a copy of t"""
        return None if t is None else np.array(t, copy=True)

    def backward(self, grad: Array) -> Grads:
        return (grad,)


class GetItem(Function):
    """y = x[key];  dx = zeros with grad added at key (repeated indices accumulate)"""

    __slots__ = ("advanced", "dtype", "key", "shape")
    view = True  # basic indexing gives a view; advanced indexing a copy (checked on use)

    def forward(self, x: Array, *, key: Any, advanced: bool) -> Array:
        self.shape, self.dtype, self.key, self.advanced = x.shape, x.dtype, key, advanced
        out = x[key]
        if isinstance(out, np.ndarray):
            return out
        # one element (x[0] of 1-D): a 0-d view, as PyTorch's, so in-place writes reach x
        return x[(*key, ...)] if isinstance(key, tuple) else x[key, ...]

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t[key]"""
        return None if t is None else np.asarray(t[self.key])

    def backward(self, grad: Array) -> Grads:
        out = np.zeros(self.shape, dtype=grad.dtype)
        if self.advanced:
            np.add.at(out, self.key, grad)
        else:
            out[self.key] = grad
        return (out,)


class Cat(Function):
    """y = concatenate(xs, axis);  dx_i = the slice of grad that came from x_i"""

    __slots__ = ("axis", "sizes")

    def forward(self, *xs: Array, axis: int) -> Array:
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    def jvp(self, out: Array, *ts: Array | None) -> Array | None:
        """dy = the tangents joined (zeros for inputs without one)"""
        shape = list(out.shape)
        parts = []
        for t, n in zip(ts, self.sizes, strict=True):
            shape[self.axis] = n
            parts.append(or_zeros(t, tuple(shape), out.dtype))
        return np.concatenate(parts, axis=self.axis)

    def backward(self, grad: Array) -> Grads:
        cuts = [int(c) for c in np.cumsum(self.sizes)[:-1]]
        parts: list[Array] = np.split(grad, cuts, axis=self.axis)
        return tuple(parts)


class Stack(Function):
    """y = stack(xs, axis);  dx_i = grad taken at index i of ``axis``"""

    __slots__ = ("axis", "n")

    def forward(self, *xs: Array, axis: int) -> Array:
        self.axis, self.n = axis, len(xs)
        return np.stack(xs, axis=axis)

    def jvp(self, out: Array, *ts: Array | None) -> Array | None:
        """dy = the tangents stacked (zeros for inputs without one)"""
        shape = out.shape[: self.axis] + out.shape[self.axis + 1 :]
        return np.stack([or_zeros(t, shape, out.dtype) for t in ts], axis=self.axis)

    def backward(self, grad: Array) -> Grads:
        return tuple(np.take(grad, i, axis=self.axis) for i in range(self.n))


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """The same elements in another shape (one entry may be -1)."""
    t = as_tensor(x, "reshape")
    new = _shape_args("reshape", shape)
    try:
        np.empty(t.data.shape, dtype=np.bool_).reshape(new)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {fmt(t.data.shape)} "
            f"({t.data.size} elements) into shape {fmt(new)}"
        ) from None
    return Reshape.apply(t, shape=new)


view = reshape


def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes start_axis..end_axis into one (a 0-d tensor becomes shape (1,))."""
    t = as_tensor(x, "flatten")
    shape = t.data.shape
    if not shape:
        return reshape(t, 1)
    lo = cops.normalize_axes(len(shape), start_axis, "flatten")[0]
    hi = cops.normalize_axes(len(shape), end_axis, "flatten")[0]
    if lo > hi:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    merged = 1
    for d in shape[lo : hi + 1]:
        merged *= d
    return reshape(t, (*shape[:lo], merged, *shape[hi + 1 :]))


def permute(x: Tensor, *axes: Any) -> Tensor:
    """Reorder the axes (a view)."""
    t = as_tensor(x, "permute")
    order = _shape_args("permute", axes)
    nd = t.data.ndim
    norm = tuple(a % nd if nd else a for a in order)
    if sorted(norm) != list(range(nd)) or any(not -nd <= a < nd for a in order):
        raise ValueError(f"permute: {order} is not a permutation of the {nd} axes")
    return Permute.apply(t, axes=norm)


def transpose(x: Tensor, axis0: int, axis1: int) -> Tensor:
    """Swap two axes (a view)."""
    t = as_tensor(x, "transpose")
    nd = t.data.ndim
    a = cops.normalize_axes(nd, axis0, "transpose")
    b = cops.normalize_axes(nd, axis1, "transpose")
    order = list(range(nd))
    if nd:
        order[a[0]], order[b[0]] = order[b[0]], order[a[0]]
    return Permute.apply(t, axes=tuple(order))


def squeeze(x: Tensor, axis: Axis = None) -> Tensor:
    """Remove axes of length 1: all of them, or those in ``axis`` (which must have length 1)."""
    t = as_tensor(x, "squeeze")
    shape = t.data.shape
    if axis is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        axes = cops.normalize_axes(len(shape), axis, "squeeze")
        for a in axes:
            if shape[a] != 1:
                raise ValueError(
                    f"squeeze: axis {a} has length {shape[a]}, not 1 (shape {fmt(shape)})"
                )
    return Reshape.apply(t, shape=tuple(d for i, d in enumerate(shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert an axis of length 1 at ``axis`` (-1 appends)."""
    t = as_tensor(x, "unsqueeze")
    shape = t.data.shape
    a = cops.normalize_axes(len(shape) + 1, axis, "unsqueeze")[0]
    return Reshape.apply(t, shape=(*shape[:a], 1, *shape[a:]))


def expand(x: Tensor, *shape: Any) -> Tensor:
    """Broadcast to ``shape`` (a read-only view); -1 keeps that axis's length."""
    t = as_tensor(x, "expand")
    target = list(_shape_args("expand", shape))
    extra = len(target) - t.data.ndim
    if extra < 0:
        raise ValueError(
            f"expand: shape {fmt(tuple(target))} has fewer axes than the tensor's {fmt(t.shape)}"
        )
    for i, d in enumerate(target):
        if d == -1:
            if i < extra:
                raise ValueError("expand: -1 is not allowed for a new leading axis")
            target[i] = t.data.shape[i - extra]
    return broadcast_to(t, target)


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to ``shape`` (a read-only view), as ``np.broadcast_to``."""
    t = as_tensor(x, "broadcast_to")
    target = _shape_args("broadcast_to", (tuple(shape),))
    try:
        np.broadcast_shapes(t.data.shape, target)
        if np.broadcast_shapes(t.data.shape, target) != target:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"broadcast_to: a tensor of shape {fmt(t.data.shape)} cannot be broadcast to "
            f"shape {fmt(target)}"
        ) from None
    return Expand.apply(t, shape=target)


def clone(x: Tensor) -> Tensor:
    """A copy that stays in the graph."""
    return Clone.apply(as_tensor(x, "clone"))


def _index_parts(key: Any) -> tuple[Any, bool]:
    """Key with tensors replaced by arrays; and whether it uses advanced indexing."""
    parts = key if isinstance(key, tuple) else (key,)
    out: list[Any] = []
    advanced = False
    for k in parts:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray):
            if k.dtype.kind not in "biu":
                raise IndexError(
                    f"getitem: index arrays must be integer or bool, got dtype {k.dtype}"
                )
            advanced = True
        elif not (
            k is None
            or k is Ellipsis
            or isinstance(k, slice)
            or (isinstance(k, int | np.integer) and not isinstance(k, bool))
        ):
            raise TypeError(
                f"getitem: unsupported index of type {type(k).__name__}; use ints, slices, "
                "None, ..., bool masks or integer arrays"
            )
        out.append(k)
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced


def getitem(x: Tensor, key: Any) -> Tensor:
    """x[key] with NumPy's indexing rules; out-of-range indices raise IndexError."""
    t = as_tensor(x, "getitem")
    k, advanced = _index_parts(key)
    try:
        t.data[k]
    except IndexError as exc:
        raise IndexError(f"getitem: {exc} (tensor of shape {fmt(t.data.shape)})") from None
    return GetItem.apply(t, key=k, advanced=advanced)


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    ts = _many(tensors, "cat")
    nd = ts[0].data.ndim
    if nd == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    a = cops.normalize_axes(nd, axis, "cat")[0]
    for t in ts[1:]:
        if t.data.ndim != nd or any(
            d != e
            for i, (d, e) in enumerate(zip(t.data.shape, ts[0].data.shape, strict=True))
            if i != a
        ):
            raise ValueError(
                f"cat: shapes {', '.join(fmt(u.data.shape) for u in ts)} differ outside axis {a}"
            )
    return Cat.apply(*_same_dtype(ts), axis=a)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    ts = _many(tensors, "stack")
    shapes = {t.data.shape for t in ts}
    if len(shapes) != 1:
        raise ValueError(
            f"stack: all tensors need one shape, got {', '.join(fmt(t.data.shape) for t in ts)}"
        )
    a = cops.normalize_axes(ts[0].data.ndim + 1, axis, "stack")[0]
    return Stack.apply(*_same_dtype(ts), axis=a)


def _many(tensors: Sequence[Tensor], op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence) or not tensors:
        raise TypeError(f"{op}: expected a non-empty list or tuple of tensors")
    return [as_tensor(t, op) for t in tensors]


def _same_dtype(ts: list[Tensor]) -> list[Tensor]:
    from gradwise.autograd.tensor import _cast
    from gradwise.core.dtypes import result_dtype

    dt = result_dtype(*[t.data.dtype for t in ts])
    return [_cast(t, dt, "cat") for t in ts]
