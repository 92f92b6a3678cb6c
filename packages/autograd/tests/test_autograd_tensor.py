"""Tensor construction, dtype rules, conversion, errors, and the subgradient conventions."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor


def test_dtype_rules() -> None:
    assert ag.tensor(1.5).dtype == np.float32
    assert ag.tensor([1, 2]).dtype == np.int64
    assert ag.tensor([True]).dtype == np.bool_
    assert ag.tensor(np.zeros(2)).dtype == np.float64
    assert ag.tensor([1.0], dtype="float64").dtype == np.float64
    assert ag.tensor([1.0], dtype=ag.float64).dtype == np.float64
    assert ag.arange(5).dtype == np.int64 and ag.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert ag.zeros(2, 3).shape == (2, 3) and ag.ones((2, 3)).dtype == np.float32
    assert ag.full((2,), 7).dtype == np.int64 and ag.full((2,), 0.5).dtype == np.float32
    assert ag.eye(3).numpy().trace() == 3
    assert ag.zeros_like(ag.tensor([1, 2])).dtype == np.int64
    assert ag.ones_like(ag.zeros(2, dtype="float64")).dtype == np.float64
    x = ag.randn(3, 4, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.dtype == np.float32
    assert ag.rand(5).numpy().min() >= 0


def test_python_scalars_never_upcast() -> None:
    x = ag.tensor([1.0, 2.0])
    for y in (x * 2, x + 2.5, 2.0 / x, x**2, x - np.float64(1.0), x * np.array(3.0)):
        assert y.dtype == np.float32
    i = ag.tensor([1, 2])
    assert (i * 2).dtype == np.int64
    assert (i * 2.5).dtype == np.float32
    assert (i / 2).dtype == np.float32


def test_randomness_follows_manual_seed() -> None:
    ag.manual_seed(42)
    a = ag.randn(4)
    ag.manual_seed(42)
    np.testing.assert_array_equal(ag.randn(4).numpy(), a.numpy())


def test_conversion_and_identity() -> None:
    x = ag.tensor([[1.0, 2.0]], requires_grad=True)
    assert x.numpy() is x.data  # shares memory
    assert np.asarray(x) is x.data
    assert x.tolist() == [[1.0, 2.0]]
    assert ag.tensor(3.0).item() == 3.0
    with pytest.raises(ValueError, match=r"only one-element tensors.*\(1, 2\)"):
        x.item()
    assert x.size == 2 and x.ndim == 2 and x.shape == (1, 2) and len(x) == 1
    d = {x: 1}
    assert d[x] == 1  # hash by identity
    assert isinstance(x == x, Tensor)
    assert "requires_grad=True" in repr(x) and "dtype=float32" in repr(x)
    assert "grad_fn=<MulBackward>" in repr(x * 2)


def test_bad_input_types_raise_type_error() -> None:
    for bad in ("abc", None, {"a": 1}, np.array(["a"]), np.array([object()])):
        with pytest.raises(TypeError):
            ag.tensor(bad)
    with pytest.raises(ValueError, match="rectangular"):
        ag.tensor([[1.0], [1.0, 2.0]])
    x = ag.tensor([1.0])
    with pytest.raises(TypeError, match="add: unsupported operand type str"):
        x + "a"
    with pytest.raises(TypeError, match="unsupported operand type NoneType"):
        x * None


def test_shape_mismatch_raises_value_error_naming_op_and_shapes() -> None:
    a, b = ag.ones(2, 3), ag.ones(4)
    with pytest.raises(ValueError, match=r"add: .*\(2, 3\).*\(4,\)"):
        a + b
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4,\) do not align"):
        a @ b
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        a.reshape(4, 2)
    with pytest.raises(ValueError, match="cat: shapes"):
        ag.cat([a, b])
    with pytest.raises(IndexError, match="getitem"):
        a[5]


def test_empty_and_zero_d_reductions() -> None:
    e = ag.zeros(0)
    assert e.sum().item() == 0.0
    assert np.isnan(e.mean().item())
    with pytest.raises(ValueError, match="max: cannot reduce an empty array"):
        e.max()
    z = ag.tensor(2.0, requires_grad=True)
    (z * z).sum().backward()
    assert z.grad is not None and z.grad.shape == ()


# ---- subgradient conventions (the table in the package README) ---------------------------


def _grad(fn: object, values: list[float]) -> list[float]:
    x = ag.tensor(values, requires_grad=True, dtype="float64")
    fn(x).sum().backward()  # type: ignore[operator]
    assert x.grad is not None
    return list(x.grad.numpy())


def test_relu_at_zero_is_zero() -> None:
    assert _grad(ag.relu, [0.0, -1.0, 2.0]) == [0.0, 0.0, 1.0]


def test_abs_at_zero_is_zero() -> None:
    assert _grad(ag.abs, [0.0, -3.0, 2.0]) == [0.0, -1.0, 1.0]


def test_max_and_min_ties_split_evenly() -> None:
    assert _grad(lambda x: x.max(), [1.0, 3.0, 3.0]) == [0.0, 0.5, 0.5]
    assert _grad(lambda x: x.min(), [2.0, 2.0, 2.0, 5.0]) == pytest.approx(
        [1 / 3, 1 / 3, 1 / 3, 0.0]
    )
    assert _grad(lambda x: ag.maximum(x, ag.tensor(1.0, dtype="float64")), [1.0, 0.0, 2.0]) == [
        0.5,
        0.0,
        1.0,
    ]


def test_clip_passes_gradient_at_its_bounds() -> None:
    assert _grad(lambda x: x.clip(0.0, 1.0), [0.0, 1.0, 0.5, -1.0, 2.0]) == [
        1.0,
        1.0,
        1.0,
        0.0,
        0.0,
    ]


def test_where_gives_exact_zero_to_the_unselected_branch() -> None:
    a = ag.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype="float64")
    b = ag.tensor([4.0, 5.0, 6.0], requires_grad=True, dtype="float64")
    y = ag.where(ag.tensor([True, False, True]), a, b)
    # an upstream gradient with NaN and inf: masking by multiplication would leak them
    y.backward(ag.tensor([np.nan, np.inf, 2.0], dtype="float64"))
    assert a.grad is not None and b.grad is not None
    ga, gb = a.grad.numpy(), b.grad.numpy()
    assert ga[1] == 0.0 and gb[0] == 0.0 and gb[2] == 0.0
    assert np.isnan(ga[0]) and gb[1] == np.inf and ga[2] == 2.0


def test_leaky_relu_and_sqrt_follow_pytorch() -> None:
    assert _grad(lambda x: ag.leaky_relu(x, 0.1), [0.0, -1.0]) == pytest.approx([0.1, 0.1])
    assert _grad(ag.sqrt, [4.0]) == [0.25]


def test_power_rules_at_zero_follow_pytorch() -> None:
    assert _grad(lambda x: x**0, [0.0, 2.0]) == [0.0, 0.0]
    a = ag.tensor([0.0, 2.0], requires_grad=True, dtype="float64")
    b = ag.tensor([2.0, 3.0], requires_grad=True, dtype="float64")
    (a**b).sum().backward()
    assert b.grad is not None and a.grad is not None
    assert b.grad.numpy()[0] == 0.0  # d/db of a**b at a = 0, b >= 0
    assert b.grad.numpy()[1] == pytest.approx(8 * np.log(2))
    assert a.grad.numpy().tolist() == [0.0, 12.0]


def test_sqrt_at_zero_is_inf() -> None:
    assert _grad(ag.sqrt, [0.0]) == [np.inf]


def test_indexing_one_element_gives_a_0d_tensor() -> None:
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[1]
    assert isinstance(y.data, np.ndarray)
    assert y.shape == ()
    y.backward()
    assert x.grad is not None
    assert x.grad.numpy().tolist() == [0.0, 1.0, 0.0]
