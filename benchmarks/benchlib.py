"""Shared timing helpers for the benchmarks: interleaved contenders, pauses, medians.

The machine is shared and noisy, and BLAS/OpenMP worker threads spin for ~0.1 s after a
call. So contenders are interleaved (their order rotates each round), every timed block
is preceded by a pause and one untimed call (threads that slept through the pause take
~1 ms to wake, which a training loop never pays), and medians and minimums are reported,
never a single run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    """Per-call seconds of one contender over several rounds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)


def calls_per_block(fn: Callable[[], object], target_seconds: float) -> int:
    """How many calls of ``fn`` fill about ``target_seconds`` (at least 1), from a warm call."""
    fn()
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    return max(1, min(100_000, int(target_seconds / max(one, 1e-7))))


def interleaved(
    contenders: Sequence[Callable[[], object]],
    rounds: int = 5,
    pause: float = 0.25,
    block_seconds: float = 0.02,
    setups: Sequence[Callable[[], object]] | None = None,
) -> list[Timing]:
    """Time each contender in ``rounds`` rounds, rotating their order, pausing between blocks.

    ``setups[i]``, if given, runs (untimed) before each block of contender ``i``.
    """
    for i, fn in enumerate(contenders):  # warm-up: first calls compile kernels or fault pages
        if setups is not None:
            setups[i]()
        fn()
    counts = []
    for i, fn in enumerate(contenders):
        if setups is not None:
            setups[i]()
        counts.append(calls_per_block(fn, block_seconds))
    samples: list[list[float]] = [[] for _ in contenders]
    n = len(contenders)
    for r in range(rounds):
        for j in range(n):
            i = (j + r) % n
            fn, k = contenders[i], counts[i]
            if setups is not None:
                setups[i]()
            if pause:
                time.sleep(pause)
            fn()  # untimed: wakes worker threads that slept through the pause
            start = time.perf_counter()
            for _ in range(k):
                fn()
            samples[i].append((time.perf_counter() - start) / k)
    return [Timing(s) for s in samples]


def fmt_time(seconds: float) -> str:
    """Seconds as a short human string in us or ms."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}us"
    return f"{seconds * 1e3:.2f}ms"


def try_import_torch() -> Any:
    """PyTorch if importable (optional for users), else None.

    Typed ``Any``: torch is optional and untyped here, and callers use its attributes.
    """
    try:
        import torch
    except ImportError:
        return None
    return torch
