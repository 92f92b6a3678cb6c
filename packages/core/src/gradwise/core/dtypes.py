"""dtype policy: float32 by default, float64 for checking, int64 and bool for indices and masks.

Promotion between arrays follows NumPy. Python scalars, NumPy scalars and 0-d arrays are
*weak*: they never widen an array's dtype (``float32_array * 2.0`` stays float32), as in
PyTorch and JAX.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Array: TypeAlias = npt.NDArray[Any]
"""A NumPy array of any dtype (gradwise's storage)."""
Shape: TypeAlias = tuple[int, ...]
"""An array shape."""
Axis: TypeAlias = int | tuple[int, ...] | None
"""One axis, several axes, or ``None`` for all of them."""
DTypeLike: TypeAlias = "np.dtype[Any] | type | str"
"""What ``dtype=`` accepts: a NumPy dtype, a scalar type, or a name such as ``"float32"``."""

float32: np.dtype[np.float32] = np.dtype(np.float32)
float64: np.dtype[np.float64] = np.dtype(np.float64)
int64: np.dtype[np.int64] = np.dtype(np.int64)
bool_: np.dtype[np.bool_] = np.dtype(np.bool_)

DEFAULT_FLOAT = float32
DEFAULT_INT = int64
FLOAT_DTYPES: tuple[np.dtype[Any], ...] = (float32, float64)


def as_dtype(dtype: Any) -> np.dtype[Any]:
    """Normalise a dtype spec (NumPy dtype, scalar type, name or gradwise alias) to a dtype.

    Raises:
        TypeError: for specs NumPy does not know or dtypes gradwise does not store
            (complex, float16, strings, objects).
    """
    try:
        result: np.dtype[Any] = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: {dtype!r} is not a dtype") from exc
    check_supported(result, "dtype")
    return result


def check_supported(dtype: np.dtype[Any], op: str) -> None:
    """Raise ``TypeError`` unless ``dtype`` is bool, an integer or float32/float64."""
    if dtype.kind in "biu" or dtype in FLOAT_DTYPES:
        return
    raise TypeError(f"{op}: dtype {dtype} is not supported; use float32, float64, int64 or bool")


def is_floating(dtype: np.dtype[Any]) -> bool:
    """True for float32 and float64."""
    return dtype.kind == "f"


def is_weak(value: object) -> bool:
    """Python scalars, NumPy scalars and 0-d arrays: operands that never widen a dtype."""
    if isinstance(value, bool | int | float | np.generic):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0


def _scalar_kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "b"
    if isinstance(value, int | np.integer):
        return "i"
    if isinstance(value, float | np.floating):
        return "f"
    if isinstance(value, np.ndarray):
        return str(value.dtype.kind)
    raise TypeError(f"unsupported operand type {type(value).__name__}")


def result_dtype(*operands: Array | np.dtype[Any] | bool | int | float) -> np.dtype[Any]:
    """The dtype of an element-wise result.

    Arrays (ndim >= 1) and dtypes promote as NumPy does; weak operands only raise the
    *kind*: an integer array meets a Python float and becomes the default float32, a bool
    array meets a Python int and becomes int64. Weak operands alone give gradwise's
    defaults (float32, int64, bool).
    """
    strong: list[np.dtype[Any]] = []
    weak_kinds: list[str] = []
    for op in operands:
        if isinstance(op, np.dtype):
            strong.append(op)
        elif isinstance(op, np.ndarray) and op.ndim > 0:
            strong.append(op.dtype)
        else:
            weak_kinds.append(_scalar_kind(op))
    order = {"b": 0, "u": 1, "i": 1, "f": 2}
    base = np.result_type(*strong) if strong else bool_
    top_weak = max(weak_kinds, key=lambda k: order[k], default="b")
    if order[top_weak] > order.get(base.kind, 2):
        return DEFAULT_FLOAT if top_weak == "f" else DEFAULT_INT
    return base


def contiguous(x: Any, dtype: Any = None) -> Array:
    """``x`` as a C-contiguous array, without a copy when it already is one.

    Unlike ``np.ascontiguousarray``, a 0-d array stays 0-d.
    """
    arr = np.asarray(x, dtype=dtype)
    if arr.flags.c_contiguous:
        return arr
    return np.array(arr, order="C", copy=True)
