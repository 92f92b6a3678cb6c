"""Reductions over any axes against NumPy (float64 reference), deterministic across threads."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradwise.core import ops, threads

SIZES = [0, 1, 7, 1023, 65537, pytest.param(2**20 + 3, marks=pytest.mark.slow)]
DTYPES = [np.float32, np.float64]
Arr = np.ndarray[Any, Any]


def _tol(dtype: type) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-9}


def _close(actual: Arr, desired: Arr, dtype: type) -> None:
    tol = _tol(dtype)
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_full_reductions_match_numpy(
    dtype: type, size: int, n_threads: int, rng: np.random.Generator
) -> None:
    x: Arr = rng.standard_normal(size).astype(dtype)
    x64 = x.astype(np.float64)
    with threads(n_threads):
        _close(ops.sum(x), x64.sum(), dtype)
        assert ops.sum(x).dtype == dtype
        if size == 0:
            assert np.isnan(ops.mean(x))
            assert np.isnan(ops.var(x))
            with pytest.raises(ValueError, match="max: cannot reduce an empty array"):
                ops.max(x)
            return
        _close(ops.mean(x), x64.mean(), dtype)
        _close(ops.var(x), x64.var(), dtype)
        assert ops.max(x) == x.max()
        assert ops.min(x) == x.min()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1023, 65), (65, 1023), (3, 257, 129), (2, 1, 3, 4)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_axis_reductions_match_numpy(
    dtype: type, shape: tuple[int, ...], n_threads: int, rng: np.random.Generator
) -> None:
    x: Arr = rng.standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    axes: list[Any] = [None, 0, -1, (0, 1)]
    if len(shape) > 2:
        axes += [(0, 2), 1, (1, 2)]
    with threads(n_threads):
        for axis in axes:
            for keepdims in (False, True):
                got = ops.sum(x, axis, keepdims)
                want = x64.sum(axis=axis, keepdims=keepdims)
                assert got.shape == want.shape
                assert got.dtype == dtype
                _close(got, want, dtype)
                _close(ops.mean(x, axis, keepdims), x64.mean(axis=axis, keepdims=keepdims), dtype)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    want_var = x64.var(axis=axis, keepdims=keepdims, ddof=1)
                _close(ops.var(x, axis, keepdims, ddof=1), want_var, dtype)
                np.testing.assert_array_equal(
                    ops.max(x, axis, keepdims), x.max(axis=axis, keepdims=keepdims)
                )
                np.testing.assert_array_equal(
                    ops.min(x, axis, keepdims), x.min(axis=axis, keepdims=keepdims)
                )


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_on_non_contiguous_input(dtype: type, rng: np.random.Generator) -> None:
    x: Arr = rng.standard_normal((64, 48)).astype(dtype).T[::2, 1::3]
    for axis in (None, 0, 1):
        _close(ops.sum(x, axis), x.astype(np.float64).sum(axis=axis), dtype)
        np.testing.assert_array_equal(ops.max(x, axis), x.max(axis=axis))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape_axis",
    [((2**20 + 3,), None), ((1024, 1031), 0), ((1031, 1024), 1), ((64, 70, 300), (0, 2))],
)
def test_reductions_bit_identical_for_any_thread_count(
    dtype: type, shape_axis: tuple[Any, Any], rng: np.random.Generator
) -> None:
    shape, axis = shape_axis
    x = rng.standard_normal(shape).astype(dtype)
    results = []
    for n in (1, 2):
        with threads(n):
            results.append(
                [ops.sum(x, axis), ops.var(x, axis), ops.max(x, axis), ops.mean(x, axis)]
            )
    for a, b in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [7, 65537])
def test_nan_and_inf_propagate_through_reductions(dtype: type, size: int) -> None:
    x: Arr = np.ones(size, dtype=dtype)
    x[size // 2] = np.nan
    for fn in (ops.sum, ops.mean, ops.max, ops.min, ops.var):
        assert np.isnan(fn(x)), fn.__name__
    m: Arr = np.ones((3, size), dtype=dtype)
    m[1, 3] = np.nan
    m[2, 0] = np.inf
    for fn in (ops.max, ops.min, ops.sum):
        r = fn(m, 1)
        assert np.isnan(r[1]), fn.__name__
        assert not np.isnan(r[0]), fn.__name__
        np.testing.assert_array_equal(fn(m, 0), getattr(np, fn.__name__)(m, axis=0))
    assert ops.max(m, 1)[2] == np.inf
    assert ops.sum(m, 1)[2] == np.inf


def test_reductions_of_integers_and_bools() -> None:
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert ops.sum(x).dtype == np.int64
    assert ops.sum(x) == 66
    np.testing.assert_array_equal(ops.max(x, 0), [8, 9, 10, 11])
    assert ops.sum(np.array([True, True, False])) == 2
    with pytest.raises(TypeError, match="mean: x must be float32 or float64"):
        ops.mean(x)


def test_variance_with_too_few_degrees_of_freedom() -> None:
    x = np.array([[1.0], [2.0]])
    assert np.isnan(ops.var(x, axis=1, ddof=1)).all()
    y = np.array([1.0, 3.0])
    assert ops.var(y, ddof=2) == np.inf


@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
    data=st.data(),
)
def test_reduction_axes_property(shape: tuple[int, ...], data: st.DataObject) -> None:
    ndim = len(shape)
    axes = (
        data.draw(
            st.one_of(
                st.none(),
                st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim).map(tuple),
            )
        )
        if ndim
        else None
    )
    keepdims = data.draw(st.booleans())
    x = np.random.default_rng(0).standard_normal(shape)
    np.testing.assert_allclose(
        ops.sum(x, axes, keepdims), x.sum(axis=axes, keepdims=keepdims), rtol=1e-10, atol=1e-12
    )
    n = x.size if axes is None else int(np.prod([shape[a] for a in axes]))
    if n > 0:
        np.testing.assert_allclose(
            ops.mean(x, axes, keepdims),
            x.mean(axis=axes, keepdims=keepdims),
            rtol=1e-10,
            atol=1e-12,
        )
        np.testing.assert_array_equal(
            ops.max(x, axes, keepdims), x.max(axis=axes, keepdims=keepdims)
        )
        g = np.ones_like(ops.var(x, axes, keepdims))
        assert ops.var_backward(x, g, axes, keepdims).shape == x.shape


def test_axis_errors_name_the_op() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(
        ValueError, match="sum: axis 2 is out of range for an array of 2 dimensions"
    ):
        ops.sum(x, 2)
    with pytest.raises(ValueError, match="appears more than once"):
        ops.sum(x, (1, -1))
    with pytest.raises(TypeError, match="axis must be an int"):
        ops.sum(x, 1.5)  # type: ignore[arg-type]


# ---- backward ------------------------------------------------------------------------


def _numeric_grad(f: Any, x: Arr, g: Arr, eps: float = 1e-6) -> Arr:
    out = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = float(np.sum(f(x) * g))
        flat[i] = old - eps
        lo = float(np.sum(f(x) * g))
        flat[i] = old
        out.reshape(-1)[i] = (hi - lo) / (2 * eps)
    return out


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_backwards_match_finite_differences(
    axis: Any, keepdims: bool, rng: np.random.Generator
) -> None:
    x = rng.standard_normal((3, 4, 5))
    cases: tuple[tuple[Callable[[Arr], Arr], Callable[[Arr], Arr]], ...] = (
        (
            lambda a: ops.sum(a, axis, keepdims),
            lambda g: ops.sum_backward(g, x.shape, axis, keepdims),
        ),
        (
            lambda a: ops.mean(a, axis, keepdims),
            lambda g: ops.mean_backward(g, x.shape, axis, keepdims),
        ),
        (
            lambda a: ops.var(a, axis, keepdims, ddof=1),
            lambda g: ops.var_backward(x, g, axis, keepdims, ddof=1),
        ),
        (
            lambda a: ops.max(a, axis, keepdims),
            lambda g: ops.extreme_backward(x, ops.max(x, axis, keepdims), g, axis, keepdims),
        ),
    )
    for fwd, bwd in cases:
        y = fwd(x)
        g = rng.standard_normal(np.shape(y))
        np.testing.assert_allclose(bwd(g), _numeric_grad(fwd, x, g), rtol=1e-6, atol=1e-8)


def test_max_backward_splits_ties_evenly() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    dx = ops.extreme_backward(x, ops.max(x, 1), np.array([1.0, 3.0]), 1)
    np.testing.assert_allclose(dx, [[0.0, 0.5, 0.5], [1.0, 1.0, 1.0]])
    dmax = ops.extreme_backward(x, ops.max(x), np.array(1.0))
    np.testing.assert_allclose(dmax, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    z = np.array([[2.0, 3.0], [2.0, 2.0]])
    dmin = ops.extreme_backward(z, ops.min(z), np.array(1.0))
    np.testing.assert_allclose(dmin, [[1 / 3, 0.0], [1 / 3, 1 / 3]])


def test_unbroadcast_sums_stretched_axes(rng: np.random.Generator) -> None:
    g = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(ops.unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None], rtol=1e-6)
    np.testing.assert_allclose(ops.unbroadcast(g, (4,)), g.sum(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(ops.unbroadcast(g, ()), g.sum(), rtol=1e-6)
    assert ops.unbroadcast(g, (2, 3, 4)) is g
    assert ops.unbroadcast(g, (1, 3, 1)).dtype == np.float32
    with pytest.raises(
        ValueError,
        match=r"unbroadcast: a gradient of shape \(2, 3, 4\) cannot be reduced to shape \(5,\)",
    ):
        ops.unbroadcast(g, (5,))
