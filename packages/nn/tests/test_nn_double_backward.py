"""create_graph=True through nn's fused nodes: Linear and Embedding (gradgradcheck);
nodes without a rule raise naming themselves."""

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


def test_a_fused_node_without_a_rule_names_itself() -> None:
    ln = nn.LayerNorm(3)
    x = ag.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="Backward: double backward"):
        ag.grad(ln(x).sum() * 1.0, x, create_graph=True)
