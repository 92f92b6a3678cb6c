"""Factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``rand``, ``randn``,
``zeros_like``, ``ones_like``, ``eye``. Random ones draw from gradwise.core's default
generator (seeded by ``manual_seed``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd._args import shape_args as _shape_args
from gradwise.autograd.tensor import Tensor
from gradwise.core.dtypes import DEFAULT_FLOAT, DEFAULT_INT, as_dtype
from gradwise.core.random import Generator, default_generator


def _shape(op: str, shape: tuple[Any, ...]) -> tuple[int, ...]:
    """``f(2, 3)`` or ``f((2, 3))`` as a tuple of non-negative ints."""
    dims = _shape_args(op, shape)
    for d in dims:
        if d < 0:
            raise ValueError(f"{op}: negative dimension {d} in shape {dims!r}")
    return dims


def _make(data: np.ndarray[Any, Any], requires_grad: bool) -> Tensor:
    t = Tensor._wrap(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (same rules as ``Tensor(...)``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 by default)."""
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _make(np.zeros(_shape("zeros", shape), dtype=dt), requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 by default)."""
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _make(np.ones(_shape("ones", shape), dtype=dt), requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype from the value: float32, int64 or bool)."""
    dt: np.dtype[Any]
    if not isinstance(fill_value, int | float | np.number | np.bool_):
        raise TypeError(
            f"full: fill_value must be a number or a bool, got {type(fill_value).__name__}"
        )
    if dtype is None:
        if isinstance(fill_value, bool):
            dt = np.dtype(np.bool_)
        elif isinstance(fill_value, int | np.integer):
            dt = DEFAULT_INT
        else:
            dt = DEFAULT_FLOAT
    else:
        dt = as_dtype(dtype)
    dims = _shape("full", tuple(shape) if isinstance(shape, tuple | list) else (shape,))
    return _make(np.full(dims, fill_value, dtype=dt), requires_grad)


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from start (inclusive) to end (exclusive); int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if dtype is None:
        ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dt = DEFAULT_INT if ints else DEFAULT_FLOAT
    else:
        dt = as_dtype(dtype)
    return _make(np.arange(start, end, step).astype(dt), requires_grad)


def rand(
    *shape: Any, dtype: Any = None, requires_grad: bool = False, generator: Generator | None = None
) -> Tensor:
    """Uniform samples from [0, 1)."""
    gen = default_generator if generator is None else generator
    return _make(gen.uniform(_shape("rand", shape), dtype=dtype), requires_grad)


def randn(
    *shape: Any, dtype: Any = None, requires_grad: bool = False, generator: Generator | None = None
) -> Tensor:
    """Standard normal samples."""
    gen = default_generator if generator is None else generator
    return _make(gen.normal(_shape("randn", shape), dtype=dtype), requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape (and dtype, unless given)."""
    dt = t.data.dtype if dtype is None else as_dtype(dtype)
    return _make(np.zeros(t.data.shape, dtype=dt), requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape (and dtype, unless given)."""
    dt = t.data.dtype if dtype is None else as_dtype(dtype)
    return _make(np.ones(t.data.shape, dtype=dt), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity (m = n by default)."""
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    rows, cols = _shape("eye", (n, n if m is None else m))
    return _make(np.eye(rows, cols, dtype=dt), requires_grad)
