"""Regression losses: MSE, L1, Huber, smooth L1."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.loss as L
from gradwise.autograd import Tensor, gradcheck, tensor

X = [[0.5, -1.2, 2.0, 0.1], [-0.3, 0.8, -2.5, 1.7], [1.1, 0.0, -0.4, 3.2]]
Y = [[0.2, -0.7, 0.5, 0.1], [1.0, 0.6, -1.0, -0.3], [1.9, -0.2, 0.1, 1.4]]

# Computed with torch 2.13 (float64): F.<loss>(X, Y, reduction=r, ...).
REG: dict[tuple[str, str], Any] = {
    ("mse", "mean"): 1.2283333333333335,
    ("l1", "mean"): 0.8833333333333333,
    ("huber", "mean"): 0.5212500000000001,
    ("smooth_l1", "mean"): 0.5212500000000001,
    ("mse", "sum"): 14.740000000000002,
    ("l1", "sum"): 10.6,
    ("huber", "sum"): 6.255000000000001,
    ("smooth_l1", "sum"): 6.255000000000001,
    ("mse", "none"): [
        [0.09, 0.25, 2.25, 0.0],
        [1.6900000000000002, 0.04000000000000003, 2.25, 4.0],
        [0.6399999999999997, 0.04000000000000001, 0.25, 3.240000000000001],
    ],
    ("l1", "none"): [
        [0.3, 0.5, 1.5, 0.0],
        [1.3, 0.20000000000000007, 1.5, 2.0],
        [0.7999999999999998, 0.2, 0.5, 1.8000000000000003],
    ],
    ("huber", "none"): [
        [0.045, 0.125, 1.0, 0.0],
        [0.8, 0.020000000000000014, 1.0, 1.5],
        [0.31999999999999984, 0.020000000000000004, 0.125, 1.3000000000000003],
    ],
    ("smooth_l1", "none"): [
        [0.045, 0.125, 1.0, 0.0],
        [0.8, 0.020000000000000014, 1.0, 1.5],
        [0.31999999999999984, 0.020000000000000004, 0.125, 1.3000000000000003],
    ],
    ("huber_d0.5", "mean"): 0.33625,
    ("huber_d2", "sum"): 7.370000000000001,
    ("smooth_l1_b0.5", "mean"): 0.6725,
    ("smooth_l1_b0", "sum"): 10.6,
}

REDUCTIONS = ["mean", "sum", "none"]
FUNCS: dict[str, Callable[..., Tensor]] = {
    "mse": L.mse_loss,
    "l1": L.l1_loss,
    "huber": L.huber_loss,
    "smooth_l1": L.smooth_l1_loss,
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(FUNCS))
def test_regression_matches_torch(name: str, reduction: str) -> None:
    out = FUNCS[name](tensor(np.array(X)), np.array(Y), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), REG[(name, reduction)], rtol=1e-12, atol=1e-15)
    assert out.shape == (() if reduction != "none" else (3, 4))


def test_regression_options_match_torch() -> None:
    x, y = tensor(np.array(X)), tensor(np.array(Y))
    cases = [
        (L.huber_loss(x, y, delta=0.5), ("huber_d0.5", "mean")),
        (L.huber_loss(x, y, delta=2.0, reduction="sum"), ("huber_d2", "sum")),
        (L.smooth_l1_loss(x, y, beta=0.5), ("smooth_l1_b0.5", "mean")),
        (L.smooth_l1_loss(x, y, beta=0.0, reduction="sum"), ("smooth_l1_b0", "sum")),
    ]
    for out, key in cases:
        np.testing.assert_allclose(out.item(), REG[key], rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("mse", {}),
        ("l1", {}),
        ("huber", {}),
        ("huber", {"delta": 0.3}),
        ("smooth_l1", {}),
        ("smooth_l1", {"beta": 0.4}),
        ("smooth_l1", {"beta": 0.0}),
    ],
)
def test_regression_gradcheck(name: str, kw: dict[str, float], reduction: str) -> None:
    rng = np.random.default_rng(1)
    x = tensor(rng.standard_normal((3, 4)), requires_grad=True)
    t = tensor(rng.standard_normal((3, 4)) * 1.5, requires_grad=True)
    assert gradcheck(lambda a, b: FUNCS[name](a, b, reduction=reduction, **kw), [x, t])


@pytest.mark.parametrize("name", list(FUNCS))
def test_regression_float32_stays_float32(name: str) -> None:
    x = tensor(np.array(X, dtype=np.float32), requires_grad=True)
    y = np.array(Y, dtype=np.float64)  # a float64 target does not upcast the loss
    out = FUNCS[name](x, y)
    assert out.dtype == np.float32
    out.backward()
    assert x.grad is not None
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(out.item(), REG[(name, "mean")], rtol=1e-6)


@pytest.mark.parametrize("name", list(FUNCS))
def test_regression_stable_at_1e4(name: str) -> None:
    x = tensor(np.array([1e4, -1e4, 3.0], dtype=np.float32), requires_grad=True)
    out = FUNCS[name](x, np.zeros(3, dtype=np.float32), reduction="sum")
    out.backward()
    assert x.grad is not None
    assert np.isfinite(out.item())
    assert np.isfinite(x.grad.numpy()).all()


def test_regression_huber_at_1e4_matches_torch() -> None:
    x = tensor(np.array([1e4, -1e4]), requires_grad=True)
    out = L.huber_loss(x, np.zeros(2))
    out.backward()
    assert x.grad is not None
    # torch 2.13: huber_loss([1e4, -1e4], [0, 0]) = 9999.5, grad [0.5, -0.5]
    assert out.item() == 9999.5
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, -0.5])


def test_regression_subgradients_at_zero_match_torch() -> None:
    x = tensor(np.zeros(2), requires_grad=True)
    L.l1_loss(x, np.zeros(2), reduction="sum").backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])  # sign(0) = 0, as torch


def test_regression_empty_mean_is_nan() -> None:
    out = L.mse_loss(tensor(np.zeros(0)), np.zeros(0))
    assert np.isnan(out.item())
    assert L.mse_loss(tensor(np.zeros(0)), np.zeros(0), reduction="sum").item() == 0.0


def test_regression_target_gets_gradient() -> None:
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    t = tensor(np.array([0.5, 3.0]), requires_grad=True)
    L.mse_loss(x, t, reduction="sum").backward()
    assert x.grad is not None
    assert t.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -2.0])
    np.testing.assert_allclose(t.grad.numpy(), [-1.0, 2.0])


def test_regression_integer_target_is_accepted_as_torch() -> None:
    out = L.mse_loss(tensor(np.array([1.5, 2.0], dtype=np.float32)), np.array([1, 2]))
    assert out.dtype == np.float32
    assert out.item() == pytest.approx(0.125)


@pytest.mark.parametrize("name", list(FUNCS))
def test_regression_shape_mismatch_raises(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"target shape \(4,\) does not match input shape \(3, 4\)"
    ):
        FUNCS[name](tensor(np.zeros((3, 4))), np.zeros(4))
    with pytest.raises(ValueError, match=name + "_loss"):
        FUNCS[name](tensor(np.zeros((3, 1))), np.zeros((3, 4)))


def test_regression_bad_arguments_raise() -> None:
    x = tensor(np.zeros(3))
    with pytest.raises(ValueError, match="mse_loss: 'avg' is not a valid value for reduction"):
        L.mse_loss(x, np.zeros(3), reduction="avg")
    with pytest.raises(TypeError, match="mse_loss: input must be float32 or float64, got int64"):
        L.mse_loss(tensor(np.zeros(3, dtype=np.int64)), np.zeros(3))
    with pytest.raises(TypeError, match="l1_loss: target must be a Tensor or a NumPy array"):
        L.l1_loss(x, [0.0, 0.0, 0.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"huber_loss: delta must be positive, got 0\.0"):
        L.huber_loss(x, np.zeros(3), delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative"):
        L.smooth_l1_loss(x, np.zeros(3), beta=-1.0)
    with pytest.raises(ValueError, match="MSELoss: 'batchmean' is not a valid value"):
        L.MSELoss(reduction="batchmean")
    with pytest.raises(ValueError, match="HuberLoss: delta must be positive"):
        L.HuberLoss(delta=-1.0)


def test_regression_classes_agree_with_functions() -> None:
    rng = np.random.default_rng(2)
    x, t = tensor(rng.standard_normal((4, 3))), tensor(rng.standard_normal((4, 3)))
    pairs: list[tuple[Callable[[Tensor, Tensor], Tensor], Tensor]] = [
        (L.MSELoss(), L.mse_loss(x, t)),
        (L.MSELoss(reduction="none"), L.mse_loss(x, t, reduction="none")),
        (L.L1Loss(reduction="sum"), L.l1_loss(x, t, reduction="sum")),
        (L.HuberLoss(delta=0.4), L.huber_loss(x, t, delta=0.4)),
        (
            L.SmoothL1Loss(reduction="sum", beta=0.3),
            L.smooth_l1_loss(x, t, reduction="sum", beta=0.3),
        ),
    ]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x, t).numpy(), expected.numpy())
    assert repr(L.HuberLoss(delta=0.4)) == "HuberLoss(reduction='mean', delta=0.4)"


def test_regression_is_one_graph_node() -> None:
    x = tensor(np.ones((2, 2)), requires_grad=True)
    out = L.smooth_l1_loss(x, np.zeros((2, 2)))
    assert out.grad_fn is not None
    assert out.grad_fn.name() == "SmoothL1LossBackward"
    assert out.grad_fn.next_functions[0][0] is not None
    assert out.grad_fn.next_functions[0][0].name() == "AccumulateGrad"


def test_regression_non_contiguous_input() -> None:
    base = np.arange(24.0).reshape(4, 6) / 7
    x = tensor(base, requires_grad=True)
    xt = x.T  # (6, 4), a view
    t = np.ones((6, 4))
    out = L.mse_loss(xt, t, reduction="sum")
    out.backward()
    assert x.grad is not None
    np.testing.assert_allclose(out.item(), ((base.T - 1) ** 2).sum())
    np.testing.assert_allclose(x.grad.numpy(), 2 * (base - 1))


shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


@settings(deadline=None, max_examples=40)
@given(
    data=st.data(),
    shape=shapes,
    dtype=st.sampled_from([np.float32, np.float64]),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_regression_mse_property(
    data: st.DataObject, shape: tuple[int, ...], dtype: type, reduction: str
) -> None:
    elems = st.floats(-100, 100, width=32)
    a = data.draw(hnp.arrays(dtype, shape, elements=elems))
    b = data.draw(hnp.arrays(dtype, shape, elements=elems))
    x = tensor(a, requires_grad=True)
    out = L.mse_loss(x, b, reduction=reduction)
    assert out.dtype == dtype
    d = a.astype(np.float64) - b.astype(np.float64)
    ref = {"mean": (d * d).mean(), "sum": (d * d).sum(), "none": d * d}[reduction]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), ref, rtol=rtol, atol=1e-6)
    out.backward(np.ones(out.shape, dtype=dtype) if reduction == "none" else None)
    assert x.grad is not None
    gref = 2 * d / (d.size if reduction == "mean" else 1)
    np.testing.assert_allclose(x.grad.numpy(), gref, rtol=rtol, atol=1e-4)
