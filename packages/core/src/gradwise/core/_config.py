"""Settings read once from the environment: JIT cache, fastmath flags, parallel thresholds.

``GRADWISE_NUMBA_CACHE=0`` turns the on-disk kernel cache off.
``GRADWISE_PARALLEL_MIN_SIZE=N`` overrides every kernel's measured parallel threshold.
``GRADWISE_NUMBA_BLAS_PROBE=1`` lets Numba import SciPy as it does on its own: at its import
(below) and when it loads its array functions (``_jit.numba_array_functions``).

This module is the first of gradwise's to import Numba (``gradwise.core`` imports it first).
"""

from __future__ import annotations

import os
import sys


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
BLAS_PROBE: bool = _env_flag("GRADWISE_NUMBA_BLAS_PROBE", False)


def import_hiding(module: str, hidden: str) -> None:
    """Import ``module`` while ``import hidden`` raises ImportError; afterwards ``hidden``
    imports as usual. Holds the interpreter's import lock throughout, so no other thread
    imports (and finds ``hidden`` missing) meanwhile.
    """
    import _imp
    import importlib

    _imp.acquire_lock()
    try:
        sys.modules[hidden] = None  # type: ignore[assignment]  # import -> ImportError
        try:
            importlib.import_module(module)
        finally:
            if sys.modules.get(hidden, 0) is None:
                del sys.modules[hidden]
    finally:
        _imp.release_lock()


# Numba's __init__ imports SciPy only to refuse a SciPy older than 1.0 (which no Python that
# Numba supports can run): 20-50 ms of a 0.9-1.1 s warm start here, for a package gradwise
# does not use; its check passes when the import fails. Nothing is hidden when Numba or
# SciPy is already imported, or with GRADWISE_NUMBA_BLAS_PROBE=1.
if not (BLAS_PROBE or "numba" in sys.modules or "scipy" in sys.modules):
    import_hiding("numba", "scipy")

import numba  # noqa: E402

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

# Numba's threading layer. Its default choice here, OpenMP, makes the worker threads spin
# after a parallel region, as OpenBLAS's threads do after a GEMM; on 2 cores the two pools
# then wait for each other, and a training step that alternates GEMMs and parallel kernels
# ran 5-50x slower (small MLP with Adam: 10.7 ms per step against 0.34 ms with workqueue;
# an 8K-element Adam update right after a matmul: 7.4 ms against 43 us). The workqueue
# layer's threads sleep instead. A user's NUMBA_THREADING_LAYER always wins; concurrent
# launches from several Python threads are serialised by gradwise's launch lock.
USER_THREADING_LAYER: bool = bool(os.environ.get("NUMBA_THREADING_LAYER"))
if not USER_THREADING_LAYER:
    numba.config.THREADING_LAYER = "workqueue"

# No kernel goes parallel below this many elements. A workqueue launch cost ~20-40 us on
# the host first measured (Adam won from ~32K elements), but 100-300 us on the same kind of
# shared 2-core host later (benchmarks/thresholds.py: the parallel variant lost below 1-2M
# elements for nearly every kernel, relu at 262K 4.5x slower). Between the two, 1M: the
# medium MLP step (3 launches of 131K-401K elements) went from 7.09 to 5.31 ms (SGD) and
# 6.75 to 6.26 ms (Adam), medians in one run; the large step did not change.
PARALLEL_FLOOR: int = 1 << 20

JIT_DISABLED: bool = bool(numba.config.DISABLE_JIT)
