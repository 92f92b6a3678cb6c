"""create_graph=True: second derivatives of every op against finite differences of first
derivatives (gradgradcheck, float64), third derivatives, backward(create_graph=True)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.autograd as ag
from gradwise.autograd import Tensor
from gradwise.core.random import Generator

Fn = Callable[..., Any]


def _d(y: Tensor, x: Tensor, create_graph: bool = True) -> Tensor:
    """dy/dx (y summed), asserting it exists."""
    (g,) = ag.grad(y.sum(), x, create_graph=create_graph)
    assert g is not None
    return g


def _t(shape: tuple[int, ...], seed: int, low: float = -1.5, high: float = 1.5) -> Tensor:
    gen = Generator(seed)
    return ag.tensor(gen.uniform(shape, low, high, np.float64), requires_grad=True)


def _pos(shape: tuple[int, ...], seed: int) -> Tensor:
    return _t(shape, seed, 0.5, 2.0)


# (name, fn, inputs): every op with a double backward in PyTorch; inputs keep away from
# kinks (0 for relu/abs, ties for max/maximum) where finite differences are meaningless.
CASES: list[tuple[str, Fn, Callable[[], list[Tensor]]]] = [
    ("add_broadcast", lambda a, b: (a + b) * a, lambda: [_t((3, 4), 1), _t((4,), 2)]),
    ("sub", lambda a, b: (a - b) * b, lambda: [_t((3, 4), 1), _t((3, 1), 2)]),
    ("mul", lambda a, b: a * b, lambda: [_t((3, 4), 1), _t((4,), 2)]),
    ("div", lambda a, b: a / b, lambda: [_t((3, 4), 1), _pos((3, 4), 2)]),
    ("neg", lambda a: -a * a, lambda: [_t((5,), 1)]),
    ("pow_scalar", lambda a: a**3, lambda: [_t((5,), 1)]),
    ("pow_half", lambda a: a**0.5, lambda: [_pos((5,), 1)]),
    ("pow_tensor", lambda a, b: a**b, lambda: [_pos((4,), 1), _t((4,), 2)]),
    ("exp", lambda a: a.exp(), lambda: [_t((2, 3), 1)]),
    ("log", lambda a: a.log(), lambda: [_pos((2, 3), 1)]),
    ("sqrt", lambda a: a.sqrt(), lambda: [_pos((2, 3), 1)]),
    ("abs", lambda a: a.abs() * a, lambda: [_t((6,), 3)]),
    ("clip", lambda a: a.clip(-0.7, 0.9) * a, lambda: [_t((8,), 4)]),
    ("relu", lambda a: a.relu() * a, lambda: [_t((8,), 5)]),
    ("leaky_relu", lambda a: ag.leaky_relu(a, 0.2) * a, lambda: [_t((8,), 5)]),
    ("sigmoid", lambda a: a.sigmoid(), lambda: [_t((2, 3), 1)]),
    ("tanh", lambda a: a.tanh(), lambda: [_t((2, 3), 1)]),
    ("gelu", lambda a: ag.gelu(a), lambda: [_t((2, 3), 1)]),
    ("gelu_tanh", lambda a: ag.gelu(a, approximate="tanh"), lambda: [_t((2, 3), 1)]),
    ("silu", lambda a: ag.silu(a), lambda: [_t((2, 3), 1)]),
    ("softplus", lambda a: ag.softplus(a, beta=2.0), lambda: [_t((2, 3), 1)]),
    ("sum_axis", lambda a: (a * a).sum(axis=1), lambda: [_t((3, 4), 1)]),
    ("sum_all_keepdims", lambda a: (a * a).sum(keepdims=True) * a, lambda: [_t((3, 2), 1)]),
    ("mean", lambda a: (a * a).mean(axis=0, keepdims=True), lambda: [_t((3, 4), 1)]),
    ("max", lambda a: (a * a).max(axis=1), lambda: [_t((3, 4), 6)]),
    ("min", lambda a: (a * a * a).min(), lambda: [_t((3, 4), 6)]),
    ("var", lambda a: a.var(axis=1), lambda: [_t((3, 4), 1)]),
    ("var_ddof", lambda a: a.var(ddof=1), lambda: [_t((5,), 1)]),
    ("std", lambda a: a.std(axis=0, keepdims=True, ddof=1), lambda: [_t((4, 3), 1)]),
    ("softmax", lambda a: a.softmax(axis=0), lambda: [_t((3, 4), 1)]),
    ("log_softmax", lambda a: a.log_softmax(), lambda: [_t((3, 4), 1)]),
    ("logsumexp", lambda a: a.logsumexp(axis=1), lambda: [_t((3, 4), 1)]),
    ("logsumexp_keep", lambda a: ag.logsumexp(a, (0, 1), keepdims=True), lambda: [_t((3, 2), 1)]),
    ("matmul_2d", lambda a, b: a @ b, lambda: [_t((3, 4), 1), _t((4, 2), 2)]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda: [_t((4,), 1), _t((4, 2), 2)]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda: [_t((3, 4), 1), _t((4,), 2)]),
    ("matmul_vec_vec", lambda a, b: a @ b, lambda: [_t((4,), 1), _t((4,), 2)]),
    ("matmul_batched", lambda a, b: a @ b, lambda: [_t((2, 3, 4), 1), _t((4, 2), 2)]),
    ("reshape", lambda a: a.reshape(6) * a.reshape(6), lambda: [_t((2, 3), 1)]),
    ("permute", lambda a: a.permute(1, 0) * a.T, lambda: [_t((3, 3), 1)]),
    ("squeeze_unsqueeze", lambda a: a.unsqueeze(0).squeeze() * a, lambda: [_t((3,), 1)]),
    ("expand", lambda a: a.expand(3, 4) * a.expand(3, 4), lambda: [_t((1, 4), 1)]),
    ("getitem_basic", lambda a: a[1:, ::2] * a[1:, ::2], lambda: [_t((3, 4), 1)]),
    (
        "getitem_advanced",
        lambda a: a[np.array([0, 2, 0])] * a[np.array([0, 2, 0])],
        lambda: [_t((3, 2), 1)],
    ),
    ("getitem_mask", lambda a: a[a.data > 0] ** 3, lambda: [_t((3, 4), 7)]),
    ("cat", lambda a, b: ag.cat([a * b, b], axis=1) ** 2, lambda: [_t((2, 3), 1), _t((2, 3), 2)]),
    ("stack", lambda a, b: ag.stack([a, a * b], axis=1) ** 2, lambda: [_t((3,), 1), _t((3,), 2)]),
    (
        "where",
        lambda a, b: ag.where(a.data > 0, a * a, b * a),
        lambda: [_t((3, 4), 8), _t((3, 4), 9)],
    ),
    ("maximum", lambda a, b: ag.maximum(a, b) * a, lambda: [_t((3, 4), 1), _t((3, 4), 2)]),
    ("minimum", lambda a, b: ag.minimum(a, b) * b, lambda: [_t((3, 4), 1), _t((4,), 2)]),
    ("clone", lambda a: a.clone() * a, lambda: [_t((3,), 1)]),
]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_finite_differences(name: str, fn: Fn, make: Any) -> None:
    assert ag.gradgradcheck(fn, make())


def test_dropout_second_derivative() -> None:
    def fn(a: Tensor) -> Tensor:
        ag.manual_seed(3)
        return ag.dropout(a, 0.4) * a

    assert ag.gradgradcheck(fn, [_t((10,), 1)])


def _inplace_add(a: Tensor, b: Tensor) -> Tensor:
    h = a * 1.0
    h += b
    h *= a
    h /= b
    h -= a
    return h


def _inplace_setitem(a: Tensor, b: Tensor) -> Tensor:
    h = a * a
    h[0] = b[1] * b[1]
    return h


def _inplace_view(a: Tensor, b: Tensor) -> Tensor:
    h = a * a
    h[1].mul_(b[0])  # a write through a view: WriteBack/Gather nodes
    return h * 1.0


def _inplace_clamp(a: Tensor, b: Tensor) -> Tensor:
    h = a * b
    h.clamp_(-0.5, 0.5)
    return h * a


@pytest.mark.parametrize("fn", [_inplace_add, _inplace_setitem, _inplace_view, _inplace_clamp])
def test_second_derivatives_through_inplace_ops(fn: Fn) -> None:
    assert ag.gradgradcheck(fn, [_t((2, 3), 11), _pos((2, 3), 12)])


def test_third_derivative() -> None:
    x = ag.tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True)
    y = x.tanh() * x.exp()
    g3 = _d(_d(_d(y, x), x), x, create_graph=False)
    # numeric third derivative: central differences of the analytic second derivative
    eps = 1e-5

    def second(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        t = ag.tensor(v, requires_grad=True)
        f = t.tanh() * t.exp()
        return _d(_d(f, t), t, create_graph=False).numpy()

    xd = x.numpy()
    numeric = (second(xd + eps) - second(xd - eps)) / (2 * eps)
    np.testing.assert_allclose(g3.numpy(), numeric, rtol=1e-5, atol=1e-6)


def test_third_derivative_of_cube_is_six() -> None:
    x = ag.tensor([1.0, -2.0, 0.5], dtype="float64", requires_grad=True)
    g = _d(x**3, x)
    h = _d(g, x)
    t = _d(h, x, create_graph=False)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    np.testing.assert_allclose(t.numpy(), [6.0, 6.0, 6.0])


def test_backward_create_graph_gives_a_differentiable_grad() -> None:
    x = ag.tensor([0.5, 1.5], dtype="float64", requires_grad=True)
    y = (x**3).sum()
    y.backward(create_graph=True)
    assert x.grad is not None and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)
    g = x.grad
    x.grad = None
    g.sum().backward()  # d/dx sum(3 x^2) = 6 x
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_create_graph_retains_the_graph_and_accumulates_out_of_place() -> None:
    x = ag.tensor([2.0], dtype="float64", requires_grad=True)
    y = x * x
    y.backward(create_graph=True)
    y.backward(create_graph=True)  # the graph was retained
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [8.0])
    assert x.grad.requires_grad


def test_float32_stays_float32_in_double_backward() -> None:
    x = ag.tensor([0.5, 1.0, 2.0], requires_grad=True)
    g = _d(x.tanh() * x * 2.0, x)
    h = _d(g, x, create_graph=False)
    assert g.dtype == np.float32 and h.dtype == np.float32


def test_an_op_without_double_backward_raises_naming_it() -> None:
    from gradwise.autograd.function import Grads, Op

    class Once(Op):
        __slots__ = ()

        def forward(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            return x * 2

        def backward(self, grad: np.ndarray[Any, Any]) -> Grads:
            return (grad * 2,)

    x = ag.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="OnceBackward: double backward"):
        ag.grad(Once.apply(x).sum(), x, create_graph=True)


@settings(deadline=None, max_examples=15)
@given(
    rows=st.integers(1, 3),
    cols=st.integers(1, 4),
    bcast=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_second_derivatives_with_broadcasting(rows: int, cols: int, bcast: bool, seed: int) -> None:
    a = _t((rows, cols), seed)
    b = _t((cols,) if bcast else (rows, cols), seed + 1)
    assert ag.gradgradcheck(lambda u, v: (u * v).tanh() * v + (u - v).exp(), [a, b])


def test_mixed_dtypes_cast_gradients_back() -> None:
    a = ag.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = ag.tensor(np.array([0.5, 0.25]), requires_grad=True)  # float64
    (ga, gb) = ag.grad((a * b * b).sum(), [a, b], create_graph=True)
    assert ga is not None and gb is not None
    assert ga.dtype == np.float32 and gb.dtype == np.float64
    np.testing.assert_allclose(gb.numpy(), 2 * a.numpy() * b.numpy(), rtol=1e-6)
