"""Argument parsing shared by factories and shape ops."""

from __future__ import annotations

from typing import Any

import numpy as np


def shape_args(op: str, shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))``; every entry an int."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise TypeError(f"{op}: shape entries must be ints, got {shape!r}")
    return tuple(int(d) for d in shape)
