"""blas.matmul: np.matmul's values, and the BLAS thread count it sets for small products."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from gradwise.core import blas

needs_openblas = pytest.mark.skipif(
    not blas.OPENBLAS.available(), reason="NumPy's BLAS is not a pthreads OpenBLAS"
)


@pytest.fixture(autouse=True)
def _give_back() -> Iterator[None]:
    yield
    blas.restore()


def _count() -> int:
    assert blas.OPENBLAS.found is not None
    return blas.OPENBLAS.found[0]()


SHAPES = [
    ((5,), (5,)),
    ((3, 5), (5,)),
    ((5,), (5, 4)),
    ((3, 5), (5, 4)),
    ((2, 3, 5), (5, 4)),
    ((2, 1, 3, 5), (4, 5, 6)),
    ((64, 64), (64, 128)),
    ((300, 200), (200, 100)),
    ((0, 5), (5, 3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("sa", "sb"), SHAPES)
def test_values_are_numpys_on_the_same_thread_count(
    sa: tuple[int, ...], sb: tuple[int, ...], dtype: type[np.floating]
) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    m = a.shape[-2] if a.ndim > 1 else 1
    n = b.shape[-1] if b.ndim > 1 else 1
    if blas.OPENBLAS.available() and m * n * a.shape[-1] <= blas.SERIAL_MNK:
        with blas.OPENBLAS.single():  # float32 GEMM rounds differently on one thread
            want = np.matmul(a, b)
    else:
        want = np.matmul(a, b)
    # ... and agrees with two threads to rounding (sums of products: scaled by magnitude)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(want, np.matmul(a, b), rtol=tol, atol=tol * scale)
    got = blas.matmul(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    out = np.empty_like(want)
    assert blas.matmul(a, b, out=out) is out
    assert np.array_equal(out, want)


def test_transposed_views_and_errors_as_numpy() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 30))
    b = rng.standard_normal((50, 30))
    assert np.array_equal(blas.matmul(a, b.T), np.matmul(a, b.T))
    with pytest.raises(ValueError, match="mismatch"):
        blas.matmul(a, b)
    assert not blas.OPENBLAS.active  # the failed product left its mode


@needs_openblas
def test_small_products_run_on_one_thread_large_ones_on_the_saved_count() -> None:
    before = _count()
    small = np.ones((64, 64), np.float32), np.ones((64, 128), np.float32)
    large = np.ones((128, 128), np.float32), np.ones((128, 128), np.float32)
    blas.matmul(*small)
    assert _count() == 1 and blas.OPENBLAS.serial
    blas.matmul(*small)
    assert _count() == 1
    blas.matmul(*large)
    assert _count() == before and not blas.OPENBLAS.serial
    blas.matmul(*small)
    blas.restore()
    assert _count() == before and not blas.OPENBLAS.serial
    assert not blas.OPENBLAS.active


@needs_openblas
def test_threshold_zero_never_lowers(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _count()
    monkeypatch.setattr(blas, "SERIAL_MNK", 0)
    blas.matmul(np.ones((2, 2)), np.ones((2, 2)))
    assert _count() == before and not blas.OPENBLAS.serial


@needs_openblas
def test_a_product_of_the_other_mode_waits_for_the_block_to_end() -> None:
    before = _count()
    large = np.ones((128, 128)), np.ones((128, 128))
    done = threading.Event()

    def other() -> None:
        blas.matmul(*large)
        done.set()

    with blas.OPENBLAS.single():
        assert _count() == 1
        worker = threading.Thread(target=other)
        worker.start()
        assert not done.wait(0.2)  # it cannot run on the saved count while BLAS is at 1
        assert _count() == 1
    worker.join(10)
    assert done.is_set() and _count() == before


def _reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul on the count blas.matmul picks for the shapes."""
    small = a.shape[0] * b.shape[1] * a.shape[1] <= blas.SERIAL_MNK
    with blas.OPENBLAS.mode(small):
        out: np.ndarray = np.matmul(a, b)
    return out


@needs_openblas
def test_python_threads_mixing_sizes_get_the_same_bits_as_one_thread(
    run_threads: Callable[[Callable[[int], None], int], None],
) -> None:
    before = _count()
    rng = np.random.default_rng(2)
    pairs = [
        (
            rng.standard_normal((m, 64)).astype(np.float32),
            rng.standard_normal((64, n)).astype(np.float32),
        )
        for m, n in ((8, 8), (300, 300), (64, 128), (200, 50), (128, 64))
    ]
    wants = [_reference(a, b) for a, b in pairs]

    def work(i: int) -> None:
        for j in range(60):
            k = (i + j) % len(pairs)
            assert np.array_equal(blas.matmul(*pairs[k]), wants[k]), pairs[k][0].shape

    run_threads(work, 4)
    blas.restore()
    assert _count() == before and not blas.OPENBLAS.active
