"""Small helpers for the ops' forward-mode (``jvp``) rules, where an absent tangent is zero."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.core.dtypes import Array, Shape


def lin(*terms: tuple[Array | None, Any]) -> Array | None:
    """sum_i t_i * c_i over the tangents t_i that are not None (c_i None: t_i itself).

    None when every tangent is None (the output then has no tangent).
    """
    total: Array | None = None
    for t, c in terms:
        if t is None:
            continue
        part = t if c is None else np.multiply(t, c)
        total = part if total is None else np.add(total, part)
    return total


def or_zeros(t: Array | None, shape: Shape, dtype: np.dtype[Any]) -> Array:
    """``t``, or zeros of ``shape`` and ``dtype`` if it is None."""
    return np.zeros(shape, dtype=dtype) if t is None else t


def reduce_tangent(el: Array, reduction: str, count: int, dtype: np.dtype[Any]) -> Array:
    """The tangent of a loss reduced as ``reduction`` from its element-wise tangent ``el``.

    ``'mean'`` divides the sum by ``count`` (NaN when it is 0), as the losses' forward does.
    """
    if reduction == "none":
        return el.astype(dtype, copy=False)
    total = np.sum(el, dtype=np.float64)
    if reduction == "mean":
        total = total / count if count else np.float64(np.nan)
    return np.asarray(total, dtype=dtype)
