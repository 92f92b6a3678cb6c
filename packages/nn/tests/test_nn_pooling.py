"""max_pool2d / avg_pool2d / adaptive_avg_pool2d and their modules: torch 2.13 literals,
naive references, float64 gradchecks, errors, dtypes and reprs."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.nn as nn
import gradwise.nn.functional as F
from gradwise.autograd import Tensor, jvp
from gradwise.autograd.testing import gradcheck, gradgradcheck
from gradwise.core.dtypes import Array


def det(shape: tuple[int, ...], a: float = 0.7, b: float = 0.0) -> Array:
    """Deterministic inputs shared with the script that produced the torch literals."""
    out: Array = np.sin(np.arange(math.prod(shape)) * a + b).reshape(shape)
    return out


X = det((1, 2, 5, 6), 0.9)


def test_max_pool_ceil_mode_matches_torch_literal() -> None:
    y = F.max_pool2d(Tensor(X), 3, 2, 1, ceil_mode=True).numpy()
    # torch 2.13: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    expected = [
        [
            [0.78332691, 0.97384763, 0.96988981, -0.45753589],
            [0.0168139, 0.96988981, 0.96988981, 0.96115272],
            [0.38125049, 0.05042269, 0.96115272, 0.96115272],
        ],
        [
            [0.95637593, 0.95132874, 0.08397446, 0.08397446],
            [0.95132874, 0.95132874, 0.94042896, -0.54476612],
            [0.11743126, 0.94042896, 0.94042896, 0.30227187],
        ],
    ]
    np.testing.assert_allclose(y[0], expected, atol=1e-8)


def test_avg_pool_matches_torch_literals() -> None:
    y = F.avg_pool2d(Tensor(X), 3, 2, 1, ceil_mode=True, count_include_pad=False).numpy()
    # torch 2.13: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    expected = [
        [
            [0.00684408, 0.660821, -0.01136638, -0.71753301],
            [-0.65922623, 0.01901843, 0.54621159, 0.30011913],
            [-0.39060275, -0.6497497, 0.32933527, 0.89224286],
        ],
        [
            [0.77652919, -0.05676765, -0.64310858, -0.31638128],
            [0.35654608, 0.53509955, -0.30012077, -0.75176446],
            [-0.56897124, 0.36826783, 0.46839777, -0.12124713],
        ],
    ]
    np.testing.assert_allclose(y[0], expected, atol=1e-8)
    y2 = F.avg_pool2d(Tensor(X), (2, 3), (1, 2), (1, 1)).numpy()
    # torch 2.13: F.avg_pool2d(x, (2, 3), (1, 2), (1, 1)) (count_include_pad=True), channel 0
    expected0 = [
        [0.13055448, 0.3640924, -0.16544511],
        [0.00456272, 0.660821, -0.01136638],
        [-0.4164784, 0.30929924, 0.5151092],
        [-0.53323447, -0.26820095, 0.66523865],
        [-0.26040184, -0.6497497, 0.32933527],
        [-0.017654, -0.36897811, 0.02512708],
    ]
    np.testing.assert_allclose(y2[0, 0], expected0, atol=1e-8)


def test_adaptive_avg_pool_matches_torch_literal() -> None:
    y = F.adaptive_avg_pool2d(Tensor(X), (3, 4)).numpy()
    # torch 2.13: F.adaptive_avg_pool2d(x, (3, 4))
    expected = [
        [
            [0.00684408, 0.64191408, 0.34171693, -0.36636699],
            [-0.65922623, -0.2754885, 0.66925782, 0.51530123],
            [-0.39060275, -0.80228558, 0.04788148, 0.66634188],
        ],
        [
            [0.77652919, 0.29128586, -0.80647223, -0.58822555],
            [0.35654608, 0.676263, -0.07429893, -0.57656748],
            [-0.56897124, 0.10239052, 0.76322022, 0.25258543],
        ],
    ]
    np.testing.assert_allclose(y[0], expected, atol=1e-8)
    # None keeps the input size; an int means a square output
    assert F.adaptive_avg_pool2d(Tensor(X), (None, 2)).shape == (1, 2, 5, 2)
    np.testing.assert_allclose(
        F.adaptive_avg_pool2d(Tensor(X), 1).numpy()[..., 0, 0], X.mean(axis=(2, 3))
    )


MAX_CASES = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    ((3, 2), (2, 1), (1, 1), (2, 1), True),
    (3, 2, 1, 1, True),
    (1, 1, 0, 1, False),
]


@pytest.mark.parametrize(("k", "s", "p", "d", "ceil"), MAX_CASES)
def test_max_pool_gradcheck(k: object, s: object, p: object, d: object, ceil: bool) -> None:
    # distinct values so the maximum of each window is unique (no kink)
    x = np.random.default_rng(0).permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) / 10.0
    fn = lambda a: F.max_pool2d(a, k, s, p, d, ceil)  # type: ignore[arg-type]  # noqa: E731
    assert gradcheck(fn, [Tensor(x, requires_grad=True)])


AVG_CASES = [
    (2, None, 0, False, True),
    (3, 2, 1, False, True),
    (3, 2, 1, True, False),
    ((3, 2), (2, 1), (1, 1), True, True),
]


@pytest.mark.parametrize(("k", "s", "p", "ceil", "incl"), AVG_CASES)
def test_avg_pool_gradcheck(k: object, s: object, p: object, ceil: bool, incl: bool) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 8))
    fn = lambda a: F.avg_pool2d(a, k, s, p, ceil, incl)  # type: ignore[arg-type]  # noqa: E731
    assert gradcheck(fn, [Tensor(x, requires_grad=True)])


@pytest.mark.parametrize("out", [1, (2, 3), (7, 8), (5, 11), (None, 3)])
def test_adaptive_avg_pool_gradcheck(out: object) -> None:
    x = np.random.default_rng(2).standard_normal((2, 2, 7, 8))
    fn = lambda a: F.adaptive_avg_pool2d(a, out)  # type: ignore[arg-type]  # noqa: E731
    assert gradcheck(fn, [Tensor(x, requires_grad=True)])


@settings(deadline=None, max_examples=25)
@given(
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    ceil=st.booleans(),
)
def test_max_pool_property_against_numpy(h: int, w: int, k: int, s: int, ceil: bool) -> None:
    if k > min(h, w):
        return
    x = np.random.default_rng(3).standard_normal((2, 2, h, w))
    y = F.max_pool2d(Tensor(x), k, s, 0, 1, ceil).numpy()
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            window = x[:, :, i * s : i * s + k, j * s : j * s + k]
            np.testing.assert_array_equal(y[:, :, i, j], window.max(axis=(2, 3)))


def test_max_pool_nan_propagates_and_batch_of_one_and_empty() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 2, 3] = np.nan
    y = F.max_pool2d(Tensor(x), 2).numpy()
    assert np.isnan(y[0, 0, 1, 1]) and not np.isnan(y[0, 0, 0, 0])
    e = Tensor(np.zeros((0, 3, 4, 4)), requires_grad=True)
    for out in (F.max_pool2d(e, 2), F.avg_pool2d(e, 2), F.adaptive_avg_pool2d(e, 2)):
        assert out.shape == (0, 3, 2, 2)
        out.sum().backward()
        assert e.grad is not None and e.grad.shape == (0, 3, 4, 4)


def test_unbatched_and_float32() -> None:
    x = Tensor(np.random.default_rng(4).standard_normal((3, 6, 6)).astype(np.float32))
    x.requires_grad_()
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, 3)):
        assert y.shape == (3, 3, 3) and y.dtype == np.float32
        y.sum().backward()
        assert x.grad is not None and x.grad.dtype == np.float32


def test_errors_name_the_op() -> None:
    x = Tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="max_pool2d: pad should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: input of shape \(1, 1, 4, 4\) is too small"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 3-D .* got shape \(4, 4\)"):
        F.max_pool2d(Tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="max_pool2d: stride must be >= 1"):
        F.max_pool2d(x, 2, 0)
    with pytest.raises(TypeError, match="max_pool2d: kernel_size must be an int or a pair"):
        F.max_pool2d(x, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="avg_pool2d: expected a float32 or float64 input"):
        F.avg_pool2d(Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: expected non-empty spatial"):
        F.adaptive_avg_pool2d(Tensor(np.zeros((1, 1, 0, 4))), 2)


def test_modules_and_reprs() -> None:
    x = Tensor(X)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy(), F.max_pool2d(x, 2).numpy())
    np.testing.assert_array_equal(
        nn.AvgPool2d(3, 1, 1)(x).numpy(), F.avg_pool2d(x, 3, 1, 1).numpy()
    )
    np.testing.assert_array_equal(
        nn.AdaptiveAvgPool2d((2, 2))(x).numpy(), F.adaptive_avg_pool2d(x, 2).numpy()
    )
    # reprs as torch 2.13 prints them
    assert (
        repr(nn.MaxPool2d(2))
        == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    )
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    assert list(nn.MaxPool2d(2).parameters()) == []


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: F.max_pool2d(a, 3, 2, 1),
        lambda a: F.avg_pool2d(a, 3, 2, 1, True, False),
        lambda a: F.adaptive_avg_pool2d(a, (4, 3)),
    ],
    ids=["max", "avg", "adaptive"],
)
def test_pooling_forward_mode_jvp(fn: Callable[[Tensor], Tensor]) -> None:
    rng = np.random.default_rng(8)
    x = rng.permutation(240).reshape(2, 4, 6, 5) / 10.0  # distinct values: unique maxima
    t = rng.standard_normal(x.shape)
    _, tangent_out = jvp(fn, (Tensor(x),), (Tensor(t),))
    eps = 1e-6
    fd = (fn(Tensor(x + eps * t)).numpy() - fn(Tensor(x - eps * t)).numpy()) / (2 * eps)
    np.testing.assert_allclose(tangent_out.numpy(), fd, atol=1e-7)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: F.max_pool2d(a, 3, 2, 1) ** 2,
        lambda a: F.avg_pool2d(a, 3, 2, 1, True, False) ** 2,
        lambda a: F.adaptive_avg_pool2d(a, (3, 5)) ** 2,
    ],
    ids=["max", "avg", "adaptive"],
)
def test_pooling_double_backward_gradgradcheck(fn: Callable[[Tensor], Tensor]) -> None:
    x = np.random.default_rng(15).permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) / 10.0
    assert gradgradcheck(fn, [Tensor(x, requires_grad=True)])


def test_gradcheck_on_empty_and_size_one_batches() -> None:
    empty = Tensor(np.zeros((0, 3, 4, 4)), requires_grad=True)
    one = Tensor(np.random.default_rng(20).permutation(16).reshape(1, 1, 4, 4) / 4.0)
    one.requires_grad_()
    for fn in (
        lambda a: F.max_pool2d(a, 2),
        lambda a: F.avg_pool2d(a, 3, 1, 1),
        lambda a: F.adaptive_avg_pool2d(a, 3),
    ):
        assert gradcheck(fn, [empty])
        assert gradcheck(fn, [one])
