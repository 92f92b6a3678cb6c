"""In-place writes through views of non-leaf tensors: recorded on the base, as PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor
from gradwise.autograd.ops.inplace import view_positions
from gradwise.autograd.testing import gradcheck


def _f64(values: Any, requires_grad: bool = True) -> Tensor:
    return ag.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def test_matches_pytorch_on_a_sequence_of_writes_through_views() -> None:
    x = _f64([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])
    z = _f64([0.25, -3.0])
    y = x * 1
    y[0].mul_(2)
    y[:, 1] += z
    y[1, 2:].clamp_(-1.0, 1.0)
    v = y.T
    v[0].fill_(7.0)
    loss = (y**2 * _f64([1.0, 2.0, 3.0], requires_grad=False)).sum()
    loss.backward()
    # reference values computed with torch 2.13 (same program)
    np.testing.assert_array_equal(y.numpy(), [[7.0, -3.75, 6.0], [7.0, 1.0, -1.0]])
    assert loss.item() == 239.125
    assert x.grad is not None and z.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, -30.0, 72.0], [0.0, 4.0, 0.0]])
    np.testing.assert_array_equal(z.grad.numpy(), [-15.0, 4.0])


def _check(fn: Callable[..., Tensor], *inputs: Tensor) -> None:
    assert gradcheck(fn, list(inputs))


def test_gradcheck_mul_on_a_row_view() -> None:
    rng = np.random.default_rng(0)
    x = _f64(rng.standard_normal((3, 4)))

    def f(x: Tensor) -> Tensor:
        y = x * 1
        y[0].mul_(2)
        return y * y

    _check(f, x)


def test_gradcheck_add_into_a_column_with_a_tensor_that_requires_grad() -> None:
    rng = np.random.default_rng(1)
    x, z = _f64(rng.standard_normal((3, 4))), _f64(rng.standard_normal(3))

    def f(x: Tensor, z: Tensor) -> Tensor:
        y = x * x  # (exp would save y itself, which the write then invalidates)
        y[:, 1] += z
        return y * x

    _check(f, x, z)


def test_gradcheck_div_and_sub_through_views_of_views_and_reshapes() -> None:
    rng = np.random.default_rng(2)
    x = _f64(rng.standard_normal((2, 3, 4)))
    w = _f64(rng.uniform(1.0, 2.0, (4,)))

    def f(x: Tensor, w: Tensor) -> Tensor:
        y = x * 3
        y[1][2].div_(w)  # a view of a view
        y.reshape(6, 4)[::2].sub_(w * w)  # a strided view of a reshape
        y.transpose(0, 2)[0, 1].mul_(x[0, 0, 0] * 1)  # a transposed view, a 0-d factor
        return y * y

    _check(f, x, w)


def test_gradcheck_fill_copy_clamp_and_setitem_on_views() -> None:
    rng = np.random.default_rng(3)
    x = _f64(rng.standard_normal((4, 3)))
    s = _f64(rng.standard_normal(3))

    def f(x: Tensor, s: Tensor) -> Tensor:
        y = x * 2
        y[0].copy_(s)
        y[1].clamp_(-0.5, 0.5)
        y[2].zero_()
        y[3][1:] = s[:2] * s[1:]
        return y * x

    _check(f, x, s)


def test_one_element_of_a_vector_is_a_view() -> None:
    x = _f64([1.0, 2.0, 3.0])
    y = x * 1
    y[0].mul_(5)  # y[0] of a 1-D tensor: a 0-d view, as in PyTorch
    np.testing.assert_array_equal(y.numpy(), [5.0, 2.0, 3.0])
    (y * y).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [50.0, 4.0, 6.0])
    _check(lambda x: _mul_first(x * 1), x)


def _mul_first(y: Tensor) -> Tensor:
    y[1].mul_(y[2].clone())  # (a product with y[2] itself would save a view the write bumps)
    return y


def test_view_and_base_histories_after_the_write() -> None:
    x = _f64([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    v = y[1]
    v.mul_(3)
    assert y.grad_fn is not None and y.grad_fn.name() == "WriteBackBackward"
    assert v.grad_fn is not None and not v.is_leaf and v.requires_grad
    v.sum().backward()  # the view's own history now runs through the write
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.0], [3.0, 3.0]])
    assert y.version_counter().value == 1 and v.version_counter() is y.version_counter()


def test_writing_a_grad_tensor_into_a_plain_buffer_gives_the_buffer_a_history() -> None:
    buf = ag.zeros(2, 3, dtype="float64")
    x = _f64([1.0, 2.0, 3.0])
    buf[1].copy_(x * 2)
    assert buf.requires_grad and not buf.is_leaf
    (buf * buf).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 16.0, 24.0])


def test_plain_views_without_grad_are_written_directly() -> None:
    t = ag.tensor([[1.0, 2.0], [3.0, 4.0]])
    t[0].add_(1.0)
    t[:, 1] *= 2
    np.testing.assert_array_equal(t.numpy(), [[2.0, 6.0], [3.0, 8.0]])
    # three writes: add_, *= and the setitem Python does after *= on t[:, 1]
    assert t.grad_fn is None and not t.requires_grad and t.version_counter().value == 3


def test_view_of_a_leaf_that_requires_grad_raises() -> None:
    w = _f64([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError, match="add_: a view of a leaf tensor that requires grad"):
        w[0].add_(1.0)
    with ag.no_grad():
        w[0].add_(1.0)
    np.testing.assert_array_equal(w.numpy(), [[2.0, 3.0], [3.0, 4.0]])


def test_write_through_a_view_invalidates_what_ops_saved_of_the_base() -> None:
    x = _f64([1.0, 2.0])
    y = x * 1
    z = (y * y).sum()  # saves y
    y[0].add_(1.0)
    with pytest.raises(RuntimeError, match="MulBackward: a tensor this op saved"):
        z.backward()


def test_read_only_views_still_raise() -> None:
    y = _f64([1.0, 2.0]) * 1
    with pytest.raises(RuntimeError, match="read-only view"):
        y.expand(3, 2)[0].add_(1.0)


def test_view_positions() -> None:
    base = np.arange(24.0).reshape(2, 3, 4)
    for view in (base[1], base[:, 1], base[..., ::2], base.transpose(2, 0, 1)[1:], base[1, 2, 3:]):
        pos = view_positions(view, base)
        assert pos is not None
        np.testing.assert_array_equal(np.take(base, pos), view)
    assert view_positions(np.zeros(3), base) is None  # not inside base
    assert view_positions(base.astype(np.float32), base) is None
    assert view_positions(base[0], np.broadcast_to(base[0, 0], (3, 4))) is None
