"""The public, PyTorch-style Function: ctx API, gradcheck, create_graph, multiple outputs,
non-differentiable outputs, errors."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Function, Tensor


class Cube(Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x**3 * scale

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        (x,) = ctx.saved_tensors
        return grad * 3.0 * x * x * ctx.scale, None


class ExpOut(Function):
    """Saves its own output."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        out: Tensor = grad * y
        return out


class SplitTwo(Function):
    """Two outputs: 2x and sin-free x*y."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(x, y)
        return x * 2.0, x * y

    @staticmethod
    def backward(ctx: Any, g1: Tensor, g2: Tensor) -> tuple[Tensor, Tensor]:
        x, y = ctx.saved_tensors
        return g1 * 2.0 + g2 * y, g2 * x


class ArgMaxAndMax(Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> tuple[Tensor, Tensor]:
        idx = int(np.argmax(x.numpy()))
        ctx.idx, ctx.shape = idx, x.shape
        index = ag.tensor(idx)
        ctx.mark_non_differentiable(index)
        return x[idx] * 1.0, index

    @staticmethod
    def backward(ctx: Any, g: Tensor, g_index: Tensor) -> Tensor:
        out = np.zeros(ctx.shape)
        out[ctx.idx] = g.item()
        return ag.tensor(out)


def _x(*values: float) -> Tensor:
    return ag.tensor(np.array(values), requires_grad=True)


def test_forward_backward_and_name() -> None:
    x = _x(1.0, 2.0)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn is not None and y.grad_fn.name() == "CubeBackward"
    np.testing.assert_allclose(y.numpy(), [2.0, 16.0])
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_gradcheck_and_gradgradcheck() -> None:
    assert ag.gradcheck(lambda a: Cube.apply(a, 0.5), [_x(0.3, -1.2, 2.0)])
    assert ag.gradgradcheck(lambda a: Cube.apply(a, 0.5), [_x(0.3, -1.2, 2.0)])
    assert ag.gradgradcheck(lambda a: ExpOut.apply(a) * a, [_x(0.3, -1.2)])
    assert ag.gradcheck(lambda a, b: SplitTwo.apply(a, b), [_x(0.5, 1.0), _x(2.0, -1.0)])
    assert ag.gradgradcheck(lambda a, b: SplitTwo.apply(a, b), [_x(0.5, 1.0), _x(2.0, -1.0)])


def test_create_graph_runs_backward_under_grad_mode() -> None:
    x = _x(0.5, 2.0)
    (g,) = ag.grad(Cube.apply(x, 1.0).sum(), x, create_graph=True)
    assert g is not None and g.requires_grad
    (h,) = ag.grad(g.sum(), x)
    assert h is not None
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


def test_needs_input_grad_and_non_tensor_arguments() -> None:
    seen: list[tuple[bool, ...]] = []

    class Spy(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor, k: int, b: Tensor) -> Tensor:
            seen.append(ctx.needs_input_grad)
            return a * b * float(k)

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
            return g, None, None

    a, b = _x(1.0), ag.tensor([2.0])
    Spy.apply(a, 3, b).sum().backward()
    assert seen == [(True, False, False)]
    assert a.grad is not None


def test_one_output_used_leaves_the_other_gradient_zero() -> None:
    x, y = _x(1.0, 2.0), _x(3.0, 4.0)
    first, second = SplitTwo.apply(x, y)
    assert first.grad_fn is not None and second.grad_fn is not None
    second.sum().backward()
    assert x.grad is not None and y.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), y.numpy())
    np.testing.assert_allclose(y.grad.numpy(), x.numpy())


def test_mark_non_differentiable() -> None:
    x = _x(1.0, 5.0, 2.0)
    value, index = ArgMaxAndMax.apply(x)
    assert not index.requires_grad and index.item() == 1
    assert value.requires_grad
    value.backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 0.0])


def test_no_graph_when_nothing_requires_grad_or_under_no_grad() -> None:
    y = Cube.apply(ag.tensor([1.0]), 1.0)
    assert y.grad_fn is None and not y.requires_grad
    with ag.no_grad():
        z = Cube.apply(_x(1.0), 1.0)
    assert z.grad_fn is None


def test_saved_tensors_raise_after_the_graph_was_freed() -> None:
    x = _x(1.0)
    y = Cube.apply(x, 1.0)
    y.backward()
    assert y.grad_fn is not None
    with pytest.raises(RuntimeError, match="CubeBackward: the saved tensors were freed"):
        y.grad_fn.saved_tensors  # noqa: B018
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_in_place_change_of_a_saved_input_is_detected() -> None:
    x = _x(1.0, 2.0)
    h = x * 1.0
    y = Cube.apply(h, 1.0)
    h.mul_(2.0)
    with pytest.raises(RuntimeError, match="CubeBackward: a tensor this op saved"):
        y.sum().backward()


def test_wrong_number_of_gradients_and_wrong_shapes_name_the_function() -> None:
    class TooFew(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
            return a * b

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> Tensor:
            return g

    class BadShape(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor) -> Tensor:
            return a * 2.0

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> Tensor:
            return ag.ones(5, dtype="float64")

    class GradForInt(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor, k: int) -> Tensor:
            return a * float(k)

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor]:
            return g, g

    x = _x(1.0, 2.0)
    with pytest.raises(RuntimeError, match=r"TooFew.backward returned 1 gradient\(s\).*took 2"):
        TooFew.apply(x, x).sum().backward()
    with pytest.raises(ValueError, match=r"BadShape.backward .*shape \(5,\) .*shape \(2,\)"):
        BadShape.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"GradForInt.backward .*argument 1, which is not"):
        GradForInt.apply(x, 3).sum().backward()

    class SavesInt(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor) -> Tensor:
            ctx.save_for_backward(3)
            return a

    with pytest.raises(TypeError, match="only Tensors"):
        SavesInt.apply(x)


def test_a_custom_node_keeps_no_tensor_alive() -> None:
    x = _x(1.0, 2.0)
    y = ExpOut.apply(x)
    assert y.grad_fn is not None
    node = weakref.ref(y.grad_fn)
    ref = weakref.ref(y)
    del y
    gc.disable()
    try:
        assert ref() is None and node() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_anomaly_mode_names_a_custom_function() -> None:
    class NaNBack(Function):
        @staticmethod
        def forward(ctx: Any, a: Tensor) -> Tensor:
            return a * 1.0

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> Tensor:
            return g * float("nan")

    x = _x(1.0)
    with ag.detect_anomaly():
        y = NaNBack.apply(x)
        with pytest.raises(RuntimeError, match=r"NaNBackBackward produced NaN.*test_autograd_"):
            y.backward()
