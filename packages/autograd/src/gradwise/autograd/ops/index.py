"""Scans, gathers and shape ops: cumsum/cumprod, gather/scatter_add, narrow/split/chunk,
flip, roll, pad, repeat/tile, tril/triu, einsum, trace and diagonal.

PyTorch's names and semantics with NumPy's ``axis``. ``narrow``, ``split``, ``chunk`` and
``diagonal`` return views (they share memory and the version counter with their input);
the others return new arrays.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd._args import shape_args as _shape_args
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.ops.shape import cat as _cat_tensors
from gradwise.autograd.tensor import Tensor, _cast, as_tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Axis, Shape, result_dtype

fmt = cops.fmt_shape
TGrads = tuple[Tensor | None, ...]


def _axis(ndim: int, axis: int, op: str) -> int:
    """One axis, non-negative; a 0-d tensor accepts 0 and -1 (as PyTorch)."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if ndim == 0:
        if axis not in (0, -1):
            raise ValueError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return 0
    return cops.normalize_axes(ndim, int(axis), op)[0]


def _int(value: Any, op: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def _index_array(index: Any, op: str) -> Array:
    """An integer index as an intp array; a float or bool index is a TypeError."""
    if isinstance(index, Tensor):
        arr = index.data
    elif isinstance(index, np.ndarray | list | tuple | int | np.integer):
        arr = np.asarray(index)
    else:
        raise TypeError(
            f"{op}: index must be an integer Tensor or array, got {type(index).__name__}"
        )
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must have an integer dtype, got {arr.dtype}")
    return arr.astype(np.intp, copy=False)


def _check_range(index: Array, size: int, op: str, negative: bool) -> Array:
    """IndexError naming ``op`` unless every index is in [0, size) (or [-size, size))."""
    if index.size:
        lo, hi = int(index.min()), int(index.max())
        low = -size if negative else 0
        if lo < low or hi >= size:
            bad = lo if lo < low else hi
            raise IndexError(
                f"{op}: index {bad} is out of bounds for an axis of size {size}"
                + ("" if negative else " (indices must be in [0, size))")
            )
        if negative and lo < 0:
            index = np.where(index < 0, index + size, index)
    return index


def _positions(index: Array, axis: int, shape: Shape) -> Array:
    """Flat positions in an array of ``shape`` of the elements that ``index`` (its entries
    along ``axis``, its own position elsewhere) points to.
    """
    grids = list(np.ogrid[tuple(slice(0, n) for n in index.shape)])
    grids[axis] = index
    full = np.broadcast_arrays(*grids)
    return np.ravel_multi_index(tuple(full), shape) if index.ndim else np.zeros((), np.intp)


# ---- scans -------------------------------------------------------------------------------


class Cumsum(Function):
    """y_i = x_0 + ... + x_i along axis;  dx_k = grad_k + ... + grad_{n-1} (a reversed cumsum)"""

    __slots__ = ("axis",)

    def forward(self, x: Array, *, axis: int) -> Array:
        self.axis = axis
        return np.cumsum(x, axis=axis, dtype=x.dtype if x.dtype.kind == "f" else None)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = cumsum(t)"""
        return None if t is None else np.cumsum(t, axis=self.axis, dtype=out.dtype)

    def backward(self, grad: Array) -> Grads:
        a = self.axis
        return (np.flip(np.cumsum(np.flip(grad, a), axis=a), a),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The reversed cumsum, differentiable."""
        a = (self.axis,)
        return (Flip.apply(Cumsum.apply(Flip.apply(grad, axes=a), axis=self.axis), axes=a),)


class Cumprod(Function):
    """y_i = x_0 ... x_i along axis;  dx_k = sum_{i >= k} grad_i prod_{j <= i, j != k} x_j

    Computed without dividing by x, so zeros (one or several) are exact:
    dx_k = (x_0 ... x_{k-1}) * s_k with s_k = grad_k + x_{k+1} s_{k+1}, a backward
    recurrence over the axis (one vectorised step per position).
    """

    __slots__ = ("axis", "s_x", "s_y")
    saves = (0, -1)

    def forward(self, x: Array, *, axis: int) -> Array:
        self.axis, self.s_x = axis, x
        self.s_y = np.cumprod(x, axis=axis, dtype=x.dtype if x.dtype.kind == "f" else None)
        return self.s_y

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy_i = dy_{i-1} x_i + y_{i-1} t_i (the forward recurrence; no division)"""
        if t is None:
            return None
        a = self.axis
        x, y, tt = (np.moveaxis(v, a, 0) for v in (self.s_x, out, t))
        d = np.empty(tt.shape, dtype=out.dtype)
        for i in range(x.shape[0]):
            d[i] = d[i - 1] * x[i] + y[i - 1] * tt[i] if i else tt[0]
        return np.moveaxis(d, 0, a)

    def backward(self, grad: Array) -> Grads:
        a = self.axis
        x = np.moveaxis(self.s_x, a, 0)
        y = np.moveaxis(self.s_y, a, 0)
        g = np.moveaxis(grad, a, 0)
        n = x.shape[0]
        out = np.empty(g.shape, dtype=grad.dtype)
        if n:
            s = g[n - 1].copy()
            out[n - 1] = s * y[n - 2] if n > 1 else s
            for k in range(n - 2, -1, -1):
                s = g[k] + x[k + 1] * s
                out[k] = s * y[k - 1] if k else s
        return (np.moveaxis(out, 0, a),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The same recurrence with tensor ops (one slice per position), differentiable."""
        a = self.axis
        x, y = self.saved_input(0, self.s_x), self.saved_output(self.s_y)
        n = self.s_x.shape[a]
        if n == 0:
            return (grad,)
        pre = (slice(None),) * a

        def at(t: Tensor, k: int) -> Tensor:
            return Slice.apply(t, key=(*pre, slice(k, k + 1)))

        parts: list[Tensor] = [grad] * n
        s = at(grad, n - 1)
        parts[n - 1] = s * at(y, n - 2) if n > 1 else s
        for k in range(n - 2, -1, -1):
            s = at(grad, k) + at(x, k + 1) * s
            parts[k] = s * at(y, k - 1) if k else s
        return (_cat_tensors(parts, axis=a),)


def cumsum(x: Tensor, axis: int) -> Tensor:
    """Cumulative sum along ``axis`` (PyTorch's ``dim``, required as there)."""
    t = as_tensor(x, "cumsum")
    a = _axis(t.data.ndim, axis, "cumsum")
    if t.data.ndim == 0:
        return Cumsum.apply(t.reshape(1), axis=0).reshape(())
    return Cumsum.apply(t, axis=a)


def cumprod(x: Tensor, axis: int) -> Tensor:
    """Cumulative product along ``axis``; the gradient is exact where x has zeros."""
    t = as_tensor(x, "cumprod")
    a = _axis(t.data.ndim, axis, "cumprod")
    if t.data.ndim == 0:
        return Cumprod.apply(t.reshape(1), axis=0).reshape(())
    return Cumprod.apply(t, axis=a)


# ---- gathers and scatters ----------------------------------------------------------------


class Gather(Function):
    """y = x[index along axis] (gather, take_along_axis);  dx = grad scatter-added back"""

    __slots__ = ("axis", "crop", "index", "target")

    def forward(self, x: Array, *, index: Array, axis: int, crop: bool) -> Array:
        self.index, self.axis, self.crop = index, axis, crop
        if crop:  # gather: other axes of x are cut to index's lengths
            key = tuple(
                slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape)
            )
            self.target = x.shape
            return np.take_along_axis(x[key], index, axis)
        out = np.take_along_axis(x, index, axis)
        # x broadcast against index (outside axis): the gradient has that shape and the
        # engine sums it back to x's
        self.target = tuple(x.shape[d] if d == axis else out.shape[d] for d in range(out.ndim))
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t gathered the same way"""
        if t is None:
            return None
        if self.crop:
            key = tuple(
                slice(None) if d == self.axis else slice(0, n)
                for d, n in enumerate(self.index.shape)
            )
            return np.take_along_axis(t[key], self.index, self.axis)
        return np.take_along_axis(t, self.index, self.axis)

    def backward(self, grad: Array) -> Grads:
        index = np.broadcast_to(self.index, grad.shape)
        flat = _positions(index, self.axis, self.target)
        out = np.zeros(int(np.prod(self.target)), dtype=grad.dtype)
        np.add.at(out, flat.reshape(-1), grad.reshape(-1))
        return (out.reshape(self.target),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad scatter-added into zeros, differentiable."""
        zeros = Tensor._wrap(np.zeros(self.target, dtype=grad.data.dtype))
        index = np.ascontiguousarray(np.broadcast_to(self.index, grad.data.shape))
        return (ScatterAdd.apply(zeros, grad, index=index, axis=self.axis),)


class ScatterAdd(Function):
    """y = x with src[i] added at index[i] along axis;  dx = grad,  dsrc = grad gathered"""

    __slots__ = ("axis", "flat", "index", "key", "src_shape")

    def forward(self, x: Array, src: Array, *, index: Array, axis: int) -> Array:
        self.src_shape, self.index, self.axis = src.shape, index, axis
        self.flat = _positions(index, axis, x.shape).reshape(-1)
        self.key = tuple(slice(0, n) for n in index.shape)
        out = np.array(x, copy=True)
        np.add.at(out.reshape(-1), self.flat, src[self.key].reshape(-1))
        return out

    def jvp(self, out: Array, tx: Array | None, ts: Array | None) -> Array | None:
        """dy = tx with ts scatter-added"""
        if tx is None and ts is None:
            return None
        d = np.zeros(out.shape, out.dtype) if tx is None else np.array(tx, out.dtype, copy=True)
        if ts is not None:
            np.add.at(d.reshape(-1), self.flat, ts[self.key].reshape(-1))
        return d

    def backward(self, grad: Array) -> Grads:
        dsrc = np.zeros(self.src_shape, dtype=grad.dtype)
        region = dsrc[self.key]
        region[...] = grad.reshape(-1)[self.flat].reshape(region.shape)
        return grad, dsrc

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad, and grad gathered (zero-padded to src's shape), differentiable."""
        picked = Gather.apply(grad, index=self.index, axis=self.axis, crop=True)
        pads = tuple((0, s - i) for s, i in zip(self.src_shape, self.index.shape, strict=True))
        if any(hi for _, hi in pads):
            picked = Pad.apply(picked, pads=pads, mode="constant", value=0.0)
        return grad, picked


def _gather_checks(x: Tensor, axis: int, index: Any, op: str) -> tuple[Array, int]:
    idx = _index_array(index, op)
    if idx.ndim != x.data.ndim:
        raise ValueError(
            f"{op}: index has {idx.ndim} dimensions but the tensor has {x.data.ndim} "
            f"(shapes {fmt(idx.shape)} and {fmt(x.data.shape)}); they must match"
        )
    a = _axis(x.data.ndim, axis, op)
    return idx, a


def gather(x: Tensor, axis: int, index: Any) -> Tensor:
    """out[i][j] = x[index[i][j]][j] for axis 0 (PyTorch's gather; out has index's shape).

    ``index`` has x's number of dimensions and, outside ``axis``, lengths no larger than
    x's; its entries are in ``[0, x.shape[axis])``.
    """
    t = as_tensor(x, "gather")
    idx, a = _gather_checks(t, axis, index, "gather")
    if t.data.ndim == 0:
        idx = _check_range(idx, 1, "gather", negative=False)
        return Gather.apply(t.reshape(1), index=idx.reshape(1), axis=0, crop=True).reshape(())
    for d in range(t.data.ndim):
        if d != a and idx.shape[d] > t.data.shape[d]:
            raise ValueError(
                f"gather: index shape {fmt(idx.shape)} is larger than the tensor's "
                f"{fmt(t.data.shape)} in axis {d} (only axis {a} may differ)"
            )
    idx = _check_range(idx, t.data.shape[a], "gather", negative=False)
    return Gather.apply(t, index=idx, axis=a, crop=True)


def take_along_axis(x: Tensor, indices: Any, axis: int | None) -> Tensor:
    """NumPy's take_along_axis: x and indices broadcast outside ``axis``; negative indices
    count from the end; ``axis=None`` works on the flattened tensor (1-D indices).
    """
    t = as_tensor(x, "take_along_axis")
    if axis is None:
        idx = _index_array(indices, "take_along_axis")
        if idx.ndim != 1:
            raise ValueError(
                f"take_along_axis: with axis=None indices must be 1-D, got shape {fmt(idx.shape)}"
            )
        t = t.reshape(-1)
        axis = 0
    idx, a = _gather_checks(t, axis, indices, "take_along_axis")
    if t.data.ndim == 0:
        idx = _check_range(idx, 1, "take_along_axis", negative=True)
        out = Gather.apply(t.reshape(1), index=idx.reshape(1), axis=0, crop=False)
        return out.reshape(())
    xs = tuple(1 if d == a else n for d, n in enumerate(t.data.shape))
    ns = tuple(1 if d == a else n for d, n in enumerate(idx.shape))
    try:
        np.broadcast_shapes(xs, ns)
    except ValueError:
        raise ValueError(
            f"take_along_axis: shapes {fmt(t.data.shape)} and {fmt(idx.shape)} do not "
            f"broadcast outside axis {a}"
        ) from None
    idx = _check_range(idx, t.data.shape[a], "take_along_axis", negative=True)
    return Gather.apply(t, index=idx, axis=a, crop=False)


take_along_dim = take_along_axis


def scatter_add(x: Tensor, axis: int, index: Any, src: Tensor) -> Tensor:
    """A copy of x with ``src[i][j]`` added at ``[index[i][j]][j]`` for axis 0 (PyTorch's).

    ``index`` has x's and src's number of dimensions, is no larger than src in any axis and
    no larger than x outside ``axis``; repeated indices accumulate.
    """
    t = as_tensor(x, "scatter_add")
    s = as_tensor(src, "scatter_add")
    idx, a = _gather_checks(t, axis, index, "scatter_add")
    if s.data.ndim != t.data.ndim:
        raise ValueError(
            f"scatter_add: src has shape {fmt(s.data.shape)} but the tensor has "
            f"{fmt(t.data.shape)}; they need the same number of dimensions"
        )
    if s.data.dtype != t.data.dtype:
        raise TypeError(
            f"scatter_add: src has dtype {s.data.dtype} but the tensor has {t.data.dtype}; "
            "they must match"
        )
    if t.data.ndim == 0:
        return scatter_add(t.reshape(1), 0, idx.reshape(1), s.reshape(1)).reshape(())
    for d in range(t.data.ndim):
        if idx.shape[d] > s.data.shape[d] or (d != a and idx.shape[d] > t.data.shape[d]):
            raise ValueError(
                f"scatter_add: index shape {fmt(idx.shape)} must be no larger than src's "
                f"{fmt(s.data.shape)} in every axis and than the tensor's "
                f"{fmt(t.data.shape)} outside axis {a}"
            )
    idx = _check_range(idx, t.data.shape[a], "scatter_add", negative=False)
    return ScatterAdd.apply(t, s, index=idx, axis=a)


# ---- slicing views -----------------------------------------------------------------------


class Slice(Function):
    """y = x[key] for a tuple of slices (a view);  dx = zeros with grad at key"""

    __slots__ = ("key", "shape")
    view = True

    def forward(self, x: Array, *, key: tuple[slice, ...]) -> Array:
        self.key, self.shape = key, x.shape
        return x[key]

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t[key]"""
        return None if t is None else t[self.key]

    def backward(self, grad: Array) -> Grads:
        out = np.zeros(self.shape, dtype=grad.dtype)
        out[self.key] = grad
        return (out,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad zero-padded back to x's shape, differentiable."""
        pads = []
        for d, n in enumerate(self.shape):
            if d < len(self.key):
                start, stop, _ = self.key[d].indices(n)
                pads.append((start, n - max(stop, start)))
            else:
                pads.append((0, 0))
        return (Pad.apply(grad, pads=tuple(pads), mode="constant", value=0.0),)


def _slice(t: Tensor, axis: int, start: int, stop: int) -> Tensor:
    key = (slice(None),) * axis + (slice(start, stop),)
    return Slice.apply(t, key=key)


def narrow(x: Tensor, axis: int, start: int, length: int) -> Tensor:
    """The view ``x[..., start:start + length, ...]`` along ``axis`` (start may be negative)."""
    t = as_tensor(x, "narrow")
    if t.data.ndim == 0:
        raise ValueError("narrow: cannot narrow a 0-d tensor")
    a = _axis(t.data.ndim, axis, "narrow")
    start, length = _int(start, "narrow", "start"), _int(length, "narrow", "length")
    n = t.data.shape[a]
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for an axis of size {n}")
    if start < 0:
        start += n
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start + length > n:
        raise IndexError(
            f"narrow: start ({start}) + length ({length}) exceeds the size {n} of axis {a} "
            f"(shape {fmt(t.data.shape)})"
        )
    return _slice(t, a, start, start + length)


def split(
    x: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0
) -> tuple[Tensor, ...]:
    """Views of consecutive pieces along ``axis``: of ``split_size`` each (the last may be
    smaller), or of the given section lengths (which must add up to the axis's length).
    """
    t = as_tensor(x, "split")
    if t.data.ndim == 0:
        raise ValueError("split: cannot split a 0-d tensor")
    a = _axis(t.data.ndim, axis, "split")
    n = t.data.shape[a]
    if isinstance(split_size_or_sections, int | np.integer) and not isinstance(
        split_size_or_sections, bool
    ):
        size = int(split_size_or_sections)
        if size < 0 or (size == 0 and n):
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if size else [0]
    elif isinstance(split_size_or_sections, Sequence):
        sizes = [_int(s, "split", "sections") for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(
                f"split: sections {sizes} must be non-negative and add up to {n}, the "
                f"length of axis {a} (shape {fmt(t.data.shape)})"
            )
    else:
        raise TypeError(
            "split: split_size_or_sections must be an int or a sequence of ints, got "
            f"{type(split_size_or_sections).__name__}"
        )
    out, start = [], 0
    for s in sizes:
        out.append(_slice(t, a, start, start + s))
        start += s
    return tuple(out)


def chunk(x: Tensor, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` views of ceil(n / chunks) elements along ``axis`` (as PyTorch,
    possibly fewer pieces; the last may be smaller).
    """
    t = as_tensor(x, "chunk")
    chunks = _int(chunks, "chunk", "chunks")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    if t.data.ndim == 0:
        raise ValueError("chunk: cannot chunk a 0-d tensor")
    a = _axis(t.data.ndim, axis, "chunk")
    n = t.data.shape[a]
    size = -(-n // chunks)
    if size == 0:  # an empty axis: PyTorch gives `chunks` empty pieces
        return tuple(_slice(t, a, 0, 0) for _ in range(chunks))
    return split(t, size, a)


# ---- flip, roll, pad, repeat -------------------------------------------------------------


class Flip(Function):
    """y = x reversed along axes (a copy, as PyTorch);  dx = grad reversed back"""

    __slots__ = ("axes",)

    def forward(self, x: Array, *, axes: tuple[int, ...]) -> Array:
        self.axes = axes
        return np.flip(x, axes).copy() if axes else np.array(x, copy=True)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = flip(t)"""
        return None if t is None else np.flip(t, self.axes)

    def backward(self, grad: Array) -> Grads:
        return (np.flip(grad, self.axes) if self.axes else grad,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad flipped back, differentiable."""
        return (Flip.apply(grad, axes=self.axes),)


class Roll(Function):
    """y = x shifted cyclically;  dx = grad shifted back"""

    __slots__ = ("axes", "shifts")

    def forward(self, x: Array, *, shifts: Any, axes: Any) -> Array:
        self.shifts, self.axes = shifts, axes
        return np.roll(x, shifts, axes)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = roll(t)"""
        return None if t is None else np.roll(t, self.shifts, self.axes)

    def backward(self, grad: Array) -> Grads:
        back = -self.shifts if isinstance(self.shifts, int) else tuple(-s for s in self.shifts)
        return (np.roll(grad, back, self.axes),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad rolled back, differentiable."""
        back = -self.shifts if isinstance(self.shifts, int) else tuple(-s for s in self.shifts)
        return (Roll.apply(grad, shifts=back, axes=self.axes),)


def flip(x: Tensor, axis: Axis) -> Tensor:
    """Reverse the order of elements along ``axis`` (an int or a tuple; None: all axes)."""
    t = as_tensor(x, "flip")
    return Flip.apply(t, axes=cops.normalize_axes(t.data.ndim, axis, "flip"))


def roll(x: Tensor, shifts: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
    """Shift elements cyclically by ``shifts`` along ``axis``; ``axis=None`` rolls the
    flattened tensor and restores the shape (as PyTorch).
    """
    t = as_tensor(x, "roll")
    nd = t.data.ndim
    if axis is None:
        if isinstance(shifts, Sequence):
            if len(shifts) != 1:
                raise ValueError(
                    f"roll: with axis=None shifts must be one int, got {tuple(shifts)}"
                )
            shifts = shifts[0]
        return Roll.apply(t, shifts=_int(shifts, "roll", "shifts"), axes=None)
    if isinstance(axis, Sequence) or isinstance(shifts, Sequence):
        ax = list(axis) if isinstance(axis, Sequence) else [axis]
        sh = list(shifts) if isinstance(shifts, Sequence) else [shifts]
        if len(ax) != len(sh):
            raise ValueError(
                f"roll: shifts {tuple(sh)} and axis {tuple(ax)} must have the same length"
            )
        axes = tuple(_axis(nd, a, "roll") for a in ax)
        vals = tuple(_int(s, "roll", "shifts") for s in sh)
        if nd == 0:
            return Roll.apply(t, shifts=0, axes=None)
        return Roll.apply(t, shifts=vals, axes=axes)
    a = _axis(nd, axis, "roll")
    s = _int(shifts, "roll", "shifts")
    return Roll.apply(t, shifts=s, axes=a if nd else None)


class Pad(Function):
    """y = x padded (constant, reflect, replicate or circular);  dx = the adjoint: the
    centre of grad, plus (reflect/replicate/circular) the padding folded back onto x
    """

    __slots__ = ("crop", "mode", "pads", "shape")

    def forward(
        self, x: Array, *, pads: tuple[tuple[int, int], ...], mode: str, value: float
    ) -> Array:
        self.pads, self.mode, self.shape = pads, mode, x.shape
        # negative constant padding crops first (as PyTorch)
        self.crop = tuple(
            slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, x.shape, strict=True)
        )
        grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
        if mode == "constant":
            padded: Array = np.pad(
                x[self.crop], grow, mode="constant", constant_values=x.dtype.type(value)
            )
            return padded
        np_mode: Any = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        out: Array = np.pad(x, grow, mode=np_mode)
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t padded the same way (zeros in constant mode)"""
        if t is None:
            return None
        return Pad().forward(t, pads=self.pads, mode=self.mode, value=0.0)

    def backward(self, grad: Array) -> Grads:
        return (_pad_adjoint(grad, self.pads, self.mode, self.shape, self.crop),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The adjoint with tensor ops: constant mode is a pad by the negated widths."""
        if self.mode == "constant":
            back = tuple((-lo, -hi) for lo, hi in self.pads)
            return (Pad.apply(grad, pads=back, mode="constant", value=0.0),)
        return (PadAdjoint.apply(grad, pads=self.pads, mode=self.mode, shape=self.shape),)


def _pad_adjoint(
    grad: Array,
    pads: tuple[tuple[int, int], ...],
    mode: str,
    shape: Shape,
    crop: tuple[slice, ...] | None = None,
) -> Array:
    """Pad's backward: the centre of grad, plus the padding folded back onto the input."""
    g = grad
    if mode == "constant":
        key = tuple(slice(max(lo, 0), g.shape[d] - max(hi, 0)) for d, (lo, hi) in enumerate(pads))
        out = np.zeros(shape, dtype=grad.dtype)
        if crop is None:
            crop = tuple(
                slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, shape, strict=True)
            )
        out[crop] = g[key]
        return out
    for d in range(len(pads) - 1, -1, -1):
        lo, hi = pads[d]
        if lo == 0 and hi == 0:
            continue
        g = np.moveaxis(g, d, 0)
        n = g.shape[0] - lo - hi
        core = g[lo : lo + n].copy()
        left, right = g[:lo], g[lo + n :]
        if mode == "reflect":
            core[1 : lo + 1] += left[::-1]
            core[n - 1 - hi : n - 1] += right[::-1]
        elif mode == "replicate":
            core[0] += left.sum(axis=0)
            core[n - 1] += right.sum(axis=0)
        else:  # circular
            core[n - lo :] += left
            core[:hi] += right
        g = np.moveaxis(core, 0, d)
    return g


class PadAdjoint(Function):
    """y = the adjoint of a reflect/replicate/circular pad applied to x (Pad's backward, as
    an op for double backward);  dx = grad padded the same way
    """

    __slots__ = ("mode", "pads")

    def forward(
        self, x: Array, *, pads: tuple[tuple[int, int], ...], mode: str, shape: Shape
    ) -> Array:
        self.pads, self.mode = pads, mode
        return _pad_adjoint(x, pads, mode, shape)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = the adjoint applied to t"""
        return None if t is None else _pad_adjoint(t, self.pads, self.mode, out.shape)

    def backward(self, grad: Array) -> Grads:
        return (Pad().forward(grad, pads=self.pads, mode=self.mode, value=0.0),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad padded, differentiable."""
        return (Pad.apply(grad, pads=self.pads, mode=self.mode, value=0.0),)


def pad(
    x: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the last ``len(pad) // 2`` axes: ``pad = (left_last, right_last, left_2nd_last,
    right_2nd_last, ...)``, as ``torch.nn.functional.pad``.

    Modes: ``'constant'`` (with ``value``, default 0; negative pads crop), ``'reflect'``
    (mirrored without repeating the edge; each pad shorter than its axis),
    ``'replicate'`` (the edge repeated) and ``'circular'`` (wrapped; pads no longer than
    the axis).
    """
    t = as_tensor(x, "pad")
    if not isinstance(pad, Sequence) or isinstance(pad, str):
        raise TypeError(f"pad: pad must be a tuple of ints, got {type(pad).__name__}")
    p = [_int(v, "pad", "pad entries") for v in pad]
    nd = t.data.ndim
    if len(p) % 2 or len(p) // 2 > nd:
        raise ValueError(
            f"pad: pad {tuple(p)} must have an even length of at most 2 * ndim = {2 * nd} "
            f"(shape {fmt(t.data.shape)})"
        )
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    if value is not None and mode != "constant":
        raise ValueError(f"pad: mode {mode!r} does not take a value")
    pairs = [(0, 0)] * nd
    for i in range(len(p) // 2):
        pairs[nd - 1 - i] = (p[2 * i], p[2 * i + 1])
    shape = t.data.shape
    for d, (lo, hi) in enumerate(pairs):
        n = shape[d]
        if mode == "constant":
            if n + lo + hi < 0 or n + min(lo, 0) + min(hi, 0) < 0:
                raise ValueError(
                    f"pad: padding {(lo, hi)} of axis {d} (size {n}, shape {fmt(shape)}) "
                    "would give a negative size"
                )
            continue
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative pads, got {tuple(p)}")
        limit = n - 1 if mode == "reflect" else n
        if (lo or hi) and (max(lo, hi) > limit or n == 0):
            raise ValueError(
                f"pad: {mode} padding {(lo, hi)} of axis {d} must be "
                f"{'smaller than' if mode == 'reflect' else 'at most'} its size {n} "
                f"(shape {fmt(shape)})"
            )
    v = 0.0 if value is None else value
    return Pad.apply(t, pads=tuple(pairs), mode=mode, value=v)


class Repeat(Function):
    """y = x tiled ``sizes`` times per axis;  dx = grad summed over the copies"""

    __slots__ = ("shape", "sizes")

    def forward(self, x: Array, *, sizes: Shape) -> Array:
        self.shape, self.sizes = x.shape, sizes
        xr = x.reshape((1,) * (len(sizes) - x.ndim) + x.shape)
        return np.tile(xr, sizes)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t tiled"""
        if t is None:
            return None
        return np.tile(t.reshape((1,) * (len(self.sizes) - t.ndim) + t.shape), self.sizes)

    def backward(self, grad: Array) -> Grads:
        dims = grad.shape
        inner = [d // s if s else 0 for d, s in zip(dims, self.sizes, strict=True)]
        base = (1,) * (len(self.sizes) - len(self.shape)) + self.shape
        split: list[int] = []
        for s, b in zip(self.sizes, base, strict=True):
            split += [s, b]
        g = grad.reshape(split) if all(inner) or grad.size else np.zeros(split, grad.dtype)
        summed = g.sum(axis=tuple(range(0, len(split), 2)))
        return (summed.reshape(self.shape),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad summed over the copies, differentiable."""
        base = (1,) * (len(self.sizes) - len(self.shape)) + self.shape
        split: list[int] = []
        for s, b in zip(self.sizes, base, strict=True):
            split += [s, b]
        summed = grad.reshape(*split).sum(axis=tuple(range(0, len(split), 2)))
        return (summed.reshape(*self.shape),)


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """PyTorch's ``Tensor.repeat``: tile ``sizes[i]`` copies along each axis; extra leading
    sizes add axes (``len(sizes)`` must be at least ``x.ndim``).
    """
    t = as_tensor(x, "repeat")
    s = _shape_args("repeat", sizes)
    if len(s) < t.data.ndim:
        raise ValueError(
            f"repeat: {len(s)} sizes {s} are fewer than the tensor's {t.data.ndim} "
            f"dimensions (shape {fmt(t.data.shape)})"
        )
    if any(v < 0 for v in s):
        raise ValueError(f"repeat: sizes must be non-negative, got {s}")
    return Repeat.apply(t, sizes=s)


def tile(x: Tensor, *dims: Any) -> Tensor:
    """``torch.tile``: as :func:`repeat`, with missing leading dims taken as 1."""
    t = as_tensor(x, "tile")
    d = _shape_args("tile", dims)
    d = (1,) * (t.data.ndim - len(d)) + d
    return repeat(t, d)


# ---- triangles, diagonals, trace ---------------------------------------------------------


class Tri(Function):
    """y = tril(x, k) or triu(x, k) over the last two axes;  dx = the same mask of grad"""

    __slots__ = ("k", "lower")

    def forward(self, x: Array, *, k: int, lower: bool) -> Array:
        self.k, self.lower = k, lower
        return np.tril(x, k) if lower else np.triu(x, k)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = the same triangle of t"""
        if t is None:
            return None
        return np.tril(t, self.k) if self.lower else np.triu(t, self.k)

    def backward(self, grad: Array) -> Grads:
        return (np.tril(grad, self.k) if self.lower else np.triu(grad, self.k),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The same triangle of grad, differentiable."""
        return (Tri.apply(grad, k=self.k, lower=self.lower),)

    def name(self) -> str:
        """``TrilBackward`` or ``TriuBackward``."""
        return "TrilBackward" if self.lower else "TriuBackward"


def _tri(x: Tensor, k: int, diagonal: int | None, lower: bool) -> Tensor:
    op = "tril" if lower else "triu"
    t = as_tensor(x, op)
    if t.data.ndim < 2:
        raise ValueError(f"{op}: needs at least 2 dimensions, got shape {fmt(t.data.shape)}")
    k = _int(k if diagonal is None else diagonal, op, "k")
    return Tri.apply(t, k=k, lower=lower)


def tril(x: Tensor, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """The lower triangle of the last two axes: entries with col - row <= k (PyTorch's
    ``diagonal`` is accepted as a keyword too); the rest are 0.
    """
    return _tri(x, k, diagonal, lower=True)


def triu(x: Tensor, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """The upper triangle of the last two axes: entries with col - row >= k."""
    return _tri(x, k, diagonal, lower=False)


def _diag_index(shape: Shape, offset: int, a1: int, a2: int) -> tuple[int, int, int]:
    """(length, first row, first col) of a diagonal of axes a1, a2."""
    n1, n2 = shape[a1], shape[a2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    return max(0, min(n1 - r0, n2 - c0)), r0, c0


class Diagonal(Function):
    """y = diagonal(x, offset, a1, a2) (a view, the diagonal last);  dx = zeros with grad
    on that diagonal
    """

    __slots__ = ("a1", "a2", "offset", "shape")
    view = True

    def forward(self, x: Array, *, offset: int, a1: int, a2: int) -> Array:
        self.offset, self.a1, self.a2, self.shape = offset, a1, a2, x.shape
        return _diagonal_view(x, offset, a1, a2)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = the same diagonal of t"""
        if t is None:
            return None
        return np.array(_diagonal_view(t, self.offset, self.a1, self.a2), copy=True)

    def backward(self, grad: Array) -> Grads:
        out = np.zeros(self.shape, dtype=grad.dtype)
        _diagonal_view(out, self.offset, self.a1, self.a2)[...] = grad
        return (out,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad placed on the diagonal of zeros, differentiable."""
        return (
            DiagonalAdjoint.apply(
                grad, offset=self.offset, a1=self.a1, a2=self.a2, shape=self.shape
            ),
        )


class DiagonalAdjoint(Function):
    """y = zeros of ``shape`` with x on a diagonal (Diagonal's backward, as an op);
    dx = that diagonal of grad
    """

    __slots__ = ("a1", "a2", "offset")

    def forward(self, x: Array, *, offset: int, a1: int, a2: int, shape: Shape) -> Array:
        self.offset, self.a1, self.a2 = offset, a1, a2
        out = np.zeros(shape, dtype=x.dtype)
        _diagonal_view(out, offset, a1, a2)[...] = x
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t placed the same way"""
        if t is None:
            return None
        d = np.zeros(out.shape, dtype=out.dtype)
        _diagonal_view(d, self.offset, self.a1, self.a2)[...] = t
        return d

    def backward(self, grad: Array) -> Grads:
        return (np.array(_diagonal_view(grad, self.offset, self.a1, self.a2), copy=True),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The diagonal of grad, differentiable."""
        return (Diagonal.apply(grad, offset=self.offset, a1=self.a1, a2=self.a2),)


def _diagonal_view(x: Array, offset: int, a1: int, a2: int) -> Array:
    """A writeable view of a diagonal (np.diagonal's is read-only)."""
    n, r0, c0 = _diag_index(x.shape, offset, a1, a2)
    m = np.moveaxis(x, (a1, a2), (-2, -1))[..., r0 : r0 + n, c0 : c0 + n]
    view: Array = np.einsum("...ii->...i", m)
    return view


class Trace(Function):
    """y = sum_i x[i, i];  dx = grad on the main diagonal"""

    __slots__ = ("shape",)

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        return np.asarray(np.trace(x), dtype=x.dtype if x.dtype.kind == "f" else None)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = trace(t)"""
        return None if t is None else np.asarray(np.trace(t), dtype=out.dtype)

    def backward(self, grad: Array) -> Grads:
        out = np.zeros(self.shape, dtype=grad.dtype)
        _diagonal_view(out, 0, 0, 1)[...] = grad
        return (out,)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """grad on the main diagonal, differentiable."""
        n = min(self.shape)
        line = grad.reshape(1).expand(n)
        return (DiagonalAdjoint.apply(line, offset=0, a1=0, a2=1, shape=self.shape),)


def diagonal(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The view of the diagonal ``offset`` of axes ``axis1``, ``axis2``, appended as the last
    axis (``torch.diagonal``; offset > 0 above the main diagonal).
    """
    t = as_tensor(x, "diagonal")
    nd = t.data.ndim
    if nd < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {fmt(t.data.shape)}")
    a1, a2 = _axis(nd, axis1, "diagonal"), _axis(nd, axis2, "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, both are {a1}")
    return Diagonal.apply(t, offset=_int(offset, "diagonal", "offset"), a1=a1, a2=a2)


def trace(x: Tensor) -> Tensor:
    """The sum of the main diagonal of a 2-D tensor (which need not be square)."""
    t = as_tensor(x, "trace")
    if t.data.ndim != 2:
        raise ValueError(f"trace: expected a 2-D tensor, got shape {fmt(t.data.shape)}")
    return Trace.apply(t)


# ---- einsum ------------------------------------------------------------------------------


class Einsum(Function):
    """y = einsum(terms -> out, *xs);  dx_i = einsum(out, other terms -> term_i)(grad,
    *others), expanded along letters only x_i has, placed on the diagonal of repeated
    letters and summed over axes broadcast from length 1
    """

    __slots__ = ("out", "s_xs", "sizes", "terms")

    def forward(self, *xs: Array, terms: tuple[str, ...], out: str, sizes: dict[str, int]) -> Array:
        self.terms, self.out, self.sizes = terms, out, sizes
        self.s_xs = xs
        full = tuple(_stretch(x, t, sizes) for x, t in zip(xs, terms, strict=True))
        return np.asarray(np.einsum(",".join(terms) + "->" + out, *full, optimize=len(full) > 1))

    def jvp(self, out: Array, *ts: Array | None) -> Array | None:
        """dy = sum_i einsum(... t_i in x_i's place ...)"""
        total: Array | None = None
        spec = ",".join(self.terms) + "->" + self.out
        for i, t in enumerate(ts):
            if t is None:
                continue
            args = [_stretch(x, u, self.sizes) for x, u in zip(self.s_xs, self.terms, strict=True)]
            args[i] = _stretch(t, self.terms[i], self.sizes)
            part = np.asarray(np.einsum(spec, *args, optimize=len(args) > 1))
            total = part if total is None else total + part
        return total

    def backward(self, grad: Array) -> Grads:
        terms, sizes = self.terms, self.sizes
        xs = [_stretch(x, u, sizes) for x, u in zip(self.s_xs, terms, strict=True)]
        grads: list[Array | None] = []
        for i, term in enumerate(terms):
            unique = "".join(dict.fromkeys(term))
            others = [terms[j] for j in range(len(terms)) if j != i]
            arrays = [xs[j] for j in range(len(terms)) if j != i]
            avail = set(self.out).union(*others)
            present = "".join(c for c in unique if c in avail)
            spec = ",".join([self.out, *others]) + "->" + present
            res = np.asarray(np.einsum(spec, grad, *arrays, optimize=len(arrays) > 0))
            if len(present) < len(unique):
                res = np.broadcast_to(
                    res.reshape([sizes[c] if c in avail else 1 for c in unique]),
                    [sizes[c] for c in unique],
                )
            if len(unique) < len(term):
                full = np.zeros([sizes[c] for c in term], dtype=grad.dtype)
                np.einsum(term + "->" + unique, full)[...] = res
                res = full
            grads.append(res.astype(grad.dtype, copy=False))
        return tuple(grads)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The same contractions with tensor ops, differentiable."""
        terms, sizes = self.terms, self.sizes
        saved = [self.saved_input(j, x) for j, x in enumerate(self.s_xs)]
        grads: list[Tensor | None] = []
        for i, term in enumerate(terms):
            unique = "".join(dict.fromkeys(term))
            others = tuple(terms[j] for j in range(len(terms)) if j != i)
            avail = set(self.out).union(*others)
            present = "".join(c for c in unique if c in avail)
            args = [saved[j] for j in range(len(terms)) if j != i]
            res = Einsum.apply(grad, *args, terms=(self.out, *others), out=present, sizes=sizes)
            if len(present) < len(unique):
                res = res.reshape(*[sizes[c] if c in avail else 1 for c in unique])
                res = res.expand(*[sizes[c] for c in unique])
            if len(unique) < len(term):
                res = EinsumEmbed.apply(res, term=term, unique=unique, sizes=sizes)
            grads.append(res)
        return tuple(grads)


class EinsumEmbed(Function):
    """y = zeros over a term with repeated letters, x on its diagonal (einsum's backward for
    such a term, as an op);  dx = einsum(term -> unique letters)(grad)
    """

    __slots__ = ("sizes", "term", "unique")

    def forward(self, x: Array, *, term: str, unique: str, sizes: dict[str, int]) -> Array:
        self.term, self.unique, self.sizes = term, unique, sizes
        out = np.zeros([sizes[c] for c in term], dtype=x.dtype)
        np.einsum(term + "->" + unique, out)[...] = x
        return out

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """dy = t placed the same way"""
        if t is None:
            return None
        d = np.zeros(out.shape, dtype=out.dtype)
        np.einsum(self.term + "->" + self.unique, d)[...] = t
        return d

    def backward(self, grad: Array) -> Grads:
        return (np.array(np.einsum(self.term + "->" + self.unique, grad), copy=True),)

    def backward_graph(self, grad: Tensor) -> TGrads:
        """The diagonal of grad, differentiable."""
        return (Einsum.apply(grad, terms=(self.term,), out=self.unique, sizes=self.sizes),)


def _stretch(x: Array, term: str, sizes: dict[str, int]) -> Array:
    """x broadcast from length 1 to the letter sizes (a view; x itself if nothing stretches)."""
    target = tuple(sizes[c] for c in term)
    return x if x.shape == target else np.broadcast_to(x, target)


def _parse_einsum(
    subscripts: str, shapes: list[Shape]
) -> tuple[tuple[str, ...], str, dict[str, int]]:
    """Explicit letters for every axis ('...' spelled out), the output, and letter sizes."""
    s = subscripts.replace(" ", "")
    lhs, arrow, out = s.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: {subscripts!r} has {len(terms)} operand terms but {len(shapes)} "
            "operands were given"
        )
    allowed = set(string.ascii_letters)
    for t in [*terms, out]:
        rest = t.replace("...", "", 1)
        if any(c not in allowed for c in rest):
            raise ValueError(
                f"einsum: invalid subscripts {subscripts!r} (letters, ',', '->' and one "
                "'...' per term only)"
            )
    used = set("".join(terms))
    spare = [c for c in string.ascii_letters if c not in used]
    ranks = []
    for t, shape in zip(terms, shapes, strict=True):
        letters = len(t.replace("...", ""))
        r = len(shape) - letters
        if ("..." in t and r < 0) or ("..." not in t and r != 0):
            raise ValueError(f"einsum: term {t!r} does not fit an operand of shape {fmt(shape)}")
        ranks.append(r)
    rank = max(ranks, default=0)
    ell = "".join(spare[:rank])
    full = tuple(t.replace("...", ell[rank - r :]) for t, r in zip(terms, ranks, strict=True))
    if arrow:
        if "..." in out:
            out = out.replace("...", ell)
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a letter")
        missing = [c for c in out if c not in "".join(full)]
        if missing:
            raise ValueError(
                f"einsum: output letter {missing[0]!r} does not appear in any operand term"
            )
    else:
        counts: dict[str, int] = {}
        for c in "".join(terms).replace(".", ""):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1))
    sizes: dict[str, int] = {}
    for i, (t, shape) in enumerate(zip(full, shapes, strict=True)):
        seen: dict[str, int] = {}
        for c, n in zip(t, shape, strict=True):
            if c in seen and seen[c] != n:
                raise ValueError(
                    f"einsum: letter {c!r} is repeated in operand {i} (shape {fmt(shape)}) "
                    "with different lengths"
                )
            seen[c] = n
            m = sizes.get(c)
            if m is None or m == 1:
                sizes[c] = n
            elif n not in (1, m):
                raise ValueError(
                    f"einsum: letter {c!r} has length {m} in one operand but {n} in operand "
                    f"{i} (shapes {', '.join(fmt(sh) for sh in shapes)})"
                )
    return full, out, sizes


def einsum(subscripts: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """Einstein summation as ``torch.einsum``/``np.einsum``: repeated letters take diagonals,
    letters missing from the output are summed, ``...`` broadcasts, and lengths of 1
    broadcast; implicit mode (no ``->``) sorts the letters that appear once.
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a str, got {type(subscripts).__name__}")
    items: Sequence[Any] = operands
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        items = operands[0]
    if not items:
        raise ValueError("einsum: at least one operand is needed")
    ts = [as_tensor(o, "einsum") for o in items]
    dt = result_dtype(*[t.data.dtype for t in ts])
    ts = [_cast(t, dt, "einsum") for t in ts]
    terms, out, sizes = _parse_einsum(subscripts, [t.data.shape for t in ts])
    return _einsum_op(len(ts)).apply(*ts, terms=terms, out=out, sizes=sizes)


_EINSUM_OPS: dict[int, type[Einsum]] = {}


def _einsum_op(n: int) -> type[Einsum]:
    """Einsum for ``n`` operands, with all of them in ``saves`` (so that an in-place change
    of an operand before backward is caught; ``saves`` is per class).
    """
    op = _EINSUM_OPS.get(n)
    if op is None:
        attrs = {"__slots__": (), "saves": tuple(range(n)), "__doc__": Einsum.__doc__}
        op = _EINSUM_OPS[n] = type("Einsum", (Einsum,), attrs)
    return op
