"""Shared checks and the reduce/expand pair that every fused loss node uses."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.core.dtypes import Array, Shape
from gradwise.core.ops import fmt_shape

ArrayLike: TypeAlias = "Tensor | Array"
"""What losses accept for targets and class weights: a Tensor or a NumPy array."""

_REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: object, op: str, extra: tuple[str, ...] = ()) -> str:
    """``reduction`` itself if valid, else a ValueError naming ``op`` and the choices."""
    allowed = _REDUCTIONS + extra
    if not isinstance(reduction, str) or reduction not in allowed:
        choices = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction ({choices})")
    return reduction


def float_input(x: object, op: str, name: str = "input") -> Tensor:
    """``x`` as a float32/float64 Tensor; TypeError for anything else (integer inputs too)."""
    if not isinstance(x, Tensor):
        if isinstance(x, np.ndarray):
            x = Tensor._wrap(x)
        else:
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    dt = x.data.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {dt}")
    return x


def as_target(t: object, op: str) -> Tensor:
    """A target as a Tensor (a NumPy array is wrapped without copying); TypeError otherwise."""
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray):
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{op}: target has unsupported dtype {t.dtype}")
        return Tensor._wrap(t)
    raise TypeError(f"{op}: target must be a Tensor or a NumPy array, got {type(t).__name__}")


def float_target(t: object, x: Tensor, op: str) -> Tensor:
    """A real-valued target of exactly x's shape (ValueError otherwise), as a Tensor.

    Integer targets are accepted as PyTorch accepts them; the arithmetic runs in the
    input's dtype (a float32 input is never upcast by its target).
    """
    tt = as_target(t, op)
    if tt.data.dtype.kind == "b":
        raise TypeError(f"{op}: target must be a real-valued tensor, got dtype bool")
    if tt.data.shape != x.data.shape:
        raise ValueError(
            f"{op}: target shape {fmt_shape(tt.data.shape)} does not match input shape "
            f"{fmt_shape(x.data.shape)} (losses never broadcast input against target)"
        )
    return tt


def cast(a: Array, dtype: np.dtype[Any]) -> Array:
    """``a`` in ``dtype`` (no copy when it already is)."""
    return a if a.dtype == dtype else a.astype(dtype)


def broadcast_weight(w: object, shape: Shape, dtype: np.dtype[Any], op: str, name: str) -> Array:
    """An element weight (``weight``, ``pos_weight``) broadcast to the input's ``shape``.

    The weight may broadcast up to the input's shape, as in PyTorch; it may not make the
    result larger than the input (ValueError naming both shapes).
    """
    if isinstance(w, Tensor):
        arr = w.data
    elif isinstance(w, np.ndarray):
        arr = w
    else:
        raise TypeError(f"{op}: {name} must be a Tensor or a NumPy array, got {type(w).__name__}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} has unsupported dtype {arr.dtype}")
    try:
        out_shape = np.broadcast_shapes(arr.shape, shape)
    except ValueError:
        out_shape = None
    if out_shape != tuple(shape):
        raise ValueError(
            f"{op}: {name} of shape {fmt_shape(arr.shape)} does not broadcast to the input "
            f"shape {fmt_shape(shape)}"
        )
    return np.broadcast_to(cast(arr, dtype), shape)


def class_weight(w: object, c: int, op: str) -> Array | None:
    """Per-class weights as a float64 (C,) array, or None; ValueError for a wrong shape."""
    if w is None:
        return None
    if isinstance(w, Tensor):
        arr = w.data
    elif isinstance(w, np.ndarray):
        arr = w
    else:
        raise TypeError(f"{op}: weight must be a Tensor or a NumPy array, got {type(w).__name__}")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: weight must be real-valued, got dtype {arr.dtype}")
    if arr.shape != (c,):
        raise ValueError(
            f"{op}: weight has shape {fmt_shape(arr.shape)}, expected ({c},) for {c} classes"
        )
    return np.ascontiguousarray(arr, dtype=np.float64)


def reduce(losses: Array, reduction: str, dtype: np.dtype[Any]) -> Array:
    """Element-wise ``losses`` combined by ``reduction``, summed in float64, cast to ``dtype``.

    The mean of no elements is NaN (as PyTorch), without a warning.
    """
    if reduction == "none":
        return cast(losses, dtype)
    total = np.sum(losses, dtype=np.float64)
    if reduction == "mean":
        n = losses.size
        total = total / n if n else np.float64(np.nan)
    return np.asarray(total, dtype=dtype)


def scale(grad: Array, reduction: str, count: int) -> Array | float:
    """The upstream gradient of ``reduce`` per element: ``grad`` itself for ``'none'``, else
    one number (``grad`` for ``'sum'``, ``grad / count`` for ``'mean'``; NaN if count is 0).
    """
    if reduction == "none":
        return grad
    g = float(grad)
    if reduction == "mean":
        g = g / count if count else float("nan")
    return g
