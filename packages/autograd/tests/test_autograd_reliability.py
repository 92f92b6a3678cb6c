"""Reliability of gradwise.autograd (issue 7): bad input, empty/0-d/extreme values,
in-place safety, graph memory, dtypes, per-thread grad mode, and property tests of every
binary op and reduction against NumPy float64 references.
"""

from __future__ import annotations

import gc
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.autograd as ag
from gradwise.autograd import Tensor

Arr = np.ndarray[Any, Any]


def _t(a: object, rg: bool = False) -> Tensor:
    return Tensor(np.asarray(a), requires_grad=rg)


def _f32(*shape: int) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


# ---------------------------------------------------------------------------------------
# bad input: (call, exception, message fragment naming the op)

BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("str", lambda: Tensor("abc"), TypeError, "tensor"),
    ("None", lambda: Tensor(None), TypeError, "tensor"),
    ("dict", lambda: Tensor({1: 2}), TypeError, "tensor"),
    ("ragged", lambda: Tensor([[1.0, 2.0], [3.0]]), ValueError, "tensor"),
    ("object", lambda: Tensor(np.array([object(), 1], dtype=object)), TypeError, "tensor"),
    ("float16", lambda: Tensor(np.ones(2, np.float16)), TypeError, "float16"),
    ("complex", lambda: Tensor(np.ones(2, np.complex128)), TypeError, "complex128"),
    ("int grad", lambda: Tensor([1, 2], requires_grad=True), RuntimeError, "int64"),
    ("int grad_", lambda: Tensor([1, 2]).requires_grad_(), RuntimeError, "requires_grad"),
    ("bool grad", lambda: Tensor([True], requires_grad=True), RuntimeError, "bool"),
    ("add shapes", lambda: _f32(2, 3) + _f32(3, 2), ValueError, r"add.*\(2, 3\).*\(3, 2\)"),
    ("sub shapes", lambda: _f32(2) - _f32(3), ValueError, r"sub.*\(2,\).*\(3,\)"),
    ("mul shapes", lambda: _f32(4, 2) * _f32(3), ValueError, "mul"),
    ("div shapes", lambda: _f32(4, 2) / _f32(3), ValueError, "div"),
    ("pow shapes", lambda: _f32(4, 2) ** _f32(3), ValueError, "pow"),
    ("max shapes", lambda: ag.maximum(_f32(2), _f32(3)), ValueError, "maximum"),
    ("min shapes", lambda: ag.minimum(_f32(2), _f32(3)), ValueError, "minimum"),
    ("matmul", lambda: _f32(2, 3) @ _f32(2, 3), ValueError, r"matmul.*\(2, 3\)"),
    ("matmul 0d", lambda: _f32() @ _f32(3), ValueError, "matmul"),
    ("where", lambda: ag.where(_t([True, False]), _f32(3), _f32(3)), ValueError, "where"),
    ("add str", lambda: _f32(2) + "a", TypeError, "add"),
    ("add None", lambda: _f32(2) + None, TypeError, "add"),
    ("mul dict", lambda: _f32(2) * {}, TypeError, "mul"),
    ("radd list of str", lambda: ["a"] + _f32(1), TypeError, "add|tensor"),  # noqa: RUF005
    ("pow str", lambda: _f32(2).pow("a"), TypeError, "pow"),
    ("getitem oob", lambda: _f32(2)[5], IndexError, "getitem.*5"),
    ("getitem neg oob", lambda: _f32(2)[-3], IndexError, "getitem"),
    ("getitem arr oob", lambda: _f32(2)[np.array([0, 3])], IndexError, "getitem"),
    ("getitem str", lambda: _f32(2)["a"], TypeError, "getitem"),
    ("getitem float", lambda: _f32(2)[1.0], TypeError, "getitem"),
    ("mask shape", lambda: _f32(3)[np.array([True, False])], IndexError, "getitem|mask"),
    ("sum axis", lambda: _f32(2, 3).sum(axis=2), ValueError, "sum: axis 2"),
    ("mean axis str", lambda: _f32(2, 3).mean(axis="a"), TypeError, "mean"),  # type: ignore[arg-type]
    ("max axis", lambda: _f32(2, 3).max(axis=-3), ValueError, "max"),
    ("var axis", lambda: _f32(2, 3).var(axis=(0, 0)), ValueError, "var"),
    ("softmax axis", lambda: _f32(2, 3).softmax(axis=2), ValueError, "softmax"),
    ("log_softmax axis", lambda: _f32(2, 3).log_softmax(axis=5), ValueError, "log_softmax"),
    ("lse axis", lambda: _f32(2, 3).logsumexp(axis=2), ValueError, "logsumexp"),
    ("max empty", lambda: _f32(0, 3).max(), ValueError, r"max.*\(0, 3\)"),
    ("min empty axis", lambda: _f32(0, 3).min(axis=0), ValueError, "min"),
    ("reshape", lambda: _f32(2, 3).reshape(4, 2), ValueError, r"reshape.*\(2, 3\)"),
    ("reshape huge", lambda: _f32(3).reshape(3, 2**40), ValueError, "reshape"),
    ("reshape two -1", lambda: _f32(2, 3).reshape(-1, -1), ValueError, "reshape"),
    ("reshape str", lambda: _f32(2, 3).reshape("a"), TypeError, "reshape"),
    ("transpose", lambda: _f32(2, 3).transpose(0, 5), ValueError, "transpose"),
    ("permute", lambda: _f32(2, 3).permute(0, 0), ValueError, "permute"),
    ("squeeze", lambda: _f32(2, 3).squeeze(0), ValueError, "squeeze"),
    ("unsqueeze", lambda: _f32(2, 3).unsqueeze(5), ValueError, "unsqueeze"),
    ("flatten", lambda: _f32(2, 3).flatten(5), ValueError, "flatten"),
    ("expand", lambda: _f32(3).expand(2, 4), ValueError, r"\(3,\)"),
    ("cat shapes", lambda: ag.cat([_f32(2, 3), _f32(2, 4)]), ValueError, "cat"),
    ("cat empty", lambda: ag.cat([]), TypeError, "cat"),
    ("cat axis", lambda: ag.cat([_f32(2), _f32(2)], axis=3), ValueError, "cat"),
    ("stack shapes", lambda: ag.stack([_f32(2, 3), _f32(2, 4)]), ValueError, "stack"),
    ("dropout p", lambda: ag.dropout(_f32(3), 1.5, True), ValueError, "dropout"),
    ("dropout p<0", lambda: ag.dropout(_f32(3), -0.1, True), ValueError, "dropout"),
    ("clip str", lambda: _f32(3).clip("a", 1.0), TypeError, "clip"),  # type: ignore[arg-type]
    ("gelu mode", lambda: _f32(3).gelu(approximate="fast"), ValueError, "gelu"),
    ("item", lambda: _f32(2).item(), ValueError, r"item.*\(2,\)"),
    ("backward non-scalar", lambda: (_f32(2) * 2).backward(), RuntimeError, "backward"),
    (
        "backward grad shape",
        lambda: (_f32(2) * 2).backward(_t(np.ones(3, np.float32))),
        RuntimeError,
        r"backward.*\(3,\)",
    ),
    ("backward no grad", lambda: _t([1.0]).backward(), RuntimeError, "grad"),
    ("zeros neg", lambda: ag.zeros(-1), ValueError, "zeros"),
    ("ones str", lambda: ag.ones("a"), TypeError, "ones"),
    ("rand neg", lambda: ag.rand(-2), ValueError, "rand"),
    ("randn float", lambda: ag.randn(2.5), TypeError, "randn"),
    ("full str", lambda: ag.full((2,), "a"), TypeError, "full"),  # type: ignore[arg-type]
    ("eye neg", lambda: ag.eye(-2), ValueError, "eye"),
    ("arange step 0", lambda: ag.arange(0, 5, 0), ValueError, "arange"),
    ("dtype name", lambda: ag.zeros(2, dtype="foo"), TypeError, "dtype"),
    ("set grad", lambda: setattr(_f32(3), "grad", _t(np.ones(4, np.float32))), ValueError, "grad"),
    ("clip bool", lambda: _f32(3).clip(True, None), TypeError, "clip"),
    ("clip none", lambda: _f32(3).clip(None, None), ValueError, "clip"),
]


@pytest.mark.parametrize(("case", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_table(
    case: str, call: Callable[[], object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------
# empty, 0-d and extreme values through every op

UNARY: list[tuple[str, Callable[[Tensor], Tensor]]] = [
    ("neg", lambda t: -t),
    ("exp", ag.exp),
    ("log", ag.log),
    ("sqrt", ag.sqrt),
    ("abs", ag.abs),
    ("relu", ag.relu),
    ("sigmoid", ag.sigmoid),
    ("tanh", ag.tanh),
    ("gelu", ag.gelu),
    ("gelu_tanh", lambda t: ag.gelu(t, approximate="tanh")),
    ("leaky_relu", ag.leaky_relu),
    ("softplus", ag.softplus),
    ("silu", ag.silu),
    ("pow", lambda t: t**2),
    ("clip", lambda t: t.clip(-1.0, 1.0)),
    ("clip_none", lambda t: t.clip(None, 0.5)),
    ("dropout", lambda t: ag.dropout(t, 0.5, True)),
    ("flatten", lambda t: t.flatten()),
    ("clone", ag.clone),
]


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
@pytest.mark.parametrize(("name", "fn"), UNARY, ids=[u[0] for u in UNARY])
def test_empty_through_unary_ops_and_backward(
    name: str, fn: Callable[[Tensor], Tensor], shape: tuple[int, ...]
) -> None:
    x = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32 and y.size == 0
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == shape and x.grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
def test_empty_through_reductions(shape: tuple[int, ...]) -> None:
    x = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    assert x.sum().item() == 0.0
    with np.errstate(all="raise"):  # the documented NaN comes without a warning
        assert np.isnan(x.mean().item()) and np.isnan(x.var().item())
        assert np.isnan(x.std().item())
    with pytest.raises(ValueError, match="max"):
        x.max()
    with pytest.raises(ValueError, match="min"):
        x.min()
    for axis in range(len(shape)):
        rest = shape[:axis] + shape[axis + 1 :]
        for red in (ag.sum, ag.mean, ag.var, ag.std, ag.logsumexp):
            out = red(x, axis)
            assert out.shape == rest and out.dtype == np.float32, red.__name__
        if shape[axis] == 0:
            assert (ag.logsumexp(x, axis).numpy() == -np.inf).all()
            assert (ag.sum(x, axis).numpy() == 0).all()
        else:
            assert ag.max(x, axis).shape == rest
        for fn in (ag.softmax, ag.log_softmax):
            out = fn(x, axis)
            assert out.shape == shape
            out.sum().backward()
    (x.sum() + x.mean(axis=0).sum()).backward()
    assert x.grad is not None and x.grad.shape == shape


def test_empty_shape_ops() -> None:
    x = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    w = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    out = x @ w
    assert out.shape == (0, 2)
    assert (x.T @ x).numpy().tolist() == [[0.0] * 3] * 3
    parts = [
        x.reshape(3, 0),
        x.transpose(0, 1),
        x.unsqueeze(0),
        x[:, 1:],
        ag.cat([x, x]),
        ag.stack([x, x]),
        ag.where(x > 0, x, x),
        x.expand(2, 0, 3),
        ag.maximum(x, 0.0),
    ]
    total = out.sum() + sum((p.sum() for p in parts), start=ag.zeros(()))
    total.backward()
    assert w.grad is not None and (w.grad.numpy() == 0).all()


def test_zero_d_tensors_behave_like_pytorch() -> None:
    s = Tensor(np.float32(3.0), requires_grad=True)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    for y in (s.sum(), s.mean(), s.max(), s.softmax(), s.logsumexp(0), s * 2, s.exp()):
        assert y.shape == () and y.dtype == np.float32
    assert s.softmax().item() == 1.0 and s.logsumexp(0).item() == 3.0
    (s * s).backward()
    assert s.grad is not None and s.grad.shape == () and s.grad.item() == 6.0
    assert ag.tensor(2.0).item() == 2.0 and ag.tensor(2.0).tolist() == 2.0
    with pytest.raises(ValueError, match="axis"):
        s.sum(axis=1)


def test_extreme_values() -> None:
    big = Tensor(np.array([1e38, 3e38, -1e38], np.float32), requires_grad=True)
    assert big.max().item() == pytest.approx(3e38)
    np.testing.assert_array_equal(big.softmax().numpy(), [0.0, 1.0, 0.0])
    assert big.logsumexp(0).item() == pytest.approx(3e38, rel=1e-6)
    assert big.var().item() == np.inf  # as torch 2.13: the variance exceeds float32
    big.logsumexp(0).backward()
    assert big.grad is not None
    np.testing.assert_array_equal(big.grad.numpy(), [0.0, 1.0, 0.0])
    b64 = Tensor(np.array([1e308, 1.7e308, -1e308]), requires_grad=True)
    assert b64.logsumexp(0).item() == pytest.approx(1.7e308)
    assert b64.max().item() == 1.7e308
    np.testing.assert_array_equal(b64.softmax().numpy(), [0.0, 1.0, 0.0])
    sub = Tensor(np.array([1e-45, 1e-40, -1e-42], np.float32), requires_grad=True)
    np.testing.assert_array_equal((sub * 1).numpy(), sub.numpy())  # no flush to zero
    assert sub.relu().numpy()[0] > 0
    (sub * 2).sum().backward()
    assert sub.grad is not None and (sub.grad.numpy() == 2).all()


def test_nan_and_inf_propagate() -> None:
    v = np.array([np.nan, 1.0, np.inf, -np.inf], np.float32)
    x = Tensor(v)
    for name in ("relu", "leaky_relu", "sigmoid", "tanh", "exp", "abs", "softplus"):
        assert np.isnan(getattr(x, name)().numpy()[0]), name
    assert np.isnan(x.clip(0, 0.5).numpy()[0])
    assert np.isnan(ag.maximum(x, 0.0).numpy()[0]) and np.isnan(ag.minimum(x, 0.0).numpy()[0])
    with np.errstate(invalid="ignore"):  # NumPy's small-sum path warns on inf - inf
        for red in (ag.sum, ag.mean, ag.max, ag.min, ag.var, ag.std):
            assert np.isnan(red(x).item()), red.__name__
    assert np.isnan(x.logsumexp(0).item())
    assert np.isnan(x.softmax().numpy()).all()
    assert ag.logsumexp(Tensor(np.full(3, -np.inf, np.float32)), 0).item() == -np.inf
    assert x[1:3].max().item() == np.inf
    # NaN in backward reaches the leaf
    y = Tensor(v, requires_grad=True)
    (y * 2).sum().backward()
    assert y.grad is not None and (y.grad.numpy() == 2).all()


# ---------------------------------------------------------------------------------------
# in-place safety


def test_inplace_write_to_saved_tensor_is_caught_with_op_and_versions() -> None:
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    b = a * 2
    c = b * b  # saves b
    b.add_(1)
    with pytest.raises(RuntimeError, match=r"MulBackward.*version is now 1, expected 0"):
        c.sum().backward()


@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.add_(1),
        lambda t: t.sub_(1),
        lambda t: t.mul_(2),
        lambda t: t.div_(2),
        lambda t: t.zero_(),
        lambda t: t.fill_(3),
        lambda t: t.copy_(Tensor(np.zeros(3, np.float32))),
        lambda t: t.clamp_(0, 1),
        lambda t: t.__iadd__(1),
        lambda t: t.__imul__(2),
    ],
)
def test_every_inplace_op_bumps_the_version(write: Callable[[Tensor], object]) -> None:
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    h = a * 1.0
    out = (h.exp() * h).sum()  # Mul saves h
    before = h.version_counter().value
    write(h)
    assert h.version_counter().value == before + 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()


def test_inplace_on_leaf_requiring_grad_raises() -> None:
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        a.add_(1)
    with ag.no_grad():
        a.add_(1)
    assert a.numpy()[0] == 2.0


# ---------------------------------------------------------------------------------------
# memory: no cycles, saved arrays freed at backward


@contextmanager
def _gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_graph_is_freed_by_reference_counting_alone() -> None:
    with _gc_off():
        x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
        h = (x * 2).relu()
        y = (h.softmax(1) * h).sum()
        refs: list[weakref.ref[Any]] = [weakref.ref(h), weakref.ref(y), weakref.ref(y.grad_fn)]
        y.backward()
        del h, y
        assert all(r() is None for r in refs)


def test_saved_arrays_are_freed_at_backward_while_output_lives() -> None:
    with _gc_off():
        x = Tensor(np.ones(1000, np.float32), requires_grad=True)
        h = x * 3.0
        saved = weakref.ref(h.data)
        y = (h * h).sum()  # saves h's array
        del h
        assert saved() is not None
        y.backward()
        assert saved() is None  # y is alive, its graph's saved arrays are gone
        assert y.item() == 9000.0
        with pytest.raises(RuntimeError, match="retain_graph"):
            y.backward()


def test_retain_graph_keeps_saved_arrays_until_last_backward() -> None:
    with _gc_off():
        x = Tensor(np.ones(10, np.float32), requires_grad=True)
        h = x * 3.0
        saved = weakref.ref(h.data)
        y = (h * h).sum()
        del h
        y.backward(retain_graph=True)
        assert saved() is not None
        y.backward()
        assert saved() is None
        assert x.grad is not None and x.grad.numpy()[0] == 36.0


def test_long_chain_no_recursion_limit_and_freed() -> None:
    with _gc_off():
        x = Tensor(np.ones(2, np.float32), requires_grad=True)
        y = x
        for _ in range(5000):
            y = y * 1.0001
        ref = weakref.ref(y.grad_fn)
        y.sum().backward()
        del y
        assert ref() is None
        assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


# ---------------------------------------------------------------------------------------
# dtypes: float32 stays float32 with Python and NumPy scalars and 0-d float64 arrays

SCALARS: list[object] = [2.5, 2, np.float64(2.5), np.float32(2.5), np.array(2.5), np.int64(2)]


@pytest.mark.parametrize(
    "s", SCALARS, ids=[type(s).__name__ + str(i) for i, s in enumerate(SCALARS)]
)
def test_float32_stays_float32_with_scalars(s: Any) -> None:
    x = Tensor(np.linspace(0.5, 2.0, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    outs = [
        x + s, s + x, x - s, s - x, x * s, s * x, x / s, s / x, x**s, s**x,
        ag.maximum(x, s), ag.minimum(s, x), ag.where(x > 1, x, s), ag.where(x > 1, s, x),
        x.clip(s, None), x.clip(None, s), x.pow(s),
    ]  # fmt: skip
    for out in outs:
        assert out.dtype == np.float32, out
        assert isinstance(out, Tensor)
    total = outs[0].sum()
    for out in outs[1:]:
        total = total + out.sum()
    assert total.dtype == np.float32
    total.backward()
    assert x.grad is not None and x.grad.dtype == np.float32


def test_float32_through_every_op() -> None:
    x = Tensor(np.linspace(0.1, 1.0, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    w = Tensor(np.ones((4, 2), np.float32), requires_grad=True)
    fns: list[Callable[[], Tensor]] = [
        *(lambda fn=fn: fn(x) for _, fn in UNARY),
        lambda: x.sum(0), lambda: x.mean(), lambda: x.max(1), lambda: x.min(),
        lambda: x.var(0, ddof=1), lambda: x.std(), lambda: x.softmax(0),
        lambda: x.log_softmax(), lambda: x.logsumexp(1), lambda: x @ w,
        lambda: x.reshape(4, 3), lambda: x.T, lambda: x.permute(1, 0),
        lambda: x.unsqueeze(0).squeeze(0), lambda: x.expand(2, 3, 4),
        lambda: ag.cat([x, x]), lambda: ag.stack([x, x], 1), lambda: x[np.array([0, 0, 2])],
        lambda: x[x > 0.5],
    ]  # fmt: skip
    for fn in fns:
        out = fn()
        assert out.dtype == np.float32
        out.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    y = Tensor(np.ones(3, np.float64), requires_grad=True)
    assert (y * np.float32(2)).dtype == np.float64 and (y.exp() + 1).dtype == np.float64
    assert (Tensor(np.ones(2, np.float32)) + Tensor(np.ones(2, np.float64))).dtype == np.float64


# ---------------------------------------------------------------------------------------
# threads: grad mode (and anomaly mode, where it exists) is per thread


def test_grad_mode_is_per_thread() -> None:
    inside = threading.Event()
    release = threading.Event()
    seen: list[bool] = []

    def worker() -> None:
        with ag.no_grad():
            inside.set()
            release.wait(10)
            seen.append(ag.is_grad_enabled())

    th = threading.Thread(target=worker)
    th.start()
    assert inside.wait(10)
    assert ag.is_grad_enabled()  # the other thread's no_grad does not leak here
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert (x * 2).requires_grad
    release.set()
    th.join(10)
    assert seen == [False]
    results: list[bool] = []
    with ag.no_grad():
        t2 = threading.Thread(target=lambda: results.append(ag.is_grad_enabled()))
        t2.start()
        t2.join(10)
    assert results == [True]  # a new thread starts with grad mode on


def test_anomaly_mode_is_per_thread() -> None:
    results: list[bool] = []
    with ag.detect_anomaly():
        assert ag.is_anomaly_enabled()
        th = threading.Thread(target=lambda: results.append(ag.is_anomaly_enabled()))
        th.start()
        th.join(10)
    assert results == [False] and not ag.is_anomaly_enabled()
    # a NaN produced in backward is an error only in the thread that asked for the check
    outcome: list[str] = []

    def backward_nan() -> None:
        x = Tensor(np.array([0.0], np.float32), requires_grad=True)
        with np.errstate(all="ignore"):
            x.sqrt().sum().backward()  # d sqrt(x) at 0 is inf
        outcome.append("no error")

    with ag.detect_anomaly():
        th = threading.Thread(target=backward_nan)
        th.start()
        th.join(10)
    assert outcome == ["no error"]


# ---------------------------------------------------------------------------------------
# property tests: broadcasting binary ops and reductions over random axes, float64


@st.composite
def _broadcast_pair(draw: st.DrawFn) -> tuple[Arr, Arr]:
    shapes = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3
        )
    )
    elems = st.floats(-3, 3, allow_nan=False, width=64)
    a = draw(hnp.arrays(np.float64, shapes.input_shapes[0], elements=elems))
    b = draw(hnp.arrays(np.float64, shapes.input_shapes[1], elements=elems))
    return a, b


def _unbroadcast_ref(g: Arr, shape: tuple[int, ...]) -> Arr:
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


BINARY: list[tuple[str, Callable[[Any, Any], Any], Callable[[Arr, Arr], Arr]]] = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    ("pow", lambda a, b: (a * a + 0.5) ** b, lambda a, b: (a * a + 0.5) ** b),
    ("maximum", ag.maximum, np.maximum),
    ("minimum", ag.minimum, np.minimum),
    ("where", lambda a, b: ag.where(a > b, a, b), lambda a, b: np.where(a > b, a, b)),
]


@pytest.mark.parametrize(("name", "op", "ref"), BINARY, ids=[b[0] for b in BINARY])
@settings(deadline=None, max_examples=25)
@given(pair=_broadcast_pair())
def test_binary_ops_broadcast_like_numpy(
    name: str, op: Callable[[Any, Any], Any], ref: Callable[[Arr, Arr], Arr], pair: tuple[Arr, Arr]
) -> None:
    a, b = pair
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = op(ta, tb)
    expected = ref(a, b)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    assert ta.grad is not None and tb.grad is not None
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    if name in ("add", "sub", "mul"):
        ones = np.ones(expected.shape)
        ga = {"add": ones, "sub": ones, "mul": np.broadcast_to(b, expected.shape) * ones}[name]
        gb = {"add": ones, "sub": -ones, "mul": np.broadcast_to(a, expected.shape) * ones}[name]
        np.testing.assert_allclose(ta.grad.numpy(), _unbroadcast_ref(ga, a.shape), atol=1e-12)
        np.testing.assert_allclose(tb.grad.numpy(), _unbroadcast_ref(gb, b.shape), atol=1e-12)


@st.composite
def _array_and_axis(draw: st.DrawFn) -> tuple[Arr, int | tuple[int, ...] | None, bool]:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    a = draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5, allow_nan=False, width=64)))
    ndim = len(shape)
    axis: int | tuple[int, ...] | None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axis = tuple(draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)))
    return a, axis, draw(st.booleans())


REDUCE: list[tuple[str, Callable[..., Tensor], Callable[..., Arr]]] = [
    ("sum", ag.sum, np.sum),
    ("mean", ag.mean, np.mean),
    ("max", ag.max, np.max),
    ("min", ag.min, np.min),
    ("var", ag.var, np.var),
    ("std", ag.std, np.std),
]


def _reduced_size(shape: tuple[int, ...], axis: int | tuple[int, ...] | None) -> int:
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    n = 1
    for i in axes:
        n *= shape[i]
    return n


@pytest.mark.parametrize(("name", "op", "ref"), REDUCE, ids=[r[0] for r in REDUCE])
@settings(deadline=None, max_examples=30)
@given(case=_array_and_axis())
def test_reductions_match_numpy(
    name: str,
    op: Callable[..., Tensor],
    ref: Callable[..., Arr],
    case: tuple[Arr, int | tuple[int, ...] | None, bool],
) -> None:
    a, axis, keepdims = case
    x = Tensor(a, requires_grad=True)
    empty = _reduced_size(a.shape, axis) == 0
    if empty and name in ("max", "min"):
        with pytest.raises(ValueError, match=name):
            op(x, axis, keepdims)
        return
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # NumPy's own "mean of empty slice"
        expected = np.asarray(ref(a, axis=axis, keepdims=keepdims))
    out = op(x, axis, keepdims)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == a.shape


@settings(deadline=None, max_examples=30)
@given(case=_array_and_axis())
def test_softmax_family_matches_numpy(case: tuple[Arr, int | tuple[int, ...] | None, bool]) -> None:
    a, axis, keepdims = case
    if a.ndim == 0 or not isinstance(axis, int):
        axis = -1 if a.ndim else 0
    x = Tensor(a, requires_grad=True)
    m = np.max(a, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(a - m)
    s = e.sum(axis=axis, keepdims=True)
    with np.errstate(all="ignore"):
        lse = np.log(s) + m
        sm = e / s
    np.testing.assert_allclose(x.softmax(axis).numpy(), sm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(x.log_softmax(axis).numpy(), a - lse, rtol=1e-12, atol=1e-12)
    out = x.logsumexp(axis, keepdims)
    np.testing.assert_allclose(
        out.numpy(), lse if keepdims else np.squeeze(lse, axis=axis), rtol=1e-12, atol=1e-12
    )
    (out.sum() + x.softmax(axis).sum()).backward()
    assert x.grad is not None and x.grad.shape == a.shape
