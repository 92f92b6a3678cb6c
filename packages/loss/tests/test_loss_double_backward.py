"""create_graph=True through the regression losses (gradgradcheck); other fused losses
raise naming their node."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise.autograd as ag
import gradwise.loss as L
from gradwise.autograd import Tensor
from gradwise.core.random import Generator


def _f64(shape: tuple[int, ...], seed: int) -> Tensor:
    return ag.tensor(Generator(seed).uniform(shape, -2.0, 2.0, np.float64), requires_grad=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "loss",
    [
        L.mse_loss,
        L.l1_loss,
        lambda a, b, reduction: L.huber_loss(a, b, reduction=reduction, delta=0.7),
        lambda a, b, reduction: L.smooth_l1_loss(a, b, reduction=reduction, beta=0.6),
    ],
    ids=["mse", "l1", "huber", "smooth_l1"],
)
def test_regression_losses_second_derivatives(loss: object, reduction: str) -> None:
    x, t = _f64((3, 4), 1), _f64((3, 4), 2)
    fn = loss  # mypy: a callable
    assert callable(fn)
    assert ag.gradgradcheck(lambda a, b: fn(a.tanh() * 2.0, b, reduction=reduction), [x, t])


def test_hessian_of_mse_is_two_over_n_times_identity() -> None:
    t = ag.tensor(np.array([0.5, -1.0, 2.0]))
    h = ag.hessian(lambda v: L.mse_loss(v, t), ag.tensor(np.zeros(3)))
    np.testing.assert_allclose(h.numpy(), np.eye(3) * 2.0 / 3.0)


def test_a_fused_loss_without_a_rule_names_itself() -> None:
    x = ag.tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    with pytest.raises(RuntimeError, match="Backward: double backward"):
        ag.grad(L.cross_entropy(x, np.array([1])), x, create_graph=True)
