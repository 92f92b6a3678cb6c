"""Turning user data into gradwise storage: C-contiguous NumPy arrays of supported dtypes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.core.dtypes import (
    DEFAULT_FLOAT,
    DEFAULT_INT,
    Array,
    as_dtype,
    check_supported,
    contiguous,
)


def _infer_python_dtype(data: object) -> np.dtype[Any]:
    """float32 if any leaf is a float, int64 if any is an int, else bool."""
    kinds: set[str] = set()
    stack: list[object] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, bool | np.bool_):
            kinds.add("b")
        elif isinstance(item, int | np.integer):
            kinds.add("i")
        elif isinstance(item, float | np.floating):
            kinds.add("f")
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, np.ndarray):
            kinds.add(item.dtype.kind if item.dtype.kind in "bif" else "f")
        else:
            raise TypeError(
                f"tensor data: elements must be numbers or booleans, got {type(item).__name__}"
            )
    if "f" in kinds:
        return DEFAULT_FLOAT
    if "i" in kinds or "u" in kinds:
        return DEFAULT_INT
    return np.dtype(np.bool_) if kinds else DEFAULT_FLOAT


def as_array(data: object, dtype: Any = None, *, copy: bool = False) -> Array:
    """Convert ``data`` to a C-contiguous array following gradwise's dtype rules.

    A NumPy array keeps its dtype (unless ``dtype`` is given); Python floats give float32,
    Python ints give int64, booleans give bool. Strings, ``None``, objects and ragged
    nested sequences raise ``TypeError`` or ``ValueError`` naming the problem.
    """
    target = None if dtype is None else as_dtype(dtype)
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf":
            raise TypeError(
                f"tensor data: arrays of dtype {data.dtype} are not supported "
                "(use float32, float64, int64 or bool)"
            )
        check_supported(data.dtype, "tensor data")
        arr = data if target is None else data.astype(target, copy=False)
        if copy and arr is data:
            return np.array(arr, order="C", copy=True)
        return contiguous(arr)
    if data is None or isinstance(data, str | bytes | dict | set):
        raise TypeError(f"tensor data: cannot make a tensor from {type(data).__name__}")
    if isinstance(data, np.generic):
        return as_array(np.asarray(data), dtype)
    if not isinstance(data, bool | int | float | Sequence):
        raise TypeError(f"tensor data: cannot make a tensor from {type(data).__name__}")
    inferred = target if target is not None else _infer_python_dtype(data)
    try:
        arr = np.array(data, dtype=inferred)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"tensor data: {exc} (nested sequences must be rectangular)") from exc
    return contiguous(arr)
