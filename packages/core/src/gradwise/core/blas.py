"""Matrix products through NumPy's BLAS, with small products kept on one BLAS thread.

OpenBLAS splits a product over its threads once M*N*K passes 262,144. Just above that, the
split loses whenever the product sits among other work, as in a small MLP's training
step: the second thread has gone to sleep between products, and waking it costs more
than it saves. Measured on the 2-core development host (medians): a 64x64x128 product
alone takes 26.6 us on one thread and 34.2 us on two; 256x256x10 takes 51.1 us against
36.9 us, so two threads win from there on. Setting the count before each product (with
no modes yet) made the small MLP benchmark's step (M*N*K = 524,288 and less) 5 to 13%
faster in each of four runs; with the modes below, an A/B of 40 rounds each on a noisy
day moved the medians by -8% to +13% and the minimums by -15% to -16%.

So :func:`matmul` runs a product with M*N*K at most :data:`SERIAL_MNK` on one BLAS
thread, and a larger one on the count BLAS had when gradwise last lowered it. OpenBLAS's
float32 GEMM rounds differently on one thread than on two (a few units in the last place:
2e-7 relative at 64x64x128; float64 agreed bit for bit in every shape measured), so the
count a product runs on must not depend on timing: each product runs inside
:meth:`OpenBlas.mode`, and products of the two modes never overlap. Python threads whose
products are of one mode run them concurrently; a thread wanting the other mode waits
for those in flight to finish (so blocks must not nest: :func:`matmul` is a leaf, and
inside a block only ``np.matmul`` runs). The count changes only when the mode does
(about 1 us); :func:`matmul` adds about 1 us to a tiny product on the 2026-12-07 host
(minimum over 25 rounds: 4x4 takes 2.4 us against 1.5 us for ``np.matmul``).
A convolution's worker threads run in the one-thread mode (:meth:`OpenBlas.single`). This
needs NumPy's BLAS to be the pthreads OpenBLAS that NumPy's wheels ship; with any other
BLAS :func:`matmul` is plain ``np.matmul``, and with ``SERIAL_MNK = 0`` every product runs
on the saved count.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np

from gradwise.core.dtypes import Array

SERIAL_MNK = 1 << 19
"""Products with M*N*K up to this run on one BLAS thread (0: never lower the count)."""


def _candidates() -> list[str]:
    """Shared libraries that look like NumPy's OpenBLAS: its wheel's copy, then any loaded."""
    here = os.path.dirname(np.__file__)
    paths = sorted(glob.glob(os.path.join(os.path.dirname(here), "numpy.libs", "*openblas*")))
    paths += sorted(glob.glob(os.path.join(here, ".dylibs", "*openblas*")))
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.startswith("/") and "openblas" in path.lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def _find_openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """Getter and setter of the thread count of a pthreads OpenBLAS, if NumPy has one."""
    names = [
        ("scipy_openblas", "64_"),
        ("scipy_openblas", ""),
        ("openblas", "64_"),
        ("openblas", ""),
    ]
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in names:
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            parallel = getattr(lib, f"{prefix}_get_parallel{suffix}", None)
            if get is None or set_ is None or parallel is None:
                continue
            get.restype, parallel.restype = ctypes.c_int, ctypes.c_int
            set_.argtypes, set_.restype = [ctypes.c_int], None
            if parallel() != 1:  # 0: no threads, 2: OpenMP (its own thread rules)
                return None
            return get, set_
    return None


class OpenBlas:
    """The thread count of NumPy's OpenBLAS: one thread, or the saved count, by mode.

    ``mode(True)`` runs its block on one thread, ``mode(False)`` on the saved count;
    blocks of the same mode may overlap (other Python threads), blocks of different
    modes never do, so every product runs on the count its mode says.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # the same lock, for waiting on it
        self.active = 0  # blocks running in the current mode
        self.waiting = 0  # threads waiting for the other mode
        self.serial = False  # the current mode: BLAS is at one thread
        self.saved = 1  # the count of the other mode, read when BLAS was last lowered
        self.found: tuple[Callable[[], int], Callable[[int], None]] | None = None
        self.searched = False

    def available(self) -> bool:
        """Whether NumPy's BLAS is an OpenBLAS whose thread count gradwise can set."""
        if not self.searched:
            with self.lock:
                if not self.searched:
                    self.found = _find_openblas()
                    self.searched = True
        return self.found is not None

    def enter(self, serial: bool) -> None:
        """Start a block of mode ``serial``: wait for the other mode's blocks to finish."""
        lock = self.lock
        lock.acquire()  # the plain lock: a Condition's own __enter__ costs a Python call
        try:
            if self.serial is serial and not self.waiting:
                self.active += 1  # the common case: the mode BLAS is in, nobody waiting
                return
            while self.active and (self.serial != serial or self.waiting):
                self.waiting += 1
                self.cond.wait()
                self.waiting -= 1
            if self.serial != serial:
                assert self.found is not None
                get, set_ = self.found
                if serial:
                    self.saved = get()  # the user may have changed it (threadpoolctl)
                    if self.saved > 1:
                        set_(1)
                elif self.saved > 1:
                    set_(self.saved)
                self.serial = serial
            self.active += 1
        finally:
            lock.release()

    def leave(self) -> None:
        """End a block started with :meth:`enter`."""
        lock = self.lock
        lock.acquire()
        self.active -= 1
        if not self.active and self.waiting:
            self.cond.notify_all()
        lock.release()

    @contextmanager
    def mode(self, serial: bool) -> Iterator[None]:
        """Run the block on one BLAS thread (``serial``) or on the saved count."""
        self.enter(serial)
        try:
            yield
        finally:
            self.leave()

    def single(self) -> AbstractContextManager[None]:
        """Run the block on one BLAS thread (a convolution's worker threads)."""
        return self.mode(True)


OPENBLAS = OpenBlas()


def matmul(a: Array, b: Array, out: Array | None = None) -> Array:
    """``np.matmul(a, b)`` (into ``out`` if given), small products on one BLAS thread."""
    blas = OPENBLAS
    if blas.found is None and (blas.searched or not blas.available()):
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    m = a.shape[-2] if a.ndim > 1 else 1
    n = b.shape[-1] if b.ndim > 1 else 1
    blas.enter(m * n * a.shape[-1] <= SERIAL_MNK)
    try:
        result: Array = np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    finally:
        blas.leave()
    return result


def restore() -> None:
    """Put BLAS back on the saved count, if gradwise left it at one thread."""
    if OPENBLAS.found is not None:
        with OPENBLAS.mode(False):
            pass
