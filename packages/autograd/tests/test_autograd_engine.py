"""The engine: accumulation, graph shapes, retain_graph, errors, memory release, grad modes."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor

Arr = np.ndarray[Any, Any]


def test_readme_example() -> None:
    x = ag.tensor(2.0, requires_grad=True)
    y = ag.tensor(3.0, requires_grad=True)
    z = x * y + x**2
    z.backward()
    assert z.item() == 10.0
    assert x.grad is not None and x.grad.item() == 7.0
    assert y.grad is not None and y.grad.item() == 2.0


def test_gradients_accumulate_over_two_backward_calls() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_diamond_runs_each_node_once() -> None:
    calls = []

    class Spy(ag.Op):
        __slots__ = ()

        def forward(self, x: Arr) -> Arr:
            return x * 2

        def backward(self, grad: Arr) -> tuple[Arr]:
            calls.append(1)
            return (grad * 2,)

    x = ag.tensor([1.0, 2.0], requires_grad=True)
    s = Spy.apply(x)
    out = (s * s + s.exp()).sum()  # s feeds three paths
    out.backward()
    assert len(calls) == 1
    expected = 2 * (2 * (2 * x.numpy()) + np.exp(2 * x.numpy()))
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_leaf_used_twice_gets_the_summed_gradient() -> None:
    x = ag.tensor(3.0, requires_grad=True)
    (x * x * x).backward()
    assert x.grad is not None and x.grad.item() == pytest.approx(27.0)


def test_long_chain_has_no_recursion_limit() -> None:
    x = ag.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad is not None and x.grad.item() == 1.0


def test_second_backward_through_freed_graph_raises() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_with_gradient_argument() -> None:
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.backward(ag.tensor([1.0, 0.0, 10.0]))
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 20.0])


def test_backward_errors() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element outputs.*shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(
        RuntimeError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"
    ):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.tensor([1.0]).sum().backward()
    one = (x * 2)[:1]
    one.backward()  # shape (1,) is accepted without gradient
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0])


def test_non_leaf_grad_stays_none_and_is_leaf() -> None:
    x = ag.tensor([1.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None
    assert x.is_leaf and not y.is_leaf
    assert y.grad_fn is not None and y.grad_fn.name() == "MulBackward"
    acc, _ = y.grad_fn.next_functions[0]
    assert acc is not None and acc.name() == "AccumulateGrad"
    assert y.grad_fn.next_functions[1] == (None, 0)


def test_integer_tensors_cannot_require_grad() -> None:
    with pytest.raises(
        RuntimeError, match="only float tensors can require gradients, got dtype int64"
    ):
        ag.tensor([1, 2], requires_grad=True)
    t = ag.tensor([1, 2])
    with pytest.raises(RuntimeError, match="only float tensors"):
        t.requires_grad_()


def test_detach_and_requires_grad_() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = x * 2
    with pytest.raises(RuntimeError, match="only change requires_grad of leaf"):
        y.requires_grad_(False)
    z = ag.tensor([1.0]).requires_grad_()
    assert z.requires_grad and z.is_leaf


def test_grad_assignment() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    x.grad = ag.tensor([5.0, 5.0])
    x.grad = None
    assert x.grad is None
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        x.grad = ag.tensor([1.0, 2.0, 3.0])


# ---- in-place and versions -----------------------------------------------------------------


def test_inplace_on_leaf_requiring_grad_raises() -> None:
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        RuntimeError, match="leaf tensor that requires grad cannot be modified in place"
    ):
        w += 1
    with ag.no_grad():
        w -= 1
    np.testing.assert_allclose(w.numpy(), [0.0, 1.0])


def test_inplace_change_of_saved_tensor_raises_at_backward() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y.exp()  # saves its output
    z2 = (y * y).sum()  # saves y
    y.add_(1.0)
    with pytest.raises(
        RuntimeError, match="MulBackward: a tensor this op saved for backward was modified"
    ):
        z2.backward()
    assert z is not None


def test_autograd_through_inplace_on_non_leaf() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += 1
    y *= x
    y.sum().backward()
    # y = (2x + 1) x  ->  dy/dx = 4x + 1
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 9.0])
    assert y.grad_fn is not None


def test_inplace_ops_return_self_and_bump_version() -> None:
    t = ag.tensor([1.0, -2.0, 3.0])
    assert t.add_(1) is t and t.mul_(2) is t and t.sub_(1) is t and t.div_(2) is t
    assert t.clamp_(0.0, 2.0) is t and t.fill_(3.0) is t and t.zero_() is t
    assert t.copy_(ag.tensor([7.0, 8.0, 9.0])) is t
    np.testing.assert_allclose(t.numpy(), [7, 8, 9])
    assert t.version_counter().value == 8


def test_views_share_the_version_counter() -> None:
    x = ag.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = x[0]
    v.add_(1.0)
    np.testing.assert_allclose(x.numpy()[0], [2.0, 3.0])
    assert x.version_counter().value == 1


def test_setitem_records_gradients() -> None:
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = ag.tensor(10.0, requires_grad=True)
    y = x * 1.0
    y[1] = v * 2
    (y * ag.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad is not None and v.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 3.0])
    assert v.grad.item() == 4.0


# ---- memory ---------------------------------------------------------------------------------


def test_graph_is_freed_by_reference_counting_alone() -> None:
    gc.disable()
    try:
        x = ag.tensor(np.ones(10), requires_grad=True)
        y = (x * 2).exp()
        z = y.sum()
        node_ref = weakref.ref(z.grad_fn)
        y_ref = weakref.ref(y)
        del y
        assert y_ref() is None  # an intermediate dies when its last reference goes
        del z
        assert node_ref() is None
    finally:
        gc.enable()


def test_backward_frees_saved_arrays_even_while_output_lives() -> None:
    x = ag.tensor(np.ones(1000), requires_grad=True)
    y = x.exp()
    z = (y * y).sum()
    node = y.grad_fn
    assert node is not None
    z.backward()
    assert getattr(node, "s_y") is None  # noqa: B009
    assert z.grad_fn is not None


# ---- grad modes ------------------------------------------------------------------------------


def test_no_grad_enable_grad_nesting_and_decorators() -> None:
    x = ag.tensor([1.0], requires_grad=True)
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        assert not (x * 2).requires_grad
        with ag.enable_grad():
            assert (x * 2).requires_grad
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()

    @ag.no_grad()
    def f(t: Tensor) -> Tensor:
        return t * 2

    assert not f(x).requires_grad
    assert ag.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context() -> None:
    ag.set_grad_enabled(False)
    try:
        assert not ag.is_grad_enabled()
    finally:
        ag.set_grad_enabled(True)
    with ag.set_grad_enabled(False):
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()


def test_inference_mode() -> None:
    x = ag.tensor([1.0], requires_grad=True)
    with ag.inference_mode():
        assert not ag.is_grad_enabled()
        with ag.enable_grad():
            assert not ag.is_grad_enabled()
        assert not (x * 2).requires_grad
    assert ag.is_grad_enabled()


def test_grad_mode_is_per_thread() -> None:
    seen: list[bool] = []
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        started.set()
        release.wait(5)
        seen.append(ag.is_grad_enabled())

    th = threading.Thread(target=other)
    th.start()
    started.wait(5)
    with ag.no_grad():
        release.set()
        th.join()
    assert seen == [True]
