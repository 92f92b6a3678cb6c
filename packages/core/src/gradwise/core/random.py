"""Randomness: one default :class:`Generator` behind every random factory and initialiser.

gradwise never touches NumPy's global RNG. ``manual_seed`` reseeds the default generator
for the whole process; the same seed, build, machine and thread count give bit-identical
results.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from gradwise.core.dtypes import DEFAULT_FLOAT, Array, Shape, as_dtype

DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed


class Generator:
    """A seeded stream of random numbers (PCG64) with savable state."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self._lock = threading.Lock()
        self._seed = 0
        self._rng = np.random.Generator(np.random.PCG64(0))
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed`` (a non-negative integer); returns ``self``."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
        if seed < 0:
            raise ValueError(f"manual_seed: seed must be >= 0, got {seed}")
        with self._lock:
            self._seed = int(seed)
            self._rng = np.random.Generator(np.random.PCG64(int(seed)))
        return self

    def initial_seed(self) -> int:
        """The seed the stream last started from."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """A copy of the full state, for checkpoints."""
        with self._lock:
            return {"seed": self._seed, "bit_generator": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`get_state`."""
        try:
            seed = int(state["seed"])
            bit_state = state["bit_generator"]
        except (KeyError, TypeError) as exc:
            raise ValueError("Generator.set_state: not a gradwise generator state") from exc
        with self._lock:
            rng = np.random.Generator(np.random.PCG64(0))
            rng.bit_generator.state = bit_state
            self._seed, self._rng = seed, rng

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying NumPy generator (for draws gradwise has no helper for)."""
        return self._rng

    def uniform(
        self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype: Any = None
    ) -> Array:
        """Samples from U[low, high) of ``dtype`` (float32 by default)."""
        dt = _float_dtype(dtype, "uniform")
        with self._lock:
            out = self._rng.random(shape, dtype=dt)
        if low != 0.0 or high != 1.0:
            out *= dt.type(high - low)
            out += dt.type(low)
        return out

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype: Any = None) -> Array:
        """Samples from N(mean, std^2) of ``dtype`` (float32 by default)."""
        dt = _float_dtype(dtype, "normal")
        with self._lock:
            out = self._rng.standard_normal(shape, dtype=dt)
        if std != 1.0:
            out *= dt.type(std)
        if mean != 0.0:
            out += dt.type(mean)
        return out

    def integers(self, low: int, high: int, shape: Shape) -> Array:
        """int64 samples from ``[low, high)``."""
        with self._lock:
            return self._rng.integers(low, high, shape, dtype=np.int64)

    def permutation(self, n: int) -> Array:
        """A random permutation of ``range(n)`` as int64."""
        with self._lock:
            return self._rng.permutation(n).astype(np.int64, copy=False)

    def bernoulli(self, shape: Shape, p: float) -> Array:
        """Boolean mask, each entry True with probability ``p``."""
        with self._lock:
            return self._rng.random(shape, dtype=np.float32) < np.float32(p)


def _float_dtype(dtype: Any, op: str) -> np.dtype[Any]:
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{op}: random samples need a float dtype, got {dt}")
    return dt


default_generator = Generator()
"""The process-wide generator used whenever no generator is passed."""


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (process-wide); returns it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed of the default generator."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """State of the default generator, for checkpoints."""
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator's state."""
    default_generator.set_state(state)
