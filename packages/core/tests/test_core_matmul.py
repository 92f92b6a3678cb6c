"""matmul through NumPy's BLAS and its backward, including 1-D and broadcast batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradwise.core import ops

Arr = np.ndarray[Any, Any]

SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((1, 2, 3), (4, 3, 2)),
    ((6, 1, 2, 3), (5, 3, 4)),
    ((3,), (2, 3, 4)),
    ((2, 4, 3), (3,)),
]


@pytest.mark.parametrize(("sa", "sb"), SHAPES)
def test_matmul_backward_matches_finite_differences(
    sa: tuple[int, ...], sb: tuple[int, ...], rng: np.random.Generator
) -> None:
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    y = ops.matmul(a, b)
    np.testing.assert_allclose(y, np.matmul(a, b))
    g = rng.standard_normal(np.shape(y))
    da, db = ops.matmul_backward(a, b, g)
    assert da.shape == a.shape
    assert db.shape == b.shape
    for arr, grad in ((a, da), (b, db)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + 1e-6
            hi = float((np.matmul(a, b) * g).sum())
            arr[i] = old - 1e-6
            lo = float((np.matmul(a, b) * g).sum())
            arr[i] = old
            num[i] = (hi - lo) / 2e-6
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_matmul_keeps_float32() -> None:
    a = np.ones((4, 5), np.float32)
    y = ops.matmul(a, a.T)
    assert y.dtype == np.float32
    da, db = ops.matmul_backward(a, a.T, np.ones_like(y))
    assert da.dtype == np.float32
    assert db.dtype == np.float32


def test_matmul_errors_name_shapes() -> None:
    with pytest.raises(
        ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align \(3 != 4\)"
    ):
        ops.matmul(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(
        ValueError, match=r"matmul: batch shapes of \(2, 2, 3\) and \(3, 3, 4\) do not broadcast"
    ):
        ops.matmul(np.zeros((2, 2, 3)), np.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match=r"a is 0-d"):
        ops.matmul(np.zeros(()), np.zeros(3))
    with pytest.raises(TypeError, match="b must be a NumPy array"):
        ops.matmul(np.zeros(3), [1.0, 2.0, 3.0])  # type: ignore[arg-type]
