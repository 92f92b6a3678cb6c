"""Every op: float64 gradcheck over broadcasting, scalar, 0-d, size-1, empty and
non-contiguous inputs; forward values against NumPy in float32 and float64."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.autograd as ag
from gradwise.autograd import Tensor, gradcheck

Arr = np.ndarray[Any, Any]
Shape = tuple[int, ...]


def _inputs(shapes: list[Shape], rng: np.random.Generator, positive: bool = False) -> list[Tensor]:
    out = []
    for s in shapes:
        a = rng.standard_normal(s)
        if positive:
            a = np.abs(a) + 0.5
        out.append(ag.tensor(a, requires_grad=True))
    return out


BINARY: list[tuple[str, Callable[[Tensor, Tensor], Tensor], Callable[[Arr, Arr], Arr]]] = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / b, np.divide),
    ("maximum", ag.maximum, np.maximum),
    ("minimum", ag.minimum, np.minimum),
    ("pow", lambda a, b: a**b, np.power),
]
PAIRS: list[tuple[Shape, Shape]] = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((), (3,)),
    ((1,), (2, 1)),
    ((0, 3), (3,)),
]


@pytest.mark.parametrize(("name", "fn", "ref"), BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize(("sa", "sb"), PAIRS, ids=str)
def test_binary_ops_gradcheck(
    name: str, fn: Any, ref: Any, sa: Shape, sb: Shape, rng: np.random.Generator
) -> None:
    a, b = _inputs([sa, sb], rng, positive=name in ("pow", "div"))
    y = fn(a, b)
    np.testing.assert_allclose(y.numpy(), ref(a.numpy(), b.numpy()), rtol=1e-12)
    assert gradcheck(fn, (a, b))


@pytest.mark.parametrize(("name", "fn", "ref"), BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_ops_keep_dtype_with_scalars(
    name: str, fn: Any, ref: Any, dtype: type, rng: np.random.Generator
) -> None:
    a = ag.tensor((np.abs(rng.standard_normal((3, 4))) + 0.5).astype(dtype))
    for scalar in (2, 2.5, np.float64(2.5), np.array(2.5)):
        y = fn(a, scalar)
        assert y.dtype == dtype, (name, type(scalar))
        np.testing.assert_allclose(
            y.numpy(), ref(a.numpy(), np.asarray(scalar, dtype=dtype)), rtol=1e-6
        )
        r = fn(scalar, a)
        assert r.dtype == dtype
        assert isinstance(r, Tensor)


def test_numpy_array_on_the_left_returns_a_tensor_with_graph() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor) and y.requires_grad
    z = np.float64(2.0) + x
    assert isinstance(z, Tensor) and z.dtype == np.float32
    (y.sum() + z.sum()).backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 5.0])


def test_mixed_float_dtypes_promote_as_numpy() -> None:
    a = ag.tensor(np.ones(3, np.float32), requires_grad=True)
    b = ag.tensor(np.ones(3, np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad is not None and a.grad.dtype == np.float32
    assert b.grad is not None and b.grad.dtype == np.float64
    zero_d = ag.tensor(np.array(2.0))  # 0-d float64: weak
    assert (a * zero_d).dtype == np.float32


UNARY: list[tuple[str, Callable[[Tensor], Tensor], Callable[[Arr], Arr], bool]] = [
    ("neg", lambda x: -x, np.negative, False),
    ("exp", ag.exp, np.exp, False),
    ("log", ag.log, np.log, True),
    ("sqrt", ag.sqrt, np.sqrt, True),
    ("abs", ag.abs, np.abs, False),
    ("pow3", lambda x: x**3, lambda x: x**3, False),
    ("pow_half", lambda x: x**0.5, np.sqrt, True),
    ("pow0", lambda x: x**0, lambda x: x**0, False),
    ("rpow", lambda x: 2.0**x, lambda x: 2.0**x, False),
    ("clip", lambda x: ag.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), False),
    ("clip_low", lambda x: x.clip(min=0.1), lambda x: np.clip(x, 0.1, None), False),
    ("relu", ag.relu, lambda x: np.maximum(x, 0), False),
    ("leaky_relu", lambda x: ag.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), False),
    ("sigmoid", ag.sigmoid, lambda x: 1 / (1 + np.exp(-x)), False),
    ("tanh", ag.tanh, np.tanh, False),
    (
        "gelu",
        ag.gelu,
        lambda x: 0.5 * x * (1 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2))),
        False,
    ),
    (
        "gelu_tanh",
        lambda x: ag.gelu(x, "tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        False,
    ),
    ("silu", ag.silu, lambda x: x / (1 + np.exp(-x)), False),
    ("softplus", ag.softplus, lambda x: np.logaddexp(0, x), False),
]
UNARY_SHAPES: list[Shape] = [(), (1,), (5,), (3, 4), (2, 0, 3)]


@pytest.mark.parametrize(("name", "fn", "ref", "positive"), UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
def test_unary_ops_gradcheck(
    name: str, fn: Any, ref: Any, positive: bool, shape: Shape, rng: np.random.Generator
) -> None:
    (x,) = _inputs([shape], rng, positive)
    if name.startswith("clip") or name in ("relu", "leaky_relu", "abs"):
        x.data[np.abs(x.data - 0.1) < 1e-3] += 0.01  # keep clear of kinks for finite differences
    np.testing.assert_allclose(fn(x).numpy(), ref(x.numpy()), rtol=1e-10, atol=1e-12)
    assert gradcheck(fn, (x,))


@pytest.mark.parametrize(("name", "fn", "ref", "positive"), UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_keep_float32(
    name: str, fn: Any, ref: Any, positive: bool, rng: np.random.Generator
) -> None:
    x = ag.tensor(
        (
            np.abs(rng.standard_normal((4, 5))) + 0.5 if positive else rng.standard_normal((4, 5))
        ).astype(np.float32),
        requires_grad=True,
    )
    y = fn(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ref(x.numpy().astype(np.float64)), rtol=2e-5, atol=1e-6)
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32


AXES: list[Any] = [None, 0, -1, (0, 2), (-1, 0)]


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("sum", lambda x, a, k: x.sum(a, k)),
        ("mean", lambda x, a, k: x.mean(a, k)),
        ("max", lambda x, a, k: x.max(a, k)),
        ("min", lambda x, a, k: x.min(a, k)),
        ("var", lambda x, a, k: x.var(a, k)),
        ("var_ddof1", lambda x, a, k: x.var(a, k, ddof=1)),
        ("std", lambda x, a, k: x.std(a, k)),
        ("logsumexp", lambda x, a, k: x.logsumexp(a, k)),
    ],
)
def test_reductions_gradcheck(
    name: str, fn: Any, axis: Any, keepdims: bool, rng: np.random.Generator
) -> None:
    (x,) = _inputs([(2, 3, 4)], rng)
    y = fn(x, axis, keepdims)
    refs: dict[str, Callable[[Arr], Arr]] = {
        "sum": lambda a: a.sum(axis=axis, keepdims=keepdims),
        "mean": lambda a: a.mean(axis=axis, keepdims=keepdims),
        "max": lambda a: a.max(axis=axis, keepdims=keepdims),
        "min": lambda a: a.min(axis=axis, keepdims=keepdims),
        "var": lambda a: a.var(axis=axis, keepdims=keepdims),
        "var_ddof1": lambda a: a.var(axis=axis, keepdims=keepdims, ddof=1),
        "std": lambda a: a.std(axis=axis, keepdims=keepdims),
        "logsumexp": lambda a: np.log(np.exp(a).sum(axis=axis, keepdims=keepdims)),
    }
    ref = refs[name]
    np.testing.assert_allclose(y.numpy(), ref(x.numpy()), rtol=1e-10)
    assert gradcheck(lambda t: fn(t, axis, keepdims), (x,))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_gradcheck(name: str, axis: int, rng: np.random.Generator) -> None:
    (x,) = _inputs([(3, 4)], rng)
    fn: Callable[[Tensor], Tensor] = (
        (lambda t: t.softmax(axis)) if name == "softmax" else (lambda t: t.log_softmax(axis))
    )
    e = np.exp(x.numpy() - x.numpy().max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(fn(x).numpy(), p if name == "softmax" else np.log(p), rtol=1e-10)
    assert gradcheck(fn, (x,))


MATMUL_SHAPES: list[tuple[Shape, Shape]] = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES, ids=str)
def test_matmul_gradcheck(sa: Shape, sb: Shape, rng: np.random.Generator) -> None:
    a, b = _inputs([sa, sb], rng)
    np.testing.assert_allclose((a @ b).numpy(), np.matmul(a.numpy(), b.numpy()), rtol=1e-12)
    assert gradcheck(lambda p, q: p @ q, (a, b))
    assert gradcheck(
        lambda p, q: ag.matmul(p.mT if p.ndim > 1 else p, q) if p.ndim < 2 else (p.mT.mT @ q),
        (a, b),
    )


SHAPE_OPS: list[tuple[str, Callable[[Tensor], Tensor], Callable[[Arr], Arr]]] = [
    ("reshape", lambda x: x.reshape(4, 6), lambda a: a.reshape(4, 6)),
    ("reshape_tuple", lambda x: x.reshape((-1, 3)), lambda a: a.reshape(-1, 3)),
    ("view", lambda x: x.view(24), lambda a: a.reshape(24)),
    ("flatten", lambda x: x.flatten(), lambda a: a.reshape(-1)),
    ("flatten1", lambda x: x.flatten(1), lambda a: a.reshape(2, -1)),
    ("transpose", lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("T", lambda x: x.T, lambda a: a.T),
    ("mT", lambda x: x.mT, lambda a: a.swapaxes(-1, -2)),
    ("permute", lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("unsqueeze", lambda x: x.unsqueeze(1), lambda a: a[:, None]),
    ("unsqueeze_neg", lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
    ("squeeze", lambda x: x.unsqueeze(0).squeeze(), lambda a: a),
    (
        "expand",
        lambda x: x.unsqueeze(0).expand(2, -1, -1, -1),
        lambda a: np.broadcast_to(a, (2, *a.shape)),
    ),
    (
        "broadcast_to",
        lambda x: x[:, :1].broadcast_to((2, 3, 4)),
        lambda a: np.broadcast_to(a[:, :1], (2, 3, 4)),
    ),
    ("getitem_int", lambda x: x[1], lambda a: a[1]),
    ("getitem_slice", lambda x: x[:, 1:3, ::2], lambda a: a[:, 1:3, ::2]),
    ("getitem_none_ellipsis", lambda x: x[None, ..., 0], lambda a: a[None, ..., 0]),
    ("getitem_neg", lambda x: x[-1, -2], lambda a: a[-1, -2]),
    ("getitem_mask", lambda x: x[x > 0], lambda a: a[a > 0]),
    ("getitem_repeat", lambda x: x[:, [0, 0, 2, 0]], lambda a: a[:, [0, 0, 2, 0]]),
    ("getitem_array", lambda x: x[np.array([1, 0, 1])], lambda a: a[np.array([1, 0, 1])]),
    ("getitem_tensor", lambda x: x[ag.tensor([1, 1])], lambda a: a[np.array([1, 1])]),
    ("cat", lambda x: ag.cat([x, x * 2], axis=1), lambda a: np.concatenate([a, a * 2], axis=1)),
    (
        "cat_neg",
        lambda x: ag.cat([x[:, :1], x], axis=-2),
        lambda a: np.concatenate([a[:, :1], a], axis=-2),
    ),
    ("stack", lambda x: ag.stack([x, x + 1], axis=1), lambda a: np.stack([a, a + 1], axis=1)),
    ("where", lambda x: ag.where(x > 0, x, x * x), lambda a: np.where(a > 0, a, a * a)),
    ("where_scalar", lambda x: ag.where(x > 0, x, 0.0), lambda a: np.where(a > 0, a, 0.0)),
    ("clone", lambda x: x.clone(), lambda a: a.copy()),
]


@pytest.mark.parametrize(("name", "fn", "ref"), SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_and_index_ops_gradcheck(
    name: str, fn: Any, ref: Any, rng: np.random.Generator
) -> None:
    (x,) = _inputs([(2, 3, 4)], rng)
    np.testing.assert_array_equal(fn(x).numpy(), ref(x.numpy()))
    assert gradcheck(fn, (x,))


def test_repeated_indices_accumulate() -> None:
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[ag.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_non_contiguous_inputs(rng: np.random.Generator) -> None:
    base = ag.tensor(rng.standard_normal((6, 8)), requires_grad=True)
    t = base.T[::2]  # a strided, transposed view
    assert not t.numpy().flags.c_contiguous
    fns: list[Callable[[Tensor], Tensor]] = [
        ag.exp,
        ag.relu,
        lambda u: u.softmax(0),
        lambda u: u.sum(1),
        lambda u: u @ u.T,
    ]
    for fn in fns:
        assert gradcheck(lambda b, f=fn: f(b.T[::2]), (base,))


def test_dropout_scales_and_masks() -> None:
    ag.manual_seed(0)
    x = ag.ones(1000, requires_grad=True)
    y = ag.dropout(x, 0.25, training=True)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.85
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1 / 0.75, 0.0), rtol=1e-6)
    assert ag.dropout(x, 0.5, training=False) is x
    ag.manual_seed(0)
    np.testing.assert_array_equal(ag.dropout(x, 0.25).numpy(), y.numpy())


# ---- property tests -----------------------------------------------------------------------


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[Shape, Shape]:
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
    )
    return shapes.input_shapes[0], shapes.input_shapes[1]


@given(pair=broadcast_pair(), op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
def test_broadcast_gradients_sum_back_to_each_input(pair: tuple[Shape, Shape], op: str) -> None:
    rng = np.random.default_rng(0)
    a = ag.tensor(rng.standard_normal(pair[0]), requires_grad=True)
    b = ag.tensor(np.abs(rng.standard_normal(pair[1])) + 0.5, requires_grad=True)
    fn = {"add": ag.add, "sub": ag.sub, "mul": ag.mul, "div": ag.div, "maximum": ag.maximum}[op]
    out = fn(a, b)
    out.sum().backward()
    assert a.grad is not None and a.grad.shape == a.shape
    assert b.grad is not None and b.grad.shape == b.shape
    assert gradcheck(fn, (a, b))


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), data=st.data())
def test_sum_over_any_axes_property(shape: Shape, data: st.DataObject) -> None:
    axes = data.draw(
        st.lists(
            st.integers(-len(shape), len(shape) - 1),
            unique_by=lambda a: a % len(shape),
            max_size=len(shape),
        )
    )
    x = ag.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    axis = tuple(axes) if axes else None
    y = x.sum(axis, keepdims=True)
    np.testing.assert_allclose(y.numpy(), x.numpy().sum(axis=axis, keepdims=True), rtol=1e-12)
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.ones(shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("name", "fn", "ref"),
    [
        ("sum", lambda x: x.sum((0, -1)), lambda a: a.sum(axis=(0, -1))),
        ("mean", lambda x: x.mean(-1, keepdims=True), lambda a: a.mean(axis=-1, keepdims=True)),
        ("max", lambda x: x.max(1), lambda a: a.max(axis=1)),
        ("min", lambda x: x.min(), lambda a: a.min()),
        ("var", lambda x: x.var(0, ddof=1), lambda a: a.var(axis=0, ddof=1)),
        ("std", lambda x: x.std(), lambda a: a.std()),
        ("softmax", lambda x: x.softmax(1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True)),
        ("logsumexp", lambda x: x.logsumexp(-1), lambda a: np.log(np.exp(a).sum(-1))),
        ("matmul", lambda x: x @ x.mT, lambda a: a @ a.swapaxes(-1, -2)),
        ("getitem", lambda x: x[:, 1, ::2], lambda a: a[:, 1, ::2]),
        ("cat", lambda x: ag.cat([x, x], 2), lambda a: np.concatenate([a, a], 2)),
    ],
)
def test_forward_values_keep_dtype(
    name: str, fn: Any, ref: Any, dtype: type, rng: np.random.Generator
) -> None:
    x = ag.tensor(rng.standard_normal((2, 3, 4)).astype(dtype), requires_grad=True)
    y = fn(x)
    assert y.dtype == dtype
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.numpy(), ref(x.numpy().astype(np.float64)), rtol=tol, atol=tol)
    y.sum().backward()
    assert x.grad is not None
    assert x.grad.dtype == dtype


@pytest.mark.parametrize(
    "scalar", [2, 0.5, np.float64(1.5), np.float32(3.0), np.array(2.0)], ids=repr
)
def test_gradcheck_with_python_and_numpy_scalars(scalar: Any, rng: np.random.Generator) -> None:
    (x,) = _inputs([(3, 2)], rng, positive=True)
    for fn in (
        lambda t: t * scalar,
        lambda t: scalar - t,
        lambda t: t / scalar,
        lambda t: scalar / t,
        lambda t: t**scalar,
        lambda t: ag.maximum(t, scalar),
    ):
        assert gradcheck(fn, (x,))
