"""create_graph=True through nn's fused nodes: Linear, Embedding, LayerNorm and BatchNorm
(gradgradcheck against finite differences of first derivatives, float64)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise.autograd as ag
import gradwise.nn as nn
from gradwise.autograd import Tensor
from gradwise.core.random import Generator


def _f64(shape: tuple[int, ...], seed: int) -> Tensor:
    return ag.tensor(Generator(seed).uniform(shape, -1.0, 1.0, np.float64), requires_grad=True)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_second_derivatives(bias: bool) -> None:
    x, w, b = _f64((2, 4, 3), 1), _f64((2, 3), 2), _f64((2,), 3)
    if bias:
        assert ag.gradgradcheck(lambda a, u, c: nn.functional.linear(a, u, c).tanh(), [x, w, b])
    else:
        assert ag.gradgradcheck(lambda a, u: nn.functional.linear(a, u).tanh(), [x, w])


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_second_derivatives(padding_idx: int | None) -> None:
    emb = nn.Embedding(5, 3, padding_idx=padding_idx)
    emb.weight.data = Generator(4).uniform((5, 3), -1.0, 1.0, np.float64)
    idx = np.array([[0, 1, 1], [4, 0, 2]])
    assert ag.gradgradcheck(lambda w: emb(idx).tanh() * 1.0, [emb.weight])


def test_hessian_through_a_linear_layer() -> None:
    ag.manual_seed(0)
    lin = nn.Linear(3, 2)
    for p in lin.parameters():
        p.data = p.data.astype(np.float64)
    x = ag.tensor(np.array([[0.5, -1.0, 2.0]]))

    def loss(w: Tensor) -> Tensor:
        return (nn.functional.linear(x, w, lin.bias).tanh() ** 2).sum()

    h = ag.hessian(loss, lin.weight.detach()).numpy().reshape(6, 6)
    np.testing.assert_allclose(h, h.T, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_second_derivatives(affine: bool) -> None:
    x, w, b = _f64((3, 2, 4), 1), _f64((2, 4), 2), _f64((2, 4), 3)
    if affine:
        fn = lambda a, u, c: nn.functional.layer_norm(a, (2, 4), u, c) * a  # noqa: E731
        assert ag.gradgradcheck(fn, [x, w, b])
    else:
        assert ag.gradgradcheck(lambda a: nn.functional.layer_norm(a, (4,)) ** 2, [x])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_second_derivatives(training: bool) -> None:
    x, w, b = _f64((5, 3), 1), _f64((3,), 2), _f64((3,), 3)
    rm = ag.tensor(np.array([0.1, 0.2, -0.3]))
    rv = ag.tensor(np.array([1.5, 0.7, 2.0]))

    def fn(a: Tensor, u: Tensor, c: Tensor) -> Tensor:
        mean, var = (None, None) if training else (rm, rv)
        return nn.functional.batch_norm(a, mean, var, u, c, training=training) * a

    assert ag.gradgradcheck(fn, [x, w, b])
    x3 = _f64((4, 2, 3), 5)
    assert ag.gradgradcheck(
        lambda a: nn.functional.batch_norm(a, None, None, training=True) ** 2, [x3]
    )
