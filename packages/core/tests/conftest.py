from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

RunThreads = Callable[[Callable[[int], None], int], None]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def run_threads() -> RunThreads:
    """``run(work, n)``: ``work(i)`` in ``n`` Python threads at once; re-raises the first
    exception any of them raised, after all have finished."""

    def run(work: Callable[[int], None], n: int) -> None:
        errors: list[BaseException] = []

        def guarded(i: int) -> None:
            try:
                work(i)
            except BaseException as exc:  # handed to the test's thread below
                errors.append(exc)

        workers = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise errors[0]

    return run
