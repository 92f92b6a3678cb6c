"""Forward mode: every op's jvp rule against Jacobians built row by row with reverse mode
(``grad``), against central finite differences; ``jacobian`` in both modes; dual tensors;
errors; dtypes; no tangent outside a dual level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.autograd as ag
from gradwise.autograd import forward_ad as fwd
from gradwise.autograd.function import Function, Grads
from gradwise.core.dtypes import Array

F64 = np.float64
Fn = Callable[..., ag.Tensor]


def _rev_jacobian(fn: Fn, xs: list[Array]) -> list[Array]:
    """d out / d x_j as (out.size, x_j.size) blocks, one reverse pass (grad) per output element."""
    leaves = [ag.tensor(x, requires_grad=True) for x in xs]
    out = fn(*leaves)
    blocks = [np.zeros((out.size, x.size)) for x in xs]
    if not out.requires_grad:
        return blocks
    for k in range(out.size):
        seed = np.zeros(out.shape)
        seed.reshape(-1)[k] = 1.0
        gs = ag.grad(out, leaves, ag.tensor(seed), retain_graph=True, allow_unused=True)
        for j, g in enumerate(gs):
            if g is not None:
                blocks[j][k] = g.numpy().reshape(-1)
    return blocks


def _fd(fn: Fn, xs: list[Array], vs: list[Array], h: float = 1e-6) -> Array:
    """Central difference of fn along the direction vs."""
    plus = fn(*[ag.tensor(x + h * v) for x, v in zip(xs, vs, strict=True)]).numpy()
    minus = fn(*[ag.tensor(x - h * v) for x, v in zip(xs, vs, strict=True)]).numpy()
    return np.asarray((plus - minus) / (2 * h))


def _check(fn: Fn, xs: list[Array], seed: int = 0, fd: bool = True) -> None:
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(x.shape) for x in xs]
    out, tangent = ag.jvp(fn, tuple(ag.tensor(x) for x in xs), tuple(ag.tensor(v) for v in vs))
    assert tangent.shape == out.shape
    assert tangent.dtype == out.dtype == F64
    blocks = _rev_jacobian(fn, xs)
    expected = sum(
        (b @ v.reshape(-1) for b, v in zip(blocks, vs, strict=True)), np.zeros(out.size)
    ).reshape(out.shape)
    np.testing.assert_allclose(tangent.numpy(), expected, rtol=1e-10, atol=1e-12)
    if fd:
        np.testing.assert_allclose(tangent.numpy(), _fd(fn, xs, vs), rtol=1e-5, atol=1e-6)


def _r(*shape: int, seed: int = 1, lo: float | None = None) -> Array:
    x = np.random.default_rng(seed + 7 * len(shape)).standard_normal(shape)
    if lo is not None:
        x = np.abs(x) + lo
    return x


def _dropout(x: ag.Tensor) -> ag.Tensor:
    ag.manual_seed(3)  # the same mask at every call
    return ag.dropout(x, 0.4)


# (name, function, inputs): broadcasting, 0-d, size-1 and empty axes
OPS: list[tuple[str, Fn, list[Array]]] = [
    ("add", lambda a, b: a + b, [_r(2, 3), _r(3)]),
    ("add 0-d", lambda a, b: a + b, [_r(), _r(4)]),
    ("add empty", lambda a, b: a + b, [_r(0, 3), _r(3)]),
    ("sub", lambda a, b: a - b, [_r(2, 1), _r(1, 3)]),
    ("mul", lambda a, b: a * b, [_r(2, 3), _r(2, 1)]),
    ("mul scalar", lambda a: a * 3.0 - 1.0, [_r(3)]),
    ("div", lambda a, b: a / b, [_r(2, 3), _r(3, lo=0.5)]),
    ("rdiv", lambda a: 2.0 / a, [_r(3, lo=0.5)]),
    ("neg", lambda a: -a, [_r(2, 2)]),
    ("pow tensor", lambda a, b: a**b, [_r(2, 3, lo=0.3), _r(3)]),
    ("pow 3", lambda a: a**3, [_r(4)]),
    ("pow 2", lambda a: a**2, [_r(4)]),
    ("pow 0.5", lambda a: a**0.5, [_r(4, lo=0.2)]),
    ("pow 0", lambda a: a**0, [_r(4)]),
    ("rpow", lambda a: 2.0**a, [_r(4)]),
    ("exp", ag.exp, [_r(2, 3)]),
    ("log", ag.log, [_r(2, 3, lo=0.2)]),
    ("sqrt", ag.sqrt, [_r(1, 3, lo=0.2)]),
    ("abs", ag.abs, [_r(5)]),
    ("clip", lambda a: ag.clip(a, -0.5, 0.5), [_r(3, 4)]),
    ("clip lo", lambda a: ag.clip(a, min=0.1), [_r(6)]),
    ("relu", ag.relu, [_r(3, 4)]),
    ("leaky_relu", lambda a: ag.leaky_relu(a, 0.2), [_r(3, 4)]),
    ("sigmoid", ag.sigmoid, [_r(3, 4)]),
    ("tanh", ag.tanh, [_r(3, 4)]),
    ("gelu", ag.gelu, [_r(3, 4)]),
    ("gelu tanh", lambda a: ag.gelu(a, "tanh"), [_r(3, 4)]),
    ("silu", ag.silu, [_r(3, 4)]),
    ("softplus", lambda a: ag.softplus(a, beta=2.0, threshold=1.0), [_r(3, 4)]),
    ("maximum", ag.maximum, [_r(2, 3), _r(3)]),
    ("minimum", ag.minimum, [_r(2, 3), _r(2, 1)]),
    ("where", lambda a, b: ag.where(_r(2, 3) > 0, a, b), [_r(2, 3), _r(3)]),
    ("where scalar", lambda a: ag.where(_r(4) > 0, a, 0.0), [_r(4)]),
    ("dropout", _dropout, [_r(4, 5)]),
    ("sum", lambda a: a.sum(), [_r(2, 3)]),
    ("sum axis", lambda a: a.sum(axis=1, keepdims=True), [_r(2, 3, 4)]),
    ("sum axes", lambda a: a.sum(axis=(0, 2)), [_r(2, 3, 4)]),
    ("sum empty", lambda a: a.sum(axis=0), [_r(0, 3)]),
    ("sum 0-d", lambda a: a.sum(), [_r()]),
    ("mean", lambda a: a.mean(axis=0), [_r(3, 2)]),
    ("mean all", lambda a: a.mean(), [_r(3, 2)]),
    ("max", lambda a: a.max(axis=1), [_r(3, 4)]),
    ("max all", lambda a: a.max(), [_r(3, 4)]),
    ("min keepdims", lambda a: a.min(axis=0, keepdims=True), [_r(3, 4)]),
    ("var", lambda a: a.var(axis=1), [_r(3, 4)]),
    ("var ddof", lambda a: a.var(ddof=1), [_r(3, 4)]),
    ("std", lambda a: a.std(axis=0, keepdims=True, ddof=1), [_r(3, 4)]),
    ("softmax", lambda a: a.softmax(axis=1), [_r(3, 4)]),
    ("softmax 0", lambda a: a.softmax(axis=0), [_r(3, 4)]),
    ("log_softmax", lambda a: a.log_softmax(), [_r(3, 4)]),
    ("logsumexp", lambda a: a.logsumexp(axis=1), [_r(3, 4)]),
    ("logsumexp all", lambda a: ag.logsumexp(a, axis=None, keepdims=True), [_r(3, 4)]),
    ("matmul 2-D", lambda a, b: a @ b, [_r(2, 3), _r(3, 4)]),
    ("matmul 1-D", lambda a, b: a @ b, [_r(3), _r(3)]),
    ("matmul mv", lambda a, b: a @ b, [_r(2, 3), _r(3)]),
    ("matmul vm", lambda a, b: a @ b, [_r(3), _r(3, 2)]),
    ("matmul batched", lambda a, b: a @ b, [_r(2, 1, 2, 3), _r(4, 3, 2)]),
    ("matmul empty", lambda a, b: a @ b, [_r(0, 3), _r(3, 2)]),
    ("reshape", lambda a: a.reshape(3, -1), [_r(2, 3)]),
    ("flatten", lambda a: a.flatten(), [_r(2, 3, 1)]),
    ("transpose", lambda a: a.transpose(0, 2), [_r(2, 3, 4)]),
    ("T", lambda a: a.T * 2.0, [_r(2, 3)]),
    ("mT", lambda a: a.mT, [_r(2, 3, 4)]),
    ("permute", lambda a: a.permute(2, 0, 1), [_r(2, 3, 4)]),
    ("squeeze", lambda a: a.squeeze(), [_r(1, 3, 1)]),
    ("unsqueeze", lambda a: a.unsqueeze(0), [_r(3)]),
    ("expand", lambda a: a.expand(2, -1, 3) * 1.0, [_r(4, 1)]),
    ("broadcast_to", lambda a: ag.broadcast_to(a, (2, 3)) + 0.0, [_r(3)]),
    ("getitem basic", lambda a: a[1:, ::2], [_r(3, 4)]),
    ("getitem int", lambda a: a[1], [_r(3, 4)]),
    ("getitem one", lambda a: a[2], [_r(4)]),
    ("getitem repeat", lambda a: a[np.array([0, 2, 0])], [_r(3, 2)]),
    ("getitem mask", lambda a: a[np.array([True, False, True])], [_r(3, 2)]),
    ("getitem none", lambda a: a[None, ..., 0], [_r(3, 2)]),
    ("cat", lambda a, b: ag.cat([a, b], axis=1), [_r(2, 3), _r(2, 1)]),
    ("cat const", lambda a: ag.cat([a, ag.ones(2, dtype="float64")]), [_r(3)]),
    ("stack", lambda a, b: ag.stack([a, b], axis=1), [_r(2, 3), _r(2, 3)]),
    ("stack const", lambda a: ag.stack([ag.zeros(3, dtype="float64"), a], axis=-1), [_r(3)]),
    ("clone", lambda a: a.clone(), [_r(3)]),
    ("chain", lambda a, b: ((a @ b).tanh() * a.sum()).logsumexp(axis=0), [_r(2, 3), _r(3, 2)]),
]


def _inplace_binary(op: str) -> Fn:
    def f(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
        y = a * 1.0
        getattr(y, op)(b)
        return y

    return f


def _through_view(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
    y = a * 2.0
    y[0].mul_(b[0])  # a write through a view: recorded on y (WriteBack)
    y[:, 1] += b
    return y * 2.0


def _setitem(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
    y = a.clone()
    y[1] = b
    return y


def _fill_copy(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
    y = a * 2.0
    z = a * 1.0
    y[0].fill_(1.5)
    z.copy_(b)
    return y + z


def _clamp(a: ag.Tensor) -> ag.Tensor:
    y = a + 0.0
    y.clamp_(-0.3, 0.4)
    return y


def _under_no_grad_inplace(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
    y = a * 1.0
    with ag.no_grad():
        y.mul_(b)
    return y


INPLACE: list[tuple[str, Fn, list[Array]]] = [
    ("add_", _inplace_binary("add_"), [_r(2, 3), _r(3)]),
    ("sub_", _inplace_binary("sub_"), [_r(2, 3), _r(2, 3)]),
    ("mul_", _inplace_binary("mul_"), [_r(2, 3), _r(3)]),
    ("div_", _inplace_binary("div_"), [_r(2, 3), _r(3, lo=0.5)]),
    ("through a view", _through_view, [_r(3, 3), _r(3)]),
    ("setitem", _setitem, [_r(3, 2), _r(2)]),
    ("fill_ copy_", _fill_copy, [_r(2, 3), _r(2, 3)]),
    ("clamp_", _clamp, [_r(3, 4)]),
]


@pytest.mark.parametrize(("name", "fn", "xs"), OPS + INPLACE, ids=[c[0] for c in OPS + INPLACE])
def test_jvp_matches_reverse_jacobian_and_finite_differences(
    name: str, fn: Fn, xs: list[Array]
) -> None:
    _check(fn, xs)


def test_inplace_under_no_grad_still_carries_the_tangent() -> None:
    # forward mode is not stopped by no_grad (as PyTorch); reverse mode would be
    a, b = _r(3), _r(3, seed=2)
    va, vb = _r(3, seed=3), _r(3, seed=4)
    _, t = ag.jvp(
        _under_no_grad_inplace, (ag.tensor(a), ag.tensor(b)), (ag.tensor(va), ag.tensor(vb))
    )
    np.testing.assert_allclose(t.numpy(), va * b + a * vb)


def test_nn_and_loss_fused_nodes() -> None:
    nn = pytest.importorskip("gradwise.nn")
    loss = pytest.importorskip("gradwise.loss")
    from gradwise.nn.embedding import embedding
    from gradwise.nn.linear import linear
    from gradwise.nn.norm import batch_norm, layer_norm

    idx = np.array([[0, 2], [2, 1]])
    labels = np.array([1, 0, 2, 2])
    rm, rv = np.zeros(3), np.ones(3) * 1.5
    probs = np.abs(_r(4, 3, seed=5))
    cases: list[tuple[str, Fn, list[Array]]] = [
        ("linear", lambda x, w, b: linear(x, w, b), [_r(2, 5, 3), _r(4, 3), _r(4)]),
        ("linear no bias", lambda x, w: linear(x, w), [_r(5, 3), _r(4, 3)]),
        ("embedding", lambda w: embedding(idx, w), [_r(3, 4)]),
        (
            "layer_norm",
            lambda x, w, b: layer_norm(x, (3, 2), w, b),
            [_r(4, 3, 2), _r(3, 2), _r(3, 2)],
        ),
        ("layer_norm plain", lambda x: layer_norm(x, 4), [_r(3, 4)]),
        (
            "batch_norm train",
            lambda x, w, b: batch_norm(x, None, None, w, b, training=True),
            [_r(5, 3, 2), _r(3), _r(3)],
        ),
        (
            "batch_norm eval",
            lambda x, w: batch_norm(x, ag.tensor(rm), ag.tensor(rv), w, training=False),
            [_r(5, 3), _r(3)],
        ),
        ("batch_norm plain", lambda x: batch_norm(x, None, None, training=True), [_r(6, 3)]),
        ("mse", lambda x, t: loss.mse_loss(x, t), [_r(4, 3), _r(4, 3, seed=2)]),
        ("l1 sum", lambda x, t: loss.l1_loss(x, t, reduction="sum"), [_r(4, 3), _r(4, 3, seed=2)]),
        (
            "huber none",
            lambda x, t: loss.huber_loss(x, t, reduction="none", delta=0.7),
            [_r(4, 3), _r(4, 3, seed=2)],
        ),
        (
            "smooth_l1",
            lambda x, t: loss.smooth_l1_loss(x, t, beta=0.5),
            [_r(4, 3), _r(4, 3, seed=2)],
        ),
        (
            "smooth_l1 beta 0",
            lambda x, t: loss.smooth_l1_loss(x, t, beta=0.0),
            [_r(5), _r(5, seed=2)],
        ),
        ("cross_entropy", lambda x: loss.cross_entropy(x, labels), [_r(4, 3)]),
        (
            "cross_entropy weighted",
            lambda x: loss.cross_entropy(
                x, np.array([1, -100, 2, 0]), np.array([0.5, 2.0, 1.0]), label_smoothing=0.2
            ),
            [_r(4, 3)],
        ),
        (
            "cross_entropy none 3-D",
            lambda x: loss.cross_entropy(x, np.array([[0, 1], [2, 2]]), reduction="none"),
            [_r(2, 3, 2)],
        ),
        (
            "cross_entropy probs",
            lambda x, p: loss.cross_entropy(x, p, label_smoothing=0.1),
            [_r(4, 3), probs],
        ),
        (
            "cross_entropy probs weighted",
            lambda x, p: loss.cross_entropy(x, p, np.array([1.0, 2.0, 0.5]), reduction="sum"),
            [_r(4, 3), probs],
        ),
        ("nll", lambda x: loss.nll_loss(x, labels, np.array([1.0, 0.5, 2.0])), [_r(4, 3)]),
        ("nll none", lambda x: loss.nll_loss(x, labels, reduction="none"), [_r(4, 3)]),
        (
            "bce",
            lambda x, t: loss.binary_cross_entropy(x, t, np.array([1.0, 2.0, 0.5])),
            [np.abs(_r(4, 3)) / 4 + 0.1, np.abs(_r(4, 3, seed=2)) / 4],
        ),
        (
            "bce_with_logits",
            lambda x, t: loss.binary_cross_entropy_with_logits(x, t),
            [_r(4, 3), _r(4, 3, seed=2)],
        ),
        (
            "bce_with_logits pos_weight",
            lambda x, t: loss.binary_cross_entropy_with_logits(
                x, t, pos_weight=np.array([1.0, 3.0, 0.5]), reduction="none"
            ),
            [_r(4, 3), _r(4, 3, seed=2)],
        ),
        (
            "kl_div",
            lambda x, t: loss.kl_div(x, t, reduction="batchmean"),
            [_r(4, 3), np.abs(_r(4, 3, seed=2)) + 0.1],
        ),
        (
            "kl_div log_target",
            lambda x, t: loss.kl_div(x, t, log_target=True),
            [_r(4, 3), _r(4, 3, seed=2)],
        ),
    ]
    assert nn is not None
    for name, fn, xs in cases:
        try:
            _check(fn, xs)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


@settings(deadline=None, max_examples=25)
@given(
    st.lists(st.integers(0, 3), min_size=0, max_size=3),
    st.integers(0, 7),
    st.sampled_from(["add", "mul", "div", "maximum", "sum", "mean", "softmax", "max"]),
)
def test_jvp_property_broadcast_shapes(shape: list[int], mask: int, op: str) -> None:
    a_shape = tuple(shape)
    # b: a's shape with some axes set to 1 (broadcasting), at most as many axes
    b_shape = tuple(1 if mask >> i & 1 else d for i, d in enumerate(a_shape))
    a = _r(*a_shape, seed=11)
    b = np.abs(_r(*b_shape, seed=12)) + 0.5
    fns: dict[str, tuple[Fn, list[Array]]] = {
        "add": (lambda x, y: x + y, [a, b]),
        "mul": (lambda x, y: x * y, [a, b]),
        "div": (lambda x, y: x / y, [a, b]),
        "maximum": (ag.maximum, [a, b]),
        "sum": (lambda x: x.sum(axis=0) if x.ndim else x.sum(), [a]),
        "mean": (
            lambda x: x.mean(axis=-1, keepdims=True) if x.ndim and x.shape[-1] else x.sum(),
            [a],
        ),
        "softmax": (lambda x: x.softmax(axis=-1) if x.ndim else x.exp(), [a]),
        "max": (lambda x: x.max(axis=-1) if x.ndim and x.shape[-1] else x.exp(), [a]),
    }
    fn, xs = fns[op]
    _check(fn, xs, fd=False)


def test_empty_reductions_as_torch() -> None:
    # tangents of reductions over nothing, as torch.func.jvp in torch 2.13 gives them
    z = ag.zeros(0, dtype="float64")
    cases: list[tuple[Fn, float]] = [
        (lambda a: a.mean(), np.nan),
        (lambda a: a.var(), 0.0),
        (lambda a: a.std(), np.nan),
        (lambda a: a.sum(), 0.0),
    ]
    for fn, want in cases:
        _, t = ag.jvp(fn, (z,), (z,))
        np.testing.assert_array_equal(t.numpy(), np.float64(want))


# ---- jacobian ----------------------------------------------------------------------------


def _jac_fd(fn: Fn, x: Array, h: float = 1e-6) -> Array:
    out = fn(ag.tensor(x)).numpy()
    jac = np.zeros(out.shape + x.shape)
    flat = jac.reshape(out.size, x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        d = (
            fn(ag.tensor(x + e.reshape(x.shape))).numpy()
            - fn(ag.tensor(x - e.reshape(x.shape))).numpy()
        )
        flat[:, k] = (d / (2 * h)).reshape(-1)
    return jac


@pytest.mark.parametrize(
    ("fn", "shape"),
    [
        (lambda x: (x.exp() * x.sum()).reshape(-1), (2, 3)),
        (lambda x: x @ x.T, (3, 2)),  # more outputs than inputs
        (lambda x: x.softmax(axis=0).sum(axis=1), (4, 2)),  # fewer outputs
        (lambda x: x.tanh().sum(), ()),
    ],
)
def test_jacobian_both_modes_agree_with_finite_differences(fn: Fn, shape: tuple[int, ...]) -> None:
    x = _r(*shape, seed=21)
    jf = ag.jacobian(fn, ag.tensor(x), strategy="forward-mode")
    jr = ag.jacobian(fn, ag.tensor(x), strategy="reverse-mode")
    ja = ag.jacobian(fn, ag.tensor(x))
    out_shape = fn(ag.tensor(x)).shape
    assert jf.shape == jr.shape == ja.shape == out_shape + shape
    np.testing.assert_allclose(jf.numpy(), jr.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ja.numpy(), jr.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jr.numpy(), _jac_fd(fn, x), rtol=1e-6, atol=1e-7)


def test_jacobian_picks_the_mode_by_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fwd, real_rev = fwd._forward_columns, fwd._reverse_rows

    def spy_fwd(*args: Any) -> None:
        calls.append("forward")
        real_fwd(*args)

    def spy_rev(*args: Any) -> None:
        calls.append("reverse")
        real_rev(*args)

    monkeypatch.setattr(fwd, "_forward_columns", spy_fwd)
    monkeypatch.setattr(fwd, "_reverse_rows", spy_rev)
    small = ag.tensor(_r(2))
    ag.jacobian(lambda x: x[:, None] * ag.ones(2, 5, dtype="float64"), small)  # 2 in, 10 out
    ag.jacobian(lambda x: x.sum(axis=0), ag.tensor(_r(5, 2)))  # 10 in, 2 out
    ag.jacobian(lambda x: x * 2.0, small)  # equal: reverse
    assert calls == ["forward", "reverse", "reverse"]


def test_jacobian_tuples_and_constant_outputs() -> None:
    a, b = _r(2, seed=1), _r(3, seed=2)

    def f(x: ag.Tensor, y: ag.Tensor) -> tuple[ag.Tensor, ag.Tensor]:
        return (x[:, None] * y).reshape(-1), ag.ones(2, dtype="float64")

    for strategy in ("forward-mode", "reverse-mode"):
        (jxa, jya), (jxb, jyb) = ag.jacobian(f, (ag.tensor(a), ag.tensor(b)), strategy=strategy)
        assert jxa.shape == (6, 2) and jya.shape == (6, 3)
        np.testing.assert_allclose(jxa.numpy(), np.kron(np.eye(2), b[:, None]))
        np.testing.assert_allclose(jya.numpy(), np.kron(a[:, None], np.eye(3)))
        assert jxb.shape == (2, 2) and not jxb.numpy().any() and not jyb.numpy().any()
    # tuple input, one output: a tuple over inputs; one input, tuple output: over outputs
    j = ag.jacobian(lambda x, y: x.sum() * y, (ag.tensor(a), ag.tensor(b)))
    assert isinstance(j, tuple) and j[0].shape == (3, 2) and j[1].shape == (3, 3)
    j2 = ag.jacobian(lambda x: (x * 2.0, x.sum()), ag.tensor(a))
    assert isinstance(j2, tuple) and j2[0].shape == (2, 2) and j2[1].shape == (2,)
    np.testing.assert_allclose(j2[1].numpy(), np.ones(2))


def test_jacobian_float32_and_errors() -> None:
    x = ag.tensor(np.array([1.0, 2.0], np.float32))
    for s in ("forward-mode", "reverse-mode"):
        j = ag.jacobian(lambda t: t * t, x, strategy=s)
        assert j.dtype == np.float32
        np.testing.assert_array_equal(j.numpy(), np.diag([2.0, 4.0]).astype(np.float32))
    with pytest.raises(ValueError, match="jacobian: strategy"):
        ag.jacobian(lambda t: t, x, strategy="sideways")
    with pytest.raises(TypeError, match="jacobian: inputs must be a float tensor"):
        ag.jacobian(lambda t: t, ag.tensor([1, 2]))
    with pytest.raises(TypeError, match="jacobian: the function must return a Tensor"):
        ag.jacobian(lambda t: 3.0, x)


# ---- jvp API -----------------------------------------------------------------------------


def test_jvp_tuple_outputs_and_unused_outputs() -> None:
    x, v = ag.tensor(_r(3)), ag.tensor(_r(3, seed=5))
    (y, _s, _c), (ty, ts, tc) = ag.jvp(
        lambda a: (a.exp(), a.sum(), ag.ones(2, dtype="float64")), (x,), (v,)
    )
    np.testing.assert_allclose(y.numpy(), np.exp(x.numpy()))
    np.testing.assert_allclose(ty.numpy(), np.exp(x.numpy()) * v.numpy())
    np.testing.assert_allclose(ts.numpy(), v.numpy().sum())
    np.testing.assert_array_equal(tc.numpy(), np.zeros(2))
    # two primals, one unused
    _, t = ag.jvp(lambda a, b: a * 2.0, (x, x), (v, v))
    np.testing.assert_allclose(t.numpy(), 2 * v.numpy())


def test_jvp_errors() -> None:
    x = ag.tensor(_r(3))
    with pytest.raises(TypeError, match="jvp: primals must be a tuple"):
        ag.jvp(lambda a: a, x, (x,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jvp: got 1 primals but 2 tangents"):
        ag.jvp(lambda a: a, (x,), (x, x))
    with pytest.raises(
        ValueError, match=r"tangents\[0\] has shape \(4,\) but the primal has shape \(3,\)"
    ):
        ag.jvp(lambda a: a, (x,), (ag.tensor(_r(4)),))
    with pytest.raises(
        TypeError, match=r"tangents\[0\] has dtype float32 but the primal has dtype float64"
    ):
        ag.jvp(lambda a: a, (x,), (ag.tensor(np.ones(3, np.float32)),))
    with pytest.raises(TypeError, match=r"primals\[0\] must be a float tensor"):
        ag.jvp(lambda a: a, (ag.tensor([1, 2, 3]),), (ag.tensor([1, 2, 3]),))
    with pytest.raises(TypeError, match="must return a Tensor or a tuple"):
        ag.jvp(lambda a: a.numpy(), (x,), (x,))


def test_op_without_a_rule_raises_naming_it() -> None:
    class NoRule(Function):
        __slots__ = ()

        def forward(self, x: Array) -> Array:
            return x * 2

        def backward(self, grad: Array) -> Grads:
            return (grad * 2,)

    x = ag.tensor(_r(3))
    assert NoRule.apply(x).shape == (3,)  # fine outside forward mode
    with pytest.raises(RuntimeError, match="NoRule: this op has no forward-mode"):
        ag.jvp(lambda a: NoRule.apply(a), (x,), (x,))
    assert fwd._LOCAL.level is None  # the failed jvp closed its level


def test_float32_tangents_stay_float32() -> None:
    x = ag.tensor(np.array([0.5, -1.0, 2.0], np.float32))
    v = ag.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    fns: list[Fn] = [
        lambda a: (a * 2.0 + 1.0).exp(),
        lambda a: (a**2).sum() / 3.0,
        lambda a: a.softmax().log() @ a,
        lambda a: ag.where(a > 0, a, 0.5).tanh().mean(),
    ]
    for fn in fns:
        out, t = ag.jvp(fn, (x,), (v,))
        assert out.dtype == t.dtype == np.float32
    # a float64 operand promotes, and the tangent follows the output (Cast's rule)
    out, t = ag.jvp(lambda a: a + ag.tensor(np.zeros(3)), (x,), (v,))
    assert out.dtype == t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), v.numpy().astype(np.float64))


# ---- dual tensors ---------------------------------------------------------------------------


def test_dual_level_make_unpack_and_nothing_leaks() -> None:
    p, v = ag.tensor(_r(3)), ag.tensor(_r(3, seed=9))
    assert ag.function._FORWARD_ON == 0
    with fwd.dual_level():
        assert ag.function._FORWARD_ON == 1
        d = fwd.make_dual(p, v)
        y = (d * d).sum()
        prim, tan = fwd.unpack_dual(y)
        assert tan is not None
        np.testing.assert_allclose(tan.numpy(), 2 * (p.numpy() * v.numpy()).sum())
        np.testing.assert_allclose(prim.numpy(), (p.numpy() ** 2).sum())
        assert fwd.unpack_dual(prim).tangent is None
        assert fwd.unpack_dual(p).tangent is None  # the primal itself never gets one
        assert fwd.unpack_dual(d.detach()).tangent is None  # detach drops it, as PyTorch
        with ag.no_grad():  # forward mode ignores no_grad, as PyTorch
            assert fwd.unpack_dual(d * 2.0).tangent is not None
        with ag.inference_mode():  # but not inference_mode
            assert fwd.unpack_dual(d * 2.0).tangent is None
    assert ag.function._FORWARD_ON == 0
    # after the level: no tangent anywhere, and the slot is empty (arrays freed)
    assert fwd.unpack_dual(y).tangent is None
    assert not hasattr(y, "_tangent") and not hasattr(d, "_tangent")
    with fwd.dual_level():
        assert fwd.unpack_dual(y).tangent is None
        assert fwd.unpack_dual(d * 1.0).tangent is None


def test_dual_level_errors() -> None:
    p = ag.tensor(_r(3))
    with pytest.raises(RuntimeError, match="make_dual: no dual level is open"):
        fwd.make_dual(p, p)
    with fwd.dual_level():
        with (
            pytest.raises(RuntimeError, match="nested forward-mode AD is not supported"),
            fwd.dual_level(),
        ):
            pass
        with pytest.raises(RuntimeError, match="nested"):
            ag.jvp(lambda a: a, (p,), (p,))
        with pytest.raises(ValueError, match=r"make_dual: tangent has shape \(2,\)"):
            fwd.make_dual(p, ag.tensor(_r(2)))
        with pytest.raises(TypeError, match="make_dual: tangent has dtype float32"):
            fwd.make_dual(p, ag.tensor(np.ones(3, np.float32)))
        with pytest.raises(TypeError, match="make_dual: tensor must be a float tensor"):
            fwd.make_dual(ag.tensor([1, 2, 3]), p)
    with pytest.raises(RuntimeError, match="exit_dual_level: no dual level is open"):
        fwd.exit_dual_level()
    assert ag.function._FORWARD_ON == 0


def test_dual_keeps_the_reverse_graph() -> None:
    # the dual is a view of the primal in its graph: reverse mode still reaches the primal
    p = ag.tensor(_r(3), requires_grad=True)
    with fwd.dual_level():
        d = fwd.make_dual(p, ag.tensor(np.ones(3)))
        y = (d.exp()).sum()
        y.backward()
        tan = fwd.unpack_dual(y).tangent
    assert p.grad is not None and tan is not None
    np.testing.assert_allclose(p.grad.numpy(), np.exp(p.numpy()))
    np.testing.assert_allclose(tan.numpy(), np.exp(p.numpy()).sum())


def test_level_is_per_thread() -> None:
    import threading

    seen: list[object] = []
    p = ag.tensor(_r(3))
    with fwd.dual_level():
        d = fwd.make_dual(p, p)

        def other() -> None:  # no level in this thread: the tangent is not pushed
            seen.append(fwd.unpack_dual(d * 2.0).tangent)

        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert seen == [None]


# ---- hvp / hessian: forward-over-reverse ---------------------------------------------------


def _mlp_loss(w: ag.Tensor) -> ag.Tensor:
    """A small two-layer MLP's loss as a function of all its weights (one flat vector)."""
    x = ag.tensor(_r(5, 3, seed=31))
    y = ag.tensor(_r(5, 2, seed=32))
    w1 = w[:12].reshape(3, 4)
    b1 = w[12:16]
    w2 = w[16:24].reshape(4, 2)
    h = (x @ w1 + b1).tanh()
    out = h @ w2
    return ((out - y) ** 2).mean() + out.log_softmax(axis=1).sum() * 0.1


def test_hvp_is_forward_over_reverse_and_matches_reverse_over_reverse() -> None:
    from gradwise.autograd.functional import HESSIAN_VECTOR, _hvp_reverse

    assert HESSIAN_VECTOR.__name__ == "_hvp_forward"
    w, v = ag.tensor(_r(24, seed=33)), ag.tensor(_r(24, seed=34))
    value, hv = fwd.hvp_forward_over_reverse(_mlp_loss, w, v)
    value2, hv2 = _hvp_reverse(_mlp_loss, w, v)
    np.testing.assert_allclose(value.numpy(), value2.numpy())
    np.testing.assert_allclose(hv.numpy(), hv2.numpy(), rtol=1e-10, atol=1e-12)
    _, hv3 = ag.hvp(_mlp_loss, w, v)
    np.testing.assert_array_equal(hv3.numpy(), hv.numpy())
    # against finite differences of the gradient
    h = 1e-6

    def g(x: Array) -> Array:
        leaf = ag.tensor(x, requires_grad=True)
        (gr,) = ag.grad(_mlp_loss(leaf), leaf)
        assert gr is not None
        return gr.numpy()

    fd = (g(w.numpy() + h * v.numpy()) - g(w.numpy() - h * v.numpy())) / (2 * h)
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-5, atol=1e-7)


def test_hessian_of_a_small_mlp_loss_is_symmetric_and_matches_reverse() -> None:
    w = ag.tensor(_r(24, seed=35))
    hf = ag.hessian(_mlp_loss, w)
    assert hf.shape == (24, 24)
    np.testing.assert_allclose(hf.numpy(), hf.numpy().T, rtol=1e-10, atol=1e-12)
    rows = np.stack(
        [
            fwd.hvp_forward_over_reverse(_mlp_loss, w, ag.tensor(np.eye(24)[k]))[1].numpy()
            for k in range(24)
        ]
    )
    np.testing.assert_allclose(hf.numpy(), rows, rtol=1e-12, atol=1e-14)
    # and the same as the reverse-over-reverse Hessian (one row per second backward)
    from gradwise.autograd.functional import _hvp_reverse

    rev = np.stack(
        [_hvp_reverse(_mlp_loss, w, ag.tensor(np.eye(24)[k]))[1].numpy() for k in range(24)]
    )
    np.testing.assert_allclose(hf.numpy(), rev, rtol=1e-10, atol=1e-12)


def test_hessian_shapes_and_float32() -> None:
    x = ag.tensor(_r(2, 3, seed=36))
    h = ag.hessian(lambda a: (a**3).sum(), x)
    assert h.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(h.numpy().reshape(6, 6), np.diag(6 * x.numpy().reshape(-1)))
    x32 = ag.tensor(np.array([1.0, 2.0], np.float32))
    _, hv = ag.hvp(lambda a: (a * a * a).sum(), x32, ag.tensor(np.ones(2, np.float32)))
    assert hv.dtype == np.float32
    np.testing.assert_allclose(hv.numpy(), [6.0, 12.0])
    with pytest.raises(ValueError, match="hvp: f must return a one-element Tensor"):
        fwd.hvp_forward_over_reverse(lambda a: a * 2.0, x, x)


def test_hvp_falls_back_to_reverse_over_reverse_without_a_jvp_rule() -> None:
    class Cube(Function):  # double backward but no jvp rule
        __slots__ = ("s_x",)
        saves = (0,)

        def forward(self, x: Array) -> Array:
            self.s_x = x
            return x**3

        def backward(self, grad: Array) -> Grads:
            return (3 * grad * self.s_x**2,)

        def backward_graph(self, grad: ag.Tensor) -> tuple[ag.Tensor | None, ...]:
            x = self.saved_input(0, self.s_x)
            return (grad * x * x * 3.0,)

    x, v = ag.tensor(_r(3, seed=37)), ag.tensor(_r(3, seed=38))
    with pytest.raises(fwd.NoForwardRule, match="Cube"):
        fwd.hvp_forward_over_reverse(lambda a: Cube.apply(a).sum(), x, v)
    _, hv = ag.hvp(lambda a: Cube.apply(a).sum(), x, v)
    np.testing.assert_allclose(hv.numpy(), 6 * x.numpy() * v.numpy())
    h = ag.hessian(lambda a: Cube.apply(a).sum(), x)
    np.testing.assert_allclose(h.numpy(), np.diag(6 * x.numpy()))


def test_custom_functions_in_forward_mode() -> None:
    class NumpySquare(ag.Function):  # forward leaves gradwise: no tangent without jvp
        @staticmethod
        def forward(ctx: Any, x: ag.Tensor) -> ag.Tensor:
            ctx.x = x.detach()
            return ag.tensor(np.square(x.numpy()))

        @staticmethod
        def backward(ctx: Any, g: ag.Tensor) -> ag.Tensor:
            x: ag.Tensor = ctx.x
            return 2.0 * x * g

    class NumpySquareJvp(NumpySquare):
        @staticmethod
        def jvp(ctx: Any, t: ag.Tensor) -> ag.Tensor:
            x: ag.Tensor = ctx.x
            return 2.0 * x * t

    class OpsSquare(ag.Function):  # forward in gradwise ops: their tangents are kept
        @staticmethod
        def forward(ctx: Any, x: ag.Tensor) -> ag.Tensor:
            return x * x

        @staticmethod
        def backward(ctx: Any, g: ag.Tensor) -> ag.Tensor:
            return g

    v = ag.tensor(_r(3, seed=41))
    for rg in (False, True):
        x = ag.tensor(_r(3, seed=40), requires_grad=rg)
        with pytest.raises(fwd.NoForwardRule, match="NumpySquare: a tangent reached"):
            ag.jvp(NumpySquare.apply, (x,), (v,))
        for cls in (NumpySquareJvp, OpsSquare):
            _, t = ag.jvp(cls.apply, (x,), (v,))
            np.testing.assert_allclose(t.numpy(), 2 * x.numpy() * v.numpy())


def test_hvp_forward_over_reverse_through_nn_nodes() -> None:
    pytest.importorskip("gradwise.nn")
    from gradwise.autograd.functional import _hvp_reverse
    from gradwise.nn.linear import linear
    from gradwise.nn.norm import batch_norm, layer_norm

    w, b = ag.tensor(_r(3, 4, seed=50)), ag.tensor(_r(3, seed=51))
    g, m = ag.tensor(_r(4, seed=52)), ag.tensor(_r(2, 4, seed=53))
    fns: list[Fn] = [
        lambda x: linear(x, w, b).tanh().sum(),
        lambda x: (layer_norm(x, 4, g, g) * m).tanh().sum(),
        lambda x: (batch_norm(x, None, None, g, g, training=True) * m).tanh().sum(),
    ]
    x, v = ag.tensor(_r(2, 4, seed=54)), ag.tensor(_r(2, 4, seed=55))
    for fn in fns:
        _, hf = fwd.hvp_forward_over_reverse(fn, x, v)
        _, hr = _hvp_reverse(fn, x, v)
        np.testing.assert_allclose(hf.numpy(), hr.numpy(), rtol=1e-9, atol=1e-12)
