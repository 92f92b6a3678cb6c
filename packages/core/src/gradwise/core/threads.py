"""Thread count for parallel kernels: process-wide, like ``torch.set_num_threads``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba

from gradwise.core._jit import THREAD_STATE


def max_threads() -> int:
    """The most threads kernels can use (``NUMBA_NUM_THREADS``, by default the core count)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    """The number of threads parallel kernels use."""
    return THREAD_STATE.count


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in parallel kernels, for every Python thread of the process.

    Raises:
        TypeError: ``n`` is not an int.
        ValueError: ``n`` is below 1 or above :func:`max_threads`.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    top = max_threads()
    if not 1 <= n <= top:
        raise ValueError(
            f"set_num_threads: n must be between 1 and {top} (NUMBA_NUM_THREADS), got {n}"
        )
    THREAD_STATE.count = n


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Use ``n`` threads inside the block, then restore the previous count."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        THREAD_STATE.count = previous
