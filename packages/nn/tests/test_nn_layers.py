"""Linear, activation modules, Dropout, Flatten and Embedding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise import nn
from gradwise.autograd import Tensor, gradcheck, manual_seed, no_grad, randn, tensor
from gradwise.nn import functional as F


def f64(*shape: int, seed: int = 0, requires_grad: bool = True) -> Tensor:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# ---- Linear --------------------------------------------------------------------------------


def test_linear_shapes_and_default_dtype() -> None:
    lin = nn.Linear(64, 128)
    assert lin.weight.shape == (128, 64)
    assert lin.bias is not None
    assert lin.bias.shape == (128,)
    assert lin.weight.dtype == np.float32
    assert lin.bias.dtype == np.float32
    assert nn.Linear(3, 2, dtype="float64").weight.dtype == np.float64
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Linear(3, 2, dtype=np.int64)


def test_linear_init_bounds_and_statistics() -> None:
    manual_seed(0)
    lin = nn.Linear(256, 512)
    bound = 1.0 / math.sqrt(256)
    w = lin.weight.numpy().astype(np.float64)
    assert lin.bias is not None
    b = lin.bias.numpy().astype(np.float64)
    assert np.abs(w).max() <= bound
    assert np.abs(b).max() <= bound
    # U(-a, a): mean 0, variance a^2 / 3; 131072 samples
    assert abs(w.mean()) < 0.01 * bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.02)
    assert np.abs(w).max() > 0.99 * bound


def test_linear_init_is_seeded() -> None:
    manual_seed(5)
    a = nn.Linear(4, 3)
    manual_seed(5)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4), (0, 4)])
def test_linear_forward_matches_numpy(dtype: type, shape: tuple[int, ...]) -> None:
    lin = nn.Linear(4, 3, dtype=dtype)
    rng = np.random.default_rng(1)
    x: np.ndarray = rng.standard_normal(shape).astype(dtype)
    y = lin(Tensor(x))
    assert lin.bias is not None
    ref = x.astype(np.float64) @ lin.weight.numpy().T.astype(np.float64) + lin.bias.numpy()
    assert y.dtype == dtype
    assert y.shape == (*shape[:-1], 3)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_linear_is_one_graph_node() -> None:
    lin = nn.Linear(4, 3)
    y = lin(randn(2, 4))
    assert y.grad_fn is not None
    assert y.grad_fn.name() == "LinearFunctionBackward"
    assert len(y.grad_fn.next_functions) == 3


def test_linear_gradcheck_with_batch_dims() -> None:
    x, w, b = f64(2, 3, 4, seed=1), f64(5, 4, seed=2), f64(5, seed=3)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    assert gradcheck(lambda x, w: F.linear(x, w), [f64(3, 4), f64(2, 4, seed=4)])
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [f64(4), w, b])


def test_linear_grads_match_numpy_and_skip_unneeded_input() -> None:
    lin = nn.Linear(4, 3, dtype=np.float64)
    x = f64(6, 4, requires_grad=False)
    g = np.random.default_rng(9).standard_normal((6, 3))
    lin(x).backward(g)
    assert lin.bias is not None
    assert lin.weight.grad is not None
    assert lin.bias.grad is not None
    np.testing.assert_allclose(lin.weight.grad.numpy(), g.T @ x.numpy())
    np.testing.assert_allclose(lin.bias.grad.numpy(), g.sum(0))
    assert x.grad is None


def test_linear_non_contiguous_input() -> None:
    lin = nn.Linear(4, 3, dtype=np.float64)
    base = f64(4, 6)
    x = base.T  # (6, 4), a transposed view
    y = lin(x)
    assert lin.bias is not None
    np.testing.assert_allclose(
        y.numpy(), x.numpy() @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12
    )
    assert gradcheck(lambda b: lin(b.T), [base])


@settings(deadline=None, max_examples=25)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
)
def test_linear_any_batch_shape(batch: list[int], n_in: int, n_out: int) -> None:
    lin = nn.Linear(n_in, n_out, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((*batch, n_in)), requires_grad=True)
    y = lin(x)
    assert y.shape == (*batch, n_out)
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(
        x.grad.numpy(), np.broadcast_to(lin.weight.numpy().sum(0), x.shape), rtol=1e-12
    )


def test_linear_errors() -> None:
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear: input of shape \(2, 5\).*\(3, 4\)"):
        lin(randn(2, 5))
    with pytest.raises(TypeError, match="Linear: input has dtype float64 but the weight has"):
        lin(Tensor(np.ones((2, 4))))
    with pytest.raises(TypeError, match="Linear: input must be a Tensor"):
        lin(np.ones((2, 4), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Linear"):
        lin(tensor([[1, 2, 3, 4]]))
    with pytest.raises(ValueError, match="in_features must be >= 0"):
        nn.Linear(-1, 2)


def test_linear_float32_end_to_end() -> None:
    lin = nn.Linear(3, 2)
    x = randn(4, 3, requires_grad=True)
    y = lin(x) * 2.0
    y.sum().backward()
    assert y.dtype == np.float32
    assert x.grad is not None
    assert x.grad.dtype == np.float32
    assert lin.weight.grad is not None
    assert lin.weight.grad.dtype == np.float32


def test_linear_detects_weight_change_before_backward() -> None:
    lin = nn.Linear(3, 2)
    y = lin(randn(4, 3, requires_grad=True))
    with no_grad():
        lin.weight.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


# ---- activations -----------------------------------------------------------------------------


def _np_gelu(x: np.ndarray) -> np.ndarray:
    erf = np.array([math.erf(v) for v in (x / math.sqrt(2)).reshape(-1)]).reshape(x.shape)
    out: np.ndarray = 0.5 * x * (1 + erf)
    return out


ACTS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), _np_gelu),
    (
        nn.GELU(approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.Softplus(beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (nn.Softmax(1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(axis=0), lambda x: x - np.log(np.exp(x).sum(0, keepdims=True))),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize(("module", "ref"), ACTS, ids=[repr(a[0]) for a in ACTS])
def test_activation_modules_match_numpy(module: nn.Module, ref: object) -> None:
    x = np.random.default_rng(3).standard_normal((3, 4))
    for dtype in (np.float32, np.float64):
        y = module(Tensor(x.astype(dtype)))
        assert y.dtype == dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y.numpy(), ref(x), rtol=tol, atol=tol)  # type: ignore[operator]


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(ValueError, match="GELU: approximate"):
        nn.GELU(approximate="fast")


def test_flatten_module_starts_at_axis_one() -> None:
    x = randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0)(x).shape == (120,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)


# ---- Dropout -----------------------------------------------------------------------------------


def test_dropout_train_and_eval() -> None:
    manual_seed(1)
    drop = nn.Dropout(0.25)
    x = Tensor(np.ones((200, 100), dtype=np.float32))
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert y.dtype == np.float32
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).numpy(), x.numpy())
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)


# ---- Embedding ---------------------------------------------------------------------------------


def test_embedding_init_and_lookup() -> None:
    manual_seed(2)
    emb = nn.Embedding(1000, 64)
    w = emb.weight.numpy()
    assert w.shape == (1000, 64)
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.01
    assert w.std() == pytest.approx(1.0, rel=0.02)
    idx = np.array([[3, 1], [3, 999]])
    out = emb(tensor(idx))
    assert out.shape == (2, 2, 64)
    np.testing.assert_array_equal(out.numpy(), w[idx])
    np.testing.assert_array_equal(emb(idx.astype(np.int32)).numpy(), w[idx])
    assert emb(tensor(5)).shape == (64,)


def test_embedding_repeated_indices_accumulate() -> None:
    emb = nn.Embedding(5, 3, dtype=np.float64)
    idx = tensor([[0, 2, 2], [4, 2, 0]])
    g = np.arange(18, dtype=np.float64).reshape(2, 3, 3)
    emb(idx).backward(g)
    assert emb.weight.grad is not None
    expected = np.zeros((5, 3))
    for i, row in zip(idx.numpy().reshape(-1), g.reshape(-1, 3), strict=True):
        expected[i] += row
    np.testing.assert_array_equal(emb.weight.grad.numpy(), expected)
    w = f64(5, 3)
    assert gradcheck(lambda w: F.embedding(idx, w), [w])


def test_embedding_padding_idx() -> None:
    emb = nn.Embedding(4, 2, padding_idx=1)
    np.testing.assert_array_equal(emb.weight.numpy()[1], 0)
    emb(tensor([1, 1, 2])).sum().backward()
    assert emb.weight.grad is not None
    np.testing.assert_array_equal(emb.weight.grad.numpy()[1], 0)
    np.testing.assert_array_equal(emb.weight.grad.numpy()[2], 1)
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3
    with pytest.raises(ValueError, match="padding_idx 4"):
        nn.Embedding(4, 2, padding_idx=4)


def test_embedding_errors() -> None:
    emb = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match="index 10 is out of range for a table of 10"):
        emb(tensor([1, 10]))
    with pytest.raises(IndexError, match="index -1"):
        emb(tensor([-1, 2]))
    with pytest.raises(TypeError, match="integer"):
        emb(tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="integer"):
        emb(tensor([True]))


def test_embedding_from_pretrained() -> None:
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    emb = nn.Embedding.from_pretrained(Tensor(table))
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(tensor([2])).numpy(), [[4.0, 5.0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
