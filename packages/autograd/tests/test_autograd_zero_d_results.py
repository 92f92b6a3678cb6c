"""Ops on 0-d tensors give 0-d arrays (NumPy would hand back scalars), so in-place works."""

from collections.abc import Callable

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor

OPS: list[tuple[str, Callable[[Tensor, Tensor], Tensor]]] = [
    ("add", lambda a, b: a + b),
    ("radd", lambda a, b: 0.0 + a),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a**2),
    ("neg", lambda a, b: -a),
    ("exp", lambda a, b: a.exp()),
    ("log", lambda a, b: b.log()),
    ("relu", lambda a, b: a.relu()),
    ("sigmoid", lambda a, b: a.sigmoid()),
    ("maximum", lambda a, b: ag.maximum(a, b)),
    ("where", lambda a, b: ag.where(np.array(True), a, b)),
    ("clip", lambda a, b: a.clip(0.0, 1.0)),
]


@pytest.mark.parametrize(("name", "fn"), OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_zero_d_ops_give_writeable_arrays(
    name: str, fn: Callable[[Tensor, Tensor], Tensor], requires_grad: bool
) -> None:
    a = ag.tensor(0.5, requires_grad=requires_grad)
    b = ag.tensor(2.0)
    out = fn(a, b)
    assert isinstance(out.data, np.ndarray)
    assert out.shape == ()
    assert out.dtype == np.float32
    assert out.data.flags.writeable


def test_accumulating_a_zero_d_loss_in_place() -> None:
    w = ag.tensor(3.0, requires_grad=True)
    loss = w * w
    total = 0.0 + loss
    total += loss
    total.backward()
    assert total.item() == 18.0
    assert w.grad is not None
    assert w.grad.item() == 12.0
