"""The one place that calls Numba.

Each kernel is a plain Python loop written once with ``prange``. :class:`Kernel` compiles it
lazily in two variants, serial and parallel, and :meth:`Kernel.pick` chooses one by the
number of elements. Parallel launches are serialised by a process-wide lock, so models can
be trained from several Python threads at once whatever Numba threading layer is active
(the default ``workqueue`` layer aborts the process on concurrent launches).
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import numba
import numpy as np

from gradwise.core import _config

F = TypeVar("F", bound=Callable[..., Any])

_PARALLEL_LOCK = threading.Lock()


class _ThreadState:
    """Process-wide thread count, applied to whichever Python thread launches a kernel."""

    count: int = int(numba.config.NUMBA_NUM_THREADS)


THREAD_STATE = _ThreadState()

_cache_usable: bool | None = None


def _renamed(fn: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    """A copy of ``fn`` under another qualified name.

    Numba keys its disk cache by the function's qualified name and signature, not by the
    ``parallel`` flag: without a distinct name, the parallel variant would load the serial
    variant's cached machine code.
    """
    copy = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__
    )
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


_array_functions_loaded = False


def numba_array_functions() -> None:
    """Import Numba's NumPy array functions (``numba.np.arraymath``) without its BLAS probe.

    Numba imports that module when it loads or compiles its first function, and the
    module probes for a BLAS by importing ``scipy.linalg.cython_blas``: all of
    ``scipy.linalg``, about 0.2 s of a 0.8 s warm start here (gradwise does not use
    SciPy). The probe's only use is ``np.convolve`` / ``np.correlate`` inside jitted code,
    which then run their inner products as plain loops; ``np.dot`` and ``np.linalg`` in
    jitted code import SciPy when they compile, as before. Nothing is skipped when
    ``scipy.linalg`` is already imported (the probe is free) or with
    ``GRADWISE_NUMBA_BLAS_PROBE=1``.
    """
    global _array_functions_loaded
    if _array_functions_loaded:
        return
    _array_functions_loaded = True
    if _config.BLAS_PROBE or "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    _config.import_hiding("numba.np.arraymath", "scipy.linalg")


def _njit(fn: Callable[..., Any], *, parallel: bool, exact: bool = False) -> Any:
    """Compile-on-first-call dispatcher; falls back to no disk cache where none is writable."""
    global _cache_usable
    numba_array_functions()
    if parallel:
        fn = _renamed(fn, "__parallel")
    if _config.JIT_DISABLED:
        return _python_mode(fn)
    # error_model="numpy": x / 0.0 gives inf or NaN as in NumPy instead of raising.
    options: dict[str, Any] = {
        "fastmath": set(_config.FASTMATH_EXACT if exact else _config.FASTMATH),
        "nogil": True,
        "error_model": "numpy",
    }
    if parallel:
        options["parallel"] = True
    if _config.CACHE and _cache_usable is not False:
        try:
            dispatcher = numba.njit(cache=True, **options)(fn)
            _cache_usable = True
            return dispatcher
        except RuntimeError:
            # Numba found no writable cache location (read-only install, no home folder).
            _cache_usable = False
    return numba.njit(**options)(fn)


def _python_mode(fn: Callable[..., Any]) -> Callable[..., Any]:
    """NUMBA_DISABLE_JIT=1: run the loop as Python, with NumPy's silent IEEE semantics."""

    def run(*args: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args)

    return run


def cache_enabled() -> bool:
    """Whether compiled kernels are stored on and loaded from disk."""
    return _config.CACHE and not _config.JIT_DISABLED and _cache_usable is not False


@dataclass(frozen=True)
class CompileRecord:
    """One specialisation's first-call time and whether it was compiled or loaded from cache."""

    kernel: str
    variant: str
    signature: str
    seconds: float
    source: str  # "compiled", "cache", "warm" (already loaded) or "python" (no JIT)


class Kernel(Generic[F]):
    """A loop written once; compiled lazily as a serial and a parallel variant.

    ``pick(size)`` is on every op's hot path, so it is two attribute reads: ``min_size``
    and one of ``serial_fn`` / ``parallel_fn``, which start as stubs that compile the
    variant on first call and put the compiled function in their place.
    """

    def __init__(self, fn: F, parallel_min: int, exact: bool = False) -> None:
        self.name = fn.__name__
        self.py_func = fn
        self.exact = exact
        self.parallel_min = parallel_min
        override = _config.PARALLEL_MIN_SIZE_OVERRIDE
        self.min_size = max(parallel_min, _config.PARALLEL_FLOOR) if override is None else override
        self._serial: Any = None
        self._parallel: Any = None
        self._launch: Any = None
        self.serial_fn: Callable[..., Any] = self._compile_serial
        self.parallel_fn: Callable[..., Any] = self._compile_parallel

    def _compile_serial(self, *args: Any) -> Any:
        self.serial_fn = self.serial
        return self.serial_fn(*args)

    def _compile_parallel(self, *args: Any) -> Any:
        self.parallel_fn = self.parallel
        return self.parallel_fn(*args)

    @property
    def serial(self) -> F:
        """The single-threaded variant (compiled on first use)."""
        if self._serial is None:
            self._serial = _njit(self.py_func, parallel=False, exact=self.exact)
        return cast(F, self._serial)

    @property
    def parallel(self) -> F:
        """The multi-threaded variant; calls go through the launch lock."""
        if self._launch is None:
            compiled = self._parallel = _njit(self.py_func, parallel=True, exact=self.exact)

            def launch(*args: Any) -> Any:
                with _PARALLEL_LOCK:
                    if numba.get_num_threads() != THREAD_STATE.count:
                        numba.set_num_threads(THREAD_STATE.count)
                    return compiled(*args)

            self._launch = launch
        return cast(F, self._launch)

    def threshold(self) -> int:
        """Element count from which the parallel variant runs."""
        return self.min_size

    def pick(self, size: int) -> F:
        """The parallel variant for ``size >= threshold``, else the serial one.

        The choice depends on the size alone, never on the thread count, so a result is
        bit-identical whether the parallel loop runs on one thread or several.
        """
        if size >= self.min_size:
            return cast(F, self.parallel_fn)
        return cast(F, self.serial_fn)

    def recording(self, variant: str) -> Callable[..., Any]:
        """Warm-up mode: a stand-in that runs ``variant`` and logs each new
        specialisation's first call in ``RECORDS``.
        """

        def run(*args: Any) -> Any:
            key = (self.name, variant, tuple(_describe(a) for a in args))
            if key in _RECORDING.seen:
                return (self.serial if variant == "serial" else self.parallel)(*args)
            _RECORDING.seen.add(key)
            _RECORDING.records.append(self.first_call(variant, *args))
            return None

        return run

    def first_call(self, variant: str, *args: Any) -> CompileRecord:
        """Call one variant and report how long the call took and where its code came from."""
        fn = self.serial if variant == "serial" else self.parallel
        dispatcher = self._serial if variant == "serial" else self._parallel
        before_hits = _count(dispatcher, "_cache_hits")
        before_overloads = len(getattr(dispatcher, "overloads", {}))
        start = time.perf_counter()
        fn(*args)
        seconds = time.perf_counter() - start
        if _config.JIT_DISABLED:
            source = "python"
        elif len(getattr(dispatcher, "overloads", {})) == before_overloads:
            source = "warm"  # compiled earlier in this process
        elif _count(dispatcher, "_cache_hits") > before_hits:
            source = "cache"
        else:
            source = "compiled"
        signature = ", ".join(_describe(a) for a in args)
        return CompileRecord(self.name, variant, signature, seconds, source)


def _count(dispatcher: Any, attribute: str) -> int:
    counter = getattr(dispatcher, attribute, None)
    return int(sum(counter.values())) if counter else 0


def _describe(arg: Any) -> str:
    dtype = getattr(arg, "dtype", None)
    if dtype is not None:
        return f"{dtype}[{getattr(arg, 'ndim', 0)}d]"
    return type(arg).__name__


class _Recording:
    """Warm-up bookkeeping: specialisations seen and their first-call records."""

    seen: set[tuple[str, str, tuple[str, ...]]] = set()  # noqa: RUF012
    records: list[CompileRecord] = []  # noqa: RUF012


_RECORDING = _Recording()

REGISTRY: dict[str, Kernel[Any]] = {}


@contextmanager
def forced_variant(variant: str, record: bool = False) -> Iterator[None]:
    """Benchmarks and warm-up only: make every kernel run ``variant`` ("serial" or
    "parallel") whatever the size; with ``record``, log first calls (see warmup()).

    Not thread-safe: it swaps attributes of the shared kernels while it is active.
    """
    if variant not in ("serial", "parallel"):
        raise ValueError(f"forced_variant: expected 'serial' or 'parallel', got {variant!r}")
    saved = {k: (k.min_size, k.serial_fn, k.parallel_fn) for k in REGISTRY.values()}
    try:
        for k in REGISTRY.values():
            k.min_size = 0 if variant == "parallel" else sys.maxsize
            if record:
                k.serial_fn = k.recording("serial")
                k.parallel_fn = k.recording("parallel")
        yield
    finally:
        for k, (min_size, serial_fn, parallel_fn) in saved.items():
            k.min_size = min_size
            if record:  # put back what was there (a stub recompiles nothing: cached)
                k.serial_fn, k.parallel_fn = serial_fn, parallel_fn


def reassociating(fn: F) -> F:
    """A helper loop compiled with the reassociating flags, for exact kernels to call."""
    if _config.JIT_DISABLED:
        return fn
    global _cache_usable
    options: dict[str, Any] = {"fastmath": set(_config.FASTMATH), "error_model": "numpy"}
    if _config.CACHE and _cache_usable is not False:
        try:
            dispatcher = numba.njit(cache=True, **options)(fn)
            _cache_usable = True
            return cast(F, dispatcher)
        except RuntimeError:  # no writable cache location (read-only install): no cache
            _cache_usable = False
    return cast(F, numba.njit(**options)(fn))


def kernel(parallel_min: int, exact: bool = False) -> Callable[[F], Kernel[F]]:
    """Decorator: register ``fn`` as a kernel whose parallel variant runs from ``parallel_min``;
    ``exact`` compiles it without ``reassoc`` (for loops that call ``vexp``).
    """

    def wrap(fn: F) -> Kernel[F]:
        k = Kernel(fn, parallel_min, exact)
        REGISTRY[k.name] = k
        return k

    return wrap
