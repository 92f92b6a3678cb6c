"""Settings read once from the environment: JIT cache, fastmath flags, parallel thresholds.

``GRADWISE_NUMBA_CACHE=0`` turns the on-disk kernel cache off.
``GRADWISE_PARALLEL_MIN_SIZE=N`` overrides every kernel's measured parallel threshold.
"""

from __future__ import annotations

import os

import numba


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        n = int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from exc
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


CACHE: bool = _env_flag("GRADWISE_NUMBA_CACHE", True)

# LLVM fast-math flags that keep IEEE NaN and Inf semantics: no `nnan`, no `ninf`, and no
# `afn` (approximate library functions). `reassoc` lets LLVM vectorise float reductions; it
# changes the order of additions inside one compiled loop, but every call of that loop
# runs the same code, so results stay deterministic.
FASTMATH: frozenset[str] = frozenset({"nsz", "arcp", "contract", "reassoc"})

# For kernels whose arithmetic must keep its order (the range reduction in vexp), and
# element-wise kernels whose serial and parallel variants must agree bit for bit: no
# `contract` either, since LLVM fuses multiply-adds differently in the two loop shapes.
FASTMATH_EXACT: frozenset[str] = frozenset({"nsz", "arcp"})

PARALLEL_MIN_SIZE_OVERRIDE: int | None = _env_int("GRADWISE_PARALLEL_MIN_SIZE")

JIT_DISABLED: bool = bool(numba.config.DISABLE_JIT)
