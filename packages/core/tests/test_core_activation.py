"""Every activation kernel, forward and backward, against a float64 NumPy reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradwise.core import ops, threads

SIZES = [0, 1, 7, 1023, 65537, pytest.param(2**20 + 3, marks=pytest.mark.slow)]
DTYPES = [np.float32, np.float64]
Arr = np.ndarray[Any, Any]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sig(x: Arr) -> Arr:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _gelu_inner(x: Arr) -> Arr:
    return math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)


def _gelu_tanh_grad(x: Arr) -> Arr:
    t = np.tanh(_gelu_inner(x))
    d = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x**2)
    grad: Arr = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * d
    return grad


def _softplus(x: Arr) -> Arr:
    return np.where(x > 20, x, np.logaddexp(0.0, x))


# name -> (gradwise forward, gradwise backward(x, y, g), reference forward, reference dy/dx)
CASES: dict[
    str, tuple[Callable[..., Arr], Callable[..., Arr], Callable[..., Arr], Callable[..., Arr]]
] = {
    "relu": (
        ops.relu,
        lambda x, y, g: ops.relu_backward(x, g),
        lambda x: np.maximum(x, 0.0),
        lambda x: (x > 0).astype(np.float64),
    ),
    "leaky_relu": (
        lambda x: ops.leaky_relu(x, 0.2),
        lambda x, y, g: ops.leaky_relu_backward(x, g, 0.2),
        lambda x: np.where(x > 0, x, 0.2 * x),
        lambda x: np.where(x > 0, 1.0, 0.2),
    ),
    "sigmoid": (
        ops.sigmoid,
        lambda x, y, g: ops.sigmoid_backward(y, g),
        _sig,
        lambda x: _sig(x) * (1 - _sig(x)),
    ),
    "tanh": (
        ops.tanh,
        lambda x, y, g: ops.tanh_backward(y, g),
        np.tanh,
        lambda x: 1 - np.tanh(x) ** 2,
    ),
    "gelu": (
        ops.gelu,
        lambda x, y, g: ops.gelu_backward(x, g),
        lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
        lambda x: (
            0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
        ),
    ),
    "erf": (
        ops.erf,
        lambda x, y, g: ops.erf_backward(x, g),
        _erf,
        lambda x: 2 / math.sqrt(math.pi) * np.exp(-(x**2)),
    ),
    "gelu_tanh": (
        lambda x: ops.gelu(x, "tanh"),
        lambda x, y, g: ops.gelu_backward(x, g, "tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(_gelu_inner(x))),
        _gelu_tanh_grad,
    ),
    "silu": (
        ops.silu,
        lambda x, y, g: ops.silu_backward(x, g),
        lambda x: x * _sig(x),
        lambda x: _sig(x) * (1 + x * (1 - _sig(x))),
    ),
    "softplus": (
        ops.softplus,
        lambda x, y, g: ops.softplus_backward(x, g),
        _softplus,
        lambda x: np.where(x > 20, 1.0, _sig(x)),
    ),
}


def _tol(dtype: type) -> dict[str, float]:
    return {"rtol": 3e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _close(actual: Arr, desired: Arr, dtype: type) -> None:
    tol = _tol(dtype)
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_activation_matches_numpy(
    name: str, dtype: type, size: int, n_threads: int, rng: np.random.Generator
) -> None:
    fwd, bwd, ref_fwd, ref_grad = CASES[name]
    x: Arr = (rng.standard_normal(size) * 4).astype(dtype)
    if size > 30:
        x[:10] = [0.0, -0.0, 25.0, -25.0, 90.0, -90.0, 1e-30, -1e-30, 700.0, -700.0]
    g: Arr = rng.standard_normal(size).astype(dtype)
    with threads(n_threads):
        y = fwd(x)
        dx = bwd(x, y, g)
    assert y.dtype == dtype
    assert dx.dtype == dtype
    assert y.shape == x.shape
    assert dx.shape == x.shape
    x64 = x.astype(np.float64)
    _close(y, ref_fwd(x64), dtype)
    _close(dx, g.astype(np.float64) * ref_grad(x64), dtype)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_non_contiguous_input(name: str, dtype: type, rng: np.random.Generator) -> None:
    fwd, bwd, _, _ = CASES[name]
    base: Arr = rng.standard_normal((40, 30)).astype(dtype)
    x = base.T[::2]  # transposed and strided
    g: Arr = rng.standard_normal(x.shape).astype(dtype)
    y = fwd(x)
    expected = fwd(np.ascontiguousarray(x))
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(bwd(x, y, g), bwd(np.ascontiguousarray(x), expected, g.copy()))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_nan_and_inf_follow_numpy(name: str, dtype: type) -> None:
    fwd, bwd, ref_fwd, _ = CASES[name]
    x: Arr = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0], dtype=dtype)
    y = fwd(x)
    with np.errstate(invalid="ignore"):
        expected = ref_fwd(x.astype(np.float64))
    assert np.isnan(y[0])  # NaN in, NaN out
    np.testing.assert_allclose(y[1:], expected[1:], rtol=1e-6, equal_nan=True)
    dx = bwd(x, y, np.ones_like(x))
    assert dx.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_is_libm_erf_rounded_to_the_dtype(dtype: type, rng: np.random.Generator) -> None:
    x: Arr = (rng.standard_normal(70001) * 3).astype(dtype)  # past the parallel threshold
    expected = _erf(x.astype(np.float64)).astype(dtype)
    np.testing.assert_array_equal(ops.erf(x), expected)


def test_relu_subgradient_at_zero_is_zero() -> None:
    x = np.array([0.0, -0.0], dtype=np.float32)
    assert ops.relu_backward(x, np.ones_like(x)).tolist() == [0.0, 0.0]


def test_sigmoid_extreme_values_do_not_overflow() -> None:
    x = np.array([-1e4, 1e4, -100.0], dtype=np.float32)
    y = ops.sigmoid(x)
    assert y[0] == 0.0
    assert y[1] == 1.0
    assert 0 < y[2] < 1e-40


def test_activation_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="relu: x must be float32 or float64, got int64"):
        ops.relu(np.arange(3))
    with pytest.raises(TypeError, match="relu: x must be a NumPy array, got list"):
        ops.relu([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"relu_backward: grad has shape \(2,\) but x has shape \(3,\)"
    ):
        ops.relu_backward(np.zeros(3), np.zeros(2))
    with pytest.raises(TypeError, match="grad has dtype float32 but x has dtype float64"):
        ops.relu_backward(np.zeros(3), np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        ops.gelu(np.zeros(3), "fast")
    with pytest.raises(ValueError, match="beta must be non-zero"):
        ops.softplus(np.zeros(3), beta=0.0)
