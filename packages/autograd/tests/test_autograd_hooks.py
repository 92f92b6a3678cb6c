"""Tensor.register_hook: observe, replace, remove; fires once with the summed gradient."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor
from gradwise.autograd import function as fm


def test_hook_on_a_non_leaf_sees_the_summed_gradient_once() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    seen: list[np.ndarray] = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    (y * y + y).sum().backward()  # y used three times
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * y.numpy() + 1)
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * y.numpy() + 1))


def test_hook_replaces_the_gradient() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.register_hook(lambda g: g * 10.0)
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])


def test_leaf_hook_runs_before_accumulation() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    order: list[str] = []

    def hook(g: Tensor) -> Tensor:
        order.append("hook" if x.grad is None else "late")
        return g * 0.0 + 7.0

    x.register_hook(hook)
    (x * x).sum().backward()
    assert order == ["hook"]
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])


def test_remove_stops_the_hook_and_is_idempotent() -> None:
    x = ag.tensor([1.0], requires_grad=True)
    calls: list[int] = []
    handle = x.register_hook(lambda g: calls.append(1))
    count = fm.HOOKS.count
    (x * 2.0).sum().backward()
    handle.remove()
    handle.remove()
    assert fm.HOOKS.count == count - 1
    (x * 2.0).sum().backward()
    assert calls == [1]
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_several_hooks_run_in_order_each_on_the_previous_result() -> None:
    x = ag.tensor([1.0], requires_grad=True)
    y = x * 1.0
    y.register_hook(lambda g: g + 1.0)
    y.register_hook(lambda g: g * 3.0)
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_hooks_run_in_grad_and_create_graph() -> None:
    x = ag.tensor([2.0], dtype="float64", requires_grad=True)
    y = x * x
    y.register_hook(lambda g: g * 2.0)
    (g,) = ag.grad(y.sum(), x, create_graph=True)
    assert g is not None
    np.testing.assert_allclose(g.numpy(), [8.0])
    (h,) = ag.grad(g.sum(), x)
    assert h is not None
    np.testing.assert_allclose(h.numpy(), [4.0])


def test_hook_errors() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.tensor([1.0]).register_hook(lambda g: g)
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="must be callable"):
        x.register_hook(3)
    h = x.register_hook(lambda g: ag.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        (x * 1.0).sum().backward()
    h.remove()
    h2 = x.register_hook(lambda g: 5)
    with pytest.raises(TypeError, match="must return a Tensor or None"):
        (x * 1.0).sum().backward()
    h2.remove()


def test_a_dead_graph_releases_its_hooks_and_the_fast_engine_returns() -> None:
    gc.collect()
    before = fm.HOOKS.count
    x = ag.tensor([1.0], requires_grad=True)
    y = x * 2.0
    y.register_hook(lambda g: g)
    assert fm.HOOKS.count == before + 1
    del y
    assert fm.HOOKS.count == before


def test_the_general_engine_gives_the_fast_engines_gradients_bit_for_bit() -> None:
    def grads() -> list[np.ndarray]:
        ag.manual_seed(0)
        x = ag.randn(4, 5, requires_grad=True)
        w = ag.randn(5, 3, requires_grad=True)
        b = ag.randn(3, requires_grad=True)
        h = (x @ w + b).tanh()
        y = h.softmax() * h + (x * x).sum(axis=1, keepdims=True).sqrt().mean()
        y.sum().backward()
        return [t.grad.numpy().copy() for t in (x, w, b) if t.grad is not None]

    fast = grads()
    keep = ag.tensor([1.0], requires_grad=True)
    handle = keep.register_hook(lambda g: g)  # any live hook switches engines
    assert fm.HOOKS.count > 0
    general = grads()
    handle.remove()
    assert len(fast) == len(general) == 3
    for a, b in zip(fast, general, strict=True):
        np.testing.assert_array_equal(a, b)
