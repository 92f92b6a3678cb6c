"""checkpoint: same gradients (dropout included), a third of the saved bytes or less."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
import gradwise.nn as nn
from gradwise.autograd import Tensor
from gradwise.autograd.function import Node


def saved_bytes(t: Tensor) -> int:
    """Bytes of the ``s_*`` arrays of every node behind ``t`` (shared memory counted once)."""
    seen: set[int] = set()
    arrays: dict[int, int] = {}
    stack: list[Node | None] = [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for slot in getattr(type(node), "_saved_slots", ()):
            todo: list[Any] = [getattr(node, slot, None)]
            while todo:
                v = todo.pop()
                if isinstance(v, np.ndarray):
                    base = v if v.base is None else v.base
                    arrays[id(base)] = max(arrays.get(id(base), 0), base.nbytes)
                elif isinstance(v, tuple | list):
                    todo.extend(v)
        stack.extend(node.inputs)
    return sum(arrays.values())


def _blocks(p: float) -> list[nn.Module]:
    ag.manual_seed(0)
    return [nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(p)) for _ in range(20)]


def _run(blocks: list[nn.Module], x: Tensor, use_checkpoint: bool) -> Tensor:
    ag.manual_seed(123)
    h = x
    for b in blocks:
        h = ag.checkpoint(b, h) if use_checkpoint else b(h)
    return (h * h).sum()


def _grads(blocks: list[nn.Module], x: Tensor) -> list[np.ndarray]:
    out = [p.grad.numpy().copy() for b in blocks for p in b.parameters() if p.grad is not None]
    assert x.grad is not None
    out.append(x.grad.numpy().copy())
    return out


@pytest.mark.parametrize("p", [0.0, 0.2])
def test_identical_gradients_and_at_most_a_third_of_the_saved_bytes(p: float) -> None:
    blocks = _blocks(p)
    x = ag.randn(32, 64, requires_grad=True)
    plain = _run(blocks, x, False)
    plain_bytes = saved_bytes(plain)
    plain.backward()
    expected = _grads(blocks, x)
    for b in blocks:
        b.zero_grad()
    x.grad = None
    ck = _run(blocks, x, True)
    ck_bytes = saved_bytes(ck)
    ck.backward()
    got = _grads(blocks, x)
    assert len(got) == len(expected) == 41
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)
    assert ck_bytes * 3 <= plain_bytes, (ck_bytes, plain_bytes)
    try:
        from gradwise.autograd.inspect import trace_graph
    except ImportError:  # pragma: no cover - part C's report not present
        return
    assert (
        trace_graph(_run(blocks, x, True)).saved_bytes * 3
        <= trace_graph(_run(blocks, x, False)).saved_bytes
    )


def test_rng_state_after_backward_is_not_rewound() -> None:
    x = ag.randn(4, 8, requires_grad=True)
    ag.manual_seed(1)
    y = ag.checkpoint(lambda t: ag.dropout(t, 0.5), x)
    after_forward = ag.rand(3).numpy()
    ag.manual_seed(1)
    ag.dropout(x, 0.5)
    ag.rand(3)
    y.sum().backward()
    probe = ag.rand(3).numpy()
    ag.manual_seed(1)
    ag.dropout(x, 0.5)
    ag.rand(3)
    np.testing.assert_array_equal(probe, ag.rand(3).numpy())
    assert after_forward.shape == (3,)


def test_checkpoint_passes_non_tensor_arguments_and_multiple_outputs() -> None:
    x = ag.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = ag.tensor(np.array([3.0, -1.0]), requires_grad=True)

    def fn(a: Tensor, scale: float, b: Tensor) -> tuple[Tensor, Tensor]:
        return (a * b * scale).tanh(), a.exp()

    u, v = ag.checkpoint(fn, x, 0.5, w)
    (u.sum() + v.sum()).backward()
    assert x.grad is not None and w.grad is not None
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    u2, v2 = fn(x, 0.5, w)
    (u2.sum() + v2.sum()).backward()
    assert x.grad is not None and w.grad is not None
    np.testing.assert_allclose(gx, x.grad.numpy())
    np.testing.assert_allclose(gw, w.grad.numpy())
    assert ag.gradcheck(lambda a, b: ag.checkpoint(fn, a, 0.5, b)[0], [x, w])


def test_checkpoint_stores_no_intermediates_and_errors() -> None:
    x = ag.randn(8, 16, requires_grad=True)
    calls: list[int] = []

    def fn(t: Tensor) -> Tensor:
        calls.append(1)
        return (t.exp() * t).tanh().sum(axis=1)

    y = ag.checkpoint(fn, x)
    assert y.grad_fn is not None and y.grad_fn.name() == "CheckpointBackward"
    assert y.grad_fn.inputs[0] is x._acc  # one node, straight to the input
    y.sum().backward()
    assert calls == [1, 1]  # forward, then the recomputation
    with pytest.raises(TypeError, match="checkpoint: fn must be callable"):
        ag.checkpoint(3, x)  # type: ignore[arg-type]


def test_double_backward_through_checkpoint_raises() -> None:
    x = ag.tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = ag.checkpoint(lambda t: (t * t).tanh(), x)
    with pytest.raises(RuntimeError, match="CheckpointBackward: double backward"):
        ag.grad(y.sum(), x, create_graph=True)
