"""explain() on real models: a layer run under no_grad(), a layer never called, a frozen
layer, an evaluation pass between steps, all named by ``model.named_parameters()``."""

from __future__ import annotations

import numpy as np

import gradwise.autograd as ag
import gradwise.loss as L
import gradwise.nn as nn
from gradwise.autograd import Tensor


class TwoTowers(nn.Module):
    """An encoder, a head, and a side layer the forward forgets to call."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3)
        self.side = nn.Linear(6, 5)  # never called

    def forward(self, x: Tensor, frozen_encoder: bool) -> Tensor:
        if frozen_encoder:
            with ag.no_grad():
                h = self.encoder(x).relu()
        else:
            h = self.encoder(x).relu()
        return self.head(h)


def _batch() -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    y = ag.tensor(rng.integers(0, 3, 8))
    return x, y


def test_no_grad_layer_and_unused_layer_are_told_apart() -> None:
    model = TwoTowers()
    x, y = _batch()
    loss = L.cross_entropy(model(x, frozen_encoder=True), y)
    rep = ag.explain(loss, model.named_parameters())
    assert rep["head.weight"].reached and rep["head.bias"].reached
    for name in ("encoder.weight", "encoder.bias"):
        assert rep[name].reason.startswith("used under no_grad(): "), rep[name]
        assert "before this output's graph began" in rep[name].where
    # the head's input: the (8, 5) result of the encoder under no_grad enters the graph
    assert "a (8, 5) float32 tensor without gradient enters it" in rep["encoder.bias"].where
    for name in ("side.weight", "side.bias"):
        assert rep[name].reason.startswith("never used in the forward"), rep[name]
    loss.backward()
    assert model.encoder.weight.grad is None and model.side.weight.grad is None
    assert model.head.weight.grad is not None


def test_an_evaluation_pass_after_the_step_does_not_change_the_diagnosis() -> None:
    model = TwoTowers()
    x, y = _batch()
    loss = L.cross_entropy(model(x, frozen_encoder=False), y)
    with ag.no_grad():  # evaluation after the forward: its notes come after the output
        model(x, frozen_encoder=False)
        model.side(x)
    rep = ag.explain(loss, model.named_parameters())
    assert rep["encoder.weight"].reached
    assert rep["side.weight"].reason.startswith("never used in the forward")


def test_frozen_parameters_are_reported_as_requires_grad_false() -> None:
    model = TwoTowers()
    model.encoder.weight.requires_grad_(False)
    x, y = _batch()
    loss = L.cross_entropy(model(x, frozen_encoder=False), y)
    rep = ag.explain(loss, model.named_parameters())
    assert rep["encoder.weight"].reason.startswith("requires_grad=False")
    assert rep["encoder.bias"].reached
