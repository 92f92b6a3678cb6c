"""Scans, gathers and shape ops of the op-coverage issue: cumsum, cumprod (zeros exact),
gather, take_along_axis, scatter_add, narrow, split, chunk, flip, roll, pad, repeat, tile,
tril/triu, einsum, trace and diagonal: float64 gradchecks (negative axes, empty and size-1
axes, broadcasting), forward values against NumPy in float32 and float64, views, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.autograd as ag
from gradwise.autograd import Tensor, gradcheck

Arr = np.ndarray[Any, Any]
Shape = tuple[int, ...]


def _t(rng: np.random.Generator, *shape: int, dtype: type = np.float64) -> Tensor:
    return ag.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


# ---- cumsum / cumprod --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 0, 3), 1), ((2, 1, 3), -1), ((), 0)],
)
def test_cumsum_cumprod_gradcheck(shape: Shape, axis: int, rng: np.random.Generator) -> None:
    x = _t(rng, *shape)
    assert gradcheck(lambda t: ag.cumsum(t, axis), [x])
    assert gradcheck(lambda t: ag.cumprod(t, axis), [x])
    np.testing.assert_allclose(
        x.cumsum(axis).numpy(), np.cumsum(x.numpy(), axis=axis if shape else None).reshape(shape)
    )
    np.testing.assert_allclose(
        x.cumprod(axis).numpy(), np.cumprod(x.numpy(), axis=axis if shape else None).reshape(shape)
    )


def _cumprod_grad_naive(x: Arr, g: Arr) -> Arr:
    """dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j, by brute force (1-D)."""
    n = x.size
    out = np.zeros(n)
    for k in range(n):
        for i in range(k, n):
            out[k] += g[i] * np.prod([x[j] for j in range(i + 1) if j != k])
    return out


@pytest.mark.parametrize(
    "values",
    [
        [2.0, 0.0, 3.0, 4.0],
        [0.0, 2.0, 3.0],
        [2.0, 3.0, 0.0],
        [1.5, 0.0, 2.0, 0.0, 3.0],
        [0.0, 0.0, 0.0],
        [0.0],
        [-1.0, 0.5, 0.0, 0.0, 2.0, -3.0],
    ],
    ids=str,
)
def test_cumprod_zeros_exact(values: list[float], rng: np.random.Generator) -> None:
    a = np.array(values)
    g = rng.standard_normal(a.size)
    x = ag.tensor(a, requires_grad=True)
    ag.cumprod(x, 0).backward(g)
    assert x.grad is not None
    want = _cumprod_grad_naive(a, g)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-14, atol=1e-14)
    assert np.isfinite(x.grad.numpy()).all()
    assert gradcheck(lambda t: ag.cumprod(t, 0), [ag.tensor(a, requires_grad=True)])


def test_cumprod_zeros_batched_axis(rng: np.random.Generator) -> None:
    a = rng.standard_normal((3, 5, 2))
    a[0, 1, 0] = 0.0
    a[1, 0, 1] = a[1, 3, 1] = 0.0
    a[2, :, 0] = 0.0
    x = ag.tensor(a, requires_grad=True)
    g = rng.standard_normal(a.shape)
    ag.cumprod(x, -2).backward(g)
    assert x.grad is not None
    for i in range(3):
        for k in range(2):
            want = _cumprod_grad_naive(a[i, :, k], g[i, :, k])
            np.testing.assert_allclose(x.grad.numpy()[i, :, k], want, rtol=1e-13, atol=1e-14)
    assert gradcheck(lambda t: ag.cumprod(t, 1), [ag.tensor(a, requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scans_keep_dtype(dtype: type, rng: np.random.Generator) -> None:
    x = _t(rng, 4, 3, dtype=dtype)
    for y in (ag.cumsum(x, 0), ag.cumprod(x, 1)):
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad is not None and x.grad.dtype == dtype
        x.grad = None
    assert ag.cumsum(ag.tensor([1, 2, 3]), 0).dtype == np.int64


# ---- gather, take_along_axis, scatter_add ------------------------------------------------


def test_gather_matches_torch_semantics(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4)
    idx = np.array([[0, 3], [1, 1]])  # smaller than x outside axis 1: x is cut to 2 rows
    y = ag.gather(x, 1, idx)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(x.numpy()[:2], idx, 1))
    assert gradcheck(lambda t: ag.gather(t, 1, idx), [x])
    idx0 = np.array([[2, 0, 0, 1], [2, 2, 1, 0], [0, 0, 0, 0]])  # repeats accumulate
    assert gradcheck(lambda t: ag.gather(t, -2, ag.tensor(idx0)), [x])
    ag.gather(x, 0, idx0).sum().backward()
    assert x.grad is not None
    want = np.zeros((3, 4))
    for (_i, j), v in np.ndenumerate(idx0):
        want[v, j] += 1
    np.testing.assert_array_equal(x.grad.numpy(), want)
    assert x.gather(1, idx).shape == (2, 2)


def test_gather_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((4, 5, 3))
    idx = rng.integers(0, 5, size=(2, 7, 3))
    x = ag.tensor(a, requires_grad=True)
    g = rng.standard_normal(idx.shape)
    y = ag.gather(x, 1, idx)
    y.backward(g)
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.gather(tx, 1, torch.tensor(idx))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-14)  # type: ignore[union-attr]


def test_gather_empty_and_zero_d(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4)
    e = ag.gather(x, 1, np.zeros((3, 0), dtype=np.int64))
    assert e.shape == (3, 0)
    e.sum().backward()
    assert x.grad is not None and not x.grad.numpy().any()
    s = ag.tensor(2.5, requires_grad=True)
    out = ag.gather(s, 0, np.array(0))
    assert out.shape == () and out.item() == 2.5


def test_take_along_axis_numpy_semantics(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4)
    idx = np.argsort(x.numpy(), axis=1)
    y = ag.take_along_axis(x, idx, 1)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(x.numpy(), idx, 1))
    assert gradcheck(lambda t: ag.take_along_axis(t, idx, 1), [x])
    neg = np.array([[-1], [0], [-4]])
    np.testing.assert_array_equal(
        ag.take_along_axis(x, neg, -1).numpy(), np.take_along_axis(x.numpy(), neg, -1)
    )
    # broadcasting both ways outside the axis
    xb = _t(rng, 1, 4, 2)
    ib = rng.integers(0, 4, size=(3, 5, 1))
    yb = ag.take_along_axis(xb, ib, 1)
    np.testing.assert_array_equal(yb.numpy(), np.take_along_axis(xb.numpy(), ib, 1))
    assert gradcheck(lambda t: ag.take_along_axis(t, ib, 1), [xb])
    flat = ag.take_along_axis(x, np.array([0, 11, 5]), None)
    np.testing.assert_array_equal(flat.numpy(), x.numpy().reshape(-1)[[0, 11, 5]])
    assert x.take_along_axis(idx, 1).shape == (3, 4)


def test_scatter_add_forward_backward(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 5)
    src = _t(rng, 2, 6)
    idx = np.array([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]])
    y = ag.scatter_add(x, 0, idx, src)
    want = x.numpy().copy()
    for (i, j), v in np.ndenumerate(idx):
        want[v, j] += src.numpy()[i, j]
    np.testing.assert_allclose(y.numpy(), want)
    assert gradcheck(lambda a, b: ag.scatter_add(a, 0, idx, b), [x, src])
    idx1 = np.array([[4, 4, 0], [1, 3, 3]])
    assert gradcheck(lambda a, b: a.scatter_add(-1, idx1, b), [x, src])


def test_scatter_add_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a, s = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    idx = rng.integers(
        0, 4, size=(5, 3)
    )  # torch 2.13's backward fails for an index smaller than src
    x, src = ag.tensor(a, requires_grad=True), ag.tensor(s, requires_grad=True)
    g = rng.standard_normal((4, 3))
    y = ag.scatter_add(x, 0, idx, src)
    y.backward(g)
    tx, ts = torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)
    ty = torch.scatter_add(tx, 0, torch.tensor(idx), ts)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(src.grad.numpy(), ts.grad.numpy())  # type: ignore[union-attr]
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())  # type: ignore[union-attr]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gathers_keep_dtype(dtype: type, rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4, dtype=dtype)
    idx = np.array([[1, 0], [2, 3], [0, 0]])
    assert ag.gather(x, 1, idx).dtype == dtype
    assert ag.take_along_axis(x, idx, 1).dtype == dtype
    y = ag.scatter_add(x, 1, idx, _t(rng, 3, 2, dtype=dtype))
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype


def test_gather_scatter_errors(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4)
    with pytest.raises(IndexError, match=r"gather: index 4 is out of bounds"):
        ag.gather(x, 1, np.array([[4]]))
    with pytest.raises(IndexError, match=r"gather: index -1"):
        ag.gather(x, 1, np.array([[-1]]))
    with pytest.raises(TypeError, match="gather: index must have an integer dtype"):
        ag.gather(x, 1, np.array([[0.0]]))
    with pytest.raises(TypeError, match="gather"):
        ag.gather(x, 1, ag.tensor([[True]]))
    with pytest.raises(ValueError, match=r"gather: index has 1 dimensions.*\(3, 4\)"):
        ag.gather(x, 1, np.array([0]))
    with pytest.raises(ValueError, match=r"gather: index shape \(4, 1\)"):
        ag.gather(x, 1, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(IndexError, match="take_along_axis: index -5"):
        ag.take_along_axis(x, np.array([[-5]]), 1)
    with pytest.raises(ValueError, match="take_along_axis: shapes"):
        ag.take_along_axis(x, np.zeros((2, 1), dtype=np.int64), 1)
    with pytest.raises(IndexError, match="scatter_add: index 3"):
        ag.scatter_add(x, 0, np.array([[3]]), _t(rng, 1, 1))
    with pytest.raises(TypeError, match="scatter_add: src has dtype float32"):
        ag.scatter_add(x, 0, np.array([[0]]), _t(rng, 1, 1, dtype=np.float32))
    with pytest.raises(ValueError, match=r"scatter_add: index shape \(2, 1\)"):
        ag.scatter_add(x, 0, np.zeros((2, 1), dtype=np.int64), _t(rng, 1, 1))
    with pytest.raises(ValueError, match="gather: axis 2 is out of range"):
        ag.gather(x, 2, np.zeros((1, 1), dtype=np.int64))


# ---- narrow, split, chunk ----------------------------------------------------------------


def test_narrow_is_a_view_with_gradient(rng: np.random.Generator) -> None:
    x = _t(rng, 4, 5)
    y = ag.narrow(x, -1, 1, 3)
    np.testing.assert_array_equal(y.numpy(), x.numpy()[:, 1:4])
    assert np.shares_memory(y.numpy(), x.numpy())
    assert gradcheck(lambda t: ag.narrow(t, 0, -3, 2), [x])
    assert x.narrow(1, 0, 0).shape == (4, 0)
    with pytest.raises(IndexError, match=r"narrow: start \(3\) \+ length \(3\) exceeds"):
        ag.narrow(x, 0, 3, 3)
    with pytest.raises(IndexError, match="narrow: start 6"):
        ag.narrow(x, 1, 6, 0)
    with pytest.raises(ValueError, match="narrow: length"):
        ag.narrow(x, 1, 0, -1)


def test_split_and_chunk_as_torch(rng: np.random.Generator) -> None:
    x = _t(rng, 7, 3)
    parts = ag.split(x, 3)
    assert [p.shape for p in parts] == [(3, 3), (3, 3), (1, 3)]
    assert all(np.shares_memory(p.numpy(), x.numpy()) for p in parts)
    parts2 = x.split([2, 0, 5], axis=0)
    assert [p.shape[0] for p in parts2] == [2, 0, 5]
    # torch 2.13: [c.shape[0] for c in torch.arange(7).chunk(3)] == [3, 3, 1];
    # torch.arange(6).chunk(4) gives 3 chunks of 2; torch.arange(5).chunk(2): 3 and 2
    assert [c.shape[0] for c in ag.chunk(x, 3)] == [3, 3, 1]
    assert [c.shape[0] for c in ag.chunk(ag.arange(6), 4)] == [2, 2, 2]
    assert [c.shape[1] for c in ag.chunk(_t(rng, 2, 5), 2, axis=-1)] == [3, 2]
    assert [c.shape for c in ag.chunk(ag.zeros(0, 2), 2)] == [(0, 2), (0, 2)]

    def f(t: Tensor) -> Tensor:
        a, b, c = ag.split(t, [1, 2, 4])
        return ag.cat([c * 2.0, a.sum(0, keepdims=True) * b[:1]], axis=0)

    assert gradcheck(f, [x])
    assert gradcheck(lambda t: ag.chunk(t, 2, axis=1)[1] ** 2, [x])
    with pytest.raises(
        ValueError, match=r"split: sections \[2, 2\] must be non-negative and add up to 7"
    ):
        ag.split(x, [2, 2])
    with pytest.raises(ValueError, match="split: split_size must be positive"):
        ag.split(x, 0)
    with pytest.raises(ValueError, match="chunk: chunks must be positive"):
        ag.chunk(x, 0)
    with pytest.raises(TypeError, match="split"):
        ag.split(x, 1.5)  # type: ignore[arg-type]


# ---- flip, roll --------------------------------------------------------------------------


def test_flip_roll(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4, 2)
    for axis in (0, -1, (0, 2), None):
        np.testing.assert_array_equal(ag.flip(x, axis).numpy(), np.flip(x.numpy(), axis))
        assert gradcheck(lambda t, a=axis: ag.flip(t, a) * t, [x])
    assert not np.shares_memory(ag.flip(x, 0).numpy(), x.numpy())  # a copy, as PyTorch
    rolls: list[tuple[Any, Any]] = [
        (1, None),
        (-5, None),
        (2, 1),
        ((1, -2), (0, 2)),
        ((1, 1), (0, 0)),
    ]
    for shifts, axis in rolls:
        np.testing.assert_array_equal(
            ag.roll(x, shifts, axis).numpy(), np.roll(x.numpy(), shifts, axis)
        )
        assert gradcheck(lambda t, s=shifts, a=axis: ag.roll(t, s, a) * t, [x])
    assert x.roll(1, 0).shape == x.flip(1).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="roll: shifts"):
        ag.roll(x, (1, 2), (0,))
    with pytest.raises(ValueError, match="flip: axis 3"):
        ag.flip(x, 3)


# ---- pad ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    ("shape", "pad"),
    [((5,), (2, 1)), ((2, 4, 5), (1, 2, 3, 0)), ((2, 3, 4, 4), (0, 1, 2, 1, 1, 1))],
)
def test_pad_modes_match_torch_convention(
    mode: str, shape: Shape, pad: tuple[int, ...], rng: np.random.Generator
) -> None:
    x = _t(rng, *shape)
    y = ag.pad(x, pad, mode=mode)
    np_mode = {
        "constant": "constant",
        "reflect": "reflect",
        "replicate": "edge",
        "circular": "wrap",
    }[mode]
    widths: Any = [(0, 0)] * (len(shape) - len(pad) // 2) + [
        (pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))
    ]
    want = np.pad(x.numpy(), widths, mode=np_mode)  # type: ignore[call-overload]
    np.testing.assert_array_equal(y.numpy(), want)
    assert gradcheck(lambda t: ag.pad(t, pad, mode=mode) ** 2, [x])


def test_pad_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    a = rng.standard_normal((2, 3, 4, 5))
    g = None
    for mode, p in [
        ("reflect", (3, 2, 1, 3)),
        ("replicate", (2, 2, 0, 3)),
        ("circular", (4, 1, 2, 3)),
        ("constant", (-1, 2, 1, -2)),
    ]:
        x = ag.tensor(a, requires_grad=True)
        y = ag.pad(x, p, mode=mode)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        tx = torch.tensor(a, requires_grad=True)
        ty = f.pad(tx, p, mode=mode)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), err_msg=mode)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-13, err_msg=mode)  # type: ignore[union-attr]


def test_pad_constant_value_negative_and_errors(rng: np.random.Generator) -> None:
    x = _t(rng, 3, 4, dtype=np.float32)
    y = ag.pad(x, (1, 1), value=2.5)
    assert y.dtype == np.float32 and y.shape == (3, 6)
    np.testing.assert_array_equal(y.numpy()[:, 0], np.full(3, 2.5, np.float32))
    crop = ag.pad(x, (-1, 0, 0, -2))
    np.testing.assert_array_equal(crop.numpy(), x.numpy()[:1, 1:])
    x64 = _t(rng, 3, 4)
    assert gradcheck(lambda t: ag.pad(t, (-1, 2, 1, -1)), [x64])
    with pytest.raises(
        ValueError, match=r"pad: reflect padding \(0, 4\) of axis 1 must be smaller than its size 4"
    ):
        ag.pad(x, (0, 4), mode="reflect")
    with pytest.raises(ValueError, match="pad: pad"):
        ag.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad: mode"):
        ag.pad(x, (1, 1), mode="wrap")
    with pytest.raises(ValueError, match="does not take a value"):
        ag.pad(x, (1, 1), mode="reflect", value=1.0)
    with pytest.raises(ValueError, match="negative size"):
        ag.pad(x, (-3, -2))


# ---- repeat, tile ------------------------------------------------------------------------


def test_repeat_tile_as_torch(rng: np.random.Generator) -> None:
    x = _t(rng, 2, 3)
    # torch 2.13: torch.ones(2, 3).repeat(4, 2).shape == (8, 6); .repeat(2, 1, 1) == (2, 2, 3)
    assert x.repeat(4, 2).shape == (8, 6)
    assert x.repeat((2, 1, 1)).shape == (2, 2, 3)
    np.testing.assert_array_equal(x.repeat(2, 1, 3).numpy(), np.tile(x.numpy(), (2, 1, 3)))
    assert x.tile(2).shape == (2, 6)  # torch.tile pads dims with leading 1s
    assert ag.tile(x, (2, 1, 1)).shape == (2, 2, 3)
    for sizes in [(1, 1), (3, 2), (2, 1, 2), (0, 2), (2, 0)]:
        assert gradcheck(lambda t, s=sizes: t.repeat(*s) ** 2, [x])
    e = _t(rng, 0, 2)
    assert e.repeat(3, 2).shape == (0, 4)
    with pytest.raises(ValueError, match=r"repeat: 1 sizes \(2,\) are fewer"):
        x.repeat(2)
    with pytest.raises(ValueError, match="non-negative"):
        x.repeat(-1, 1)


# ---- tril, triu, trace, diagonal ---------------------------------------------------------


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
def test_tril_triu(k: int, rng: np.random.Generator) -> None:
    x = _t(rng, 2, 3, 4)
    np.testing.assert_array_equal(ag.tril(x, k).numpy(), np.tril(x.numpy(), k))
    np.testing.assert_array_equal(x.triu(k).numpy(), np.triu(x.numpy(), k))
    assert gradcheck(lambda t: ag.tril(t, k) + ag.triu(t, k) * 3.0, [x])
    assert ag.tril(x, diagonal=k).shape == x.shape


def test_trace_and_diagonal(rng: np.random.Generator) -> None:
    for shape in [(3, 3), (3, 5), (4, 2), (0, 3)]:
        x = _t(rng, *shape)
        np.testing.assert_allclose(ag.trace(x).numpy(), np.trace(x.numpy()))
        assert gradcheck(ag.trace, [x])
    x = _t(rng, 3, 4, 5)
    for offset, a1, a2 in [
        (0, 0, 1),
        (1, 0, 1),
        (-2, 0, 1),
        (2, -1, 0),
        (0, 1, 2),
        (-1, 2, 0),
        (9, 0, 1),
    ]:
        d = ag.diagonal(x, offset, a1, a2)
        np.testing.assert_array_equal(d.numpy(), np.diagonal(x.numpy(), offset, a1, a2))
        assert gradcheck(lambda t, o=offset, p=a1, q=a2: ag.diagonal(t, o, p, q) * 2.0, [x])
    d = x.diagonal()
    assert np.shares_memory(d.numpy(), x.numpy()) and d.numpy().flags.writeable
    assert ag.trace(ag.tensor(np.eye(3, dtype=np.float32))).dtype == np.float32
    with pytest.raises(ValueError, match=r"trace: expected a 2-D tensor, got shape \(3, 4, 5\)"):
        ag.trace(x)
    with pytest.raises(ValueError, match="diagonal: axis1 and axis2 must differ"):
        ag.diagonal(x, 0, 1, -2)
    with pytest.raises(ValueError, match="tril: needs at least 2 dimensions"):
        ag.tril(ag.ones(3))


def test_diagonal_inplace_write_reaches_base(rng: np.random.Generator) -> None:
    a = ag.tensor(rng.standard_normal((3, 3)))
    a.diagonal().fill_(0.0)
    np.testing.assert_array_equal(np.diag(a.numpy()), np.zeros(3))


# ---- einsum ------------------------------------------------------------------------------

EINSUM: list[tuple[str, list[Shape]]] = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij,kl->", [(2, 3), (4, 1)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...,i->...", [(3, 2, 2), (3,)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ij,ij->ij", [(3, 1), (3, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),
    ("bn,bn,n->b", [(2, 3), (2, 3), (3,)]),
    ("ij,j->i", [(0, 3), (3,)]),
    ("i,i->i", [(1,), (1,)]),
]


@pytest.mark.parametrize(("spec", "shapes"), EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum_forward_and_gradcheck(
    spec: str, shapes: list[Shape], rng: np.random.Generator
) -> None:
    xs = [_t(rng, *s) for s in shapes]
    out = ag.einsum(spec, *xs)
    try:
        want = np.einsum(spec, *[x.numpy() for x in xs])
    except ValueError:  # NumPy does not stretch length-1 letters; PyTorch does
        want = np.einsum(spec, *np.broadcast_arrays(*[x.numpy() for x in xs]))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-13, atol=1e-13)
    assert gradcheck(lambda *ts: ag.einsum(spec, *ts), xs)


def test_einsum_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    for spec, shapes in EINSUM:
        arrays = [rng.standard_normal(s) for s in shapes]
        xs = [ag.tensor(a, requires_grad=True) for a in arrays]
        y = ag.einsum(spec, *xs)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        txs = [torch.tensor(a, requires_grad=True) for a in arrays]
        ty = torch.einsum(spec, *txs)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(
            y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=spec
        )
        for x, tx in zip(xs, txs, strict=True):
            assert x.grad is not None
            np.testing.assert_allclose(
                x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=spec
            )


def test_einsum_dtypes_and_errors(rng: np.random.Generator) -> None:
    a32, b32 = _t(rng, 3, 4, dtype=np.float32), _t(rng, 4, dtype=np.float32)
    assert ag.einsum("ij,j->i", a32, b32).dtype == np.float32
    y = ag.einsum("ij,j->i", a32, _t(rng, 4))
    assert y.dtype == np.float64
    y.sum().backward()
    assert a32.grad is not None and a32.grad.dtype == np.float32
    assert ag.einsum("ij,j->i", [a32, b32]).shape == (3,)
    with pytest.raises(ValueError, match=r"einsum: letter 'j' has length 4 in one operand but 3"):
        ag.einsum("ij,j->i", a32, ag.ones(3))
    with pytest.raises(
        ValueError, match=r"einsum: term 'ijk' does not fit an operand of shape \(3, 4\)"
    ):
        ag.einsum("ijk->i", a32)
    with pytest.raises(ValueError, match="operand terms"):
        ag.einsum("ij,jk->ik", a32)
    with pytest.raises(ValueError, match="output letter 'z'"):
        ag.einsum("ij->z", a32)
    with pytest.raises(ValueError, match="repeat a letter"):
        ag.einsum("ij->ii", a32)
    with pytest.raises(ValueError, match="repeated in operand 0"):
        ag.einsum("ii->i", a32)
    with pytest.raises(ValueError, match="invalid subscripts"):
        ag.einsum("i1->i", a32)


# ---- property tests ----------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
    st.data(),
)
def test_property_scans_and_flip(shape: Shape, data: st.DataObject) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    a[np.abs(a) < 0.3] = 0.0  # plenty of exact zeros for cumprod
    x = ag.tensor(a, requires_grad=True)
    np.testing.assert_allclose(ag.cumsum(x, axis).numpy(), np.cumsum(a, axis))
    np.testing.assert_allclose(ag.cumprod(x, axis).numpy(), np.cumprod(a, axis))
    assert gradcheck(lambda t: ag.cumprod(t, axis) + ag.flip(ag.cumsum(t, axis), axis), [x])


@settings(deadline=None, max_examples=25)
@given(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), st.data())
def test_property_gather_grad_is_scatter(shape: Shape, data: st.DataObject) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    ishape = tuple(
        data.draw(st.integers(0, 4)) if d == axis % len(shape) else data.draw(st.integers(1, s))
        for d, s in enumerate(shape)
    )
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, n - 1)))
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal(shape), requires_grad=True)
    g = rng.standard_normal(ishape)
    ag.gather(x, axis, idx).backward(g)
    ref = ag.scatter_add(ag.zeros(*shape, dtype="float64"), axis, idx, ag.tensor(g))
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), ref.numpy(), rtol=1e-14)


# ---- forward mode (jvp) and double backward ---------------------------------------------------

_IDX = np.array([[2, 0, 1], [1, 1, 0]])
HIGHER: list[tuple[str, Any, list[Shape]]] = [
    ("cumsum", lambda t: ag.cumsum(t * t, -1), [(2, 3)]),
    ("cumprod", lambda t: ag.cumprod(t, 1), [(2, 4)]),
    ("cumprod_zero", lambda t: ag.cumprod(t * ag.tensor([1.0, 0.0, 1.0, 1.0]), 1), [(2, 4)]),
    ("gather", lambda t: ag.gather(t * t, 0, _IDX), [(3, 4)]),
    ("take_along_axis", lambda t: ag.take_along_axis(t * t, _IDX, 1), [(2, 4)]),
    ("scatter_add", lambda a, b: ag.scatter_add(a * b.sum(), 1, _IDX, b * b), [(2, 4), (3, 4)]),
    ("narrow", lambda t: ag.narrow(t, 1, 1, 2) ** 2, [(2, 4)]),
    ("split", lambda t: ag.split(t, [1, 3], axis=1)[1] ** 3, [(2, 4)]),
    ("flip", lambda t: ag.flip(t, (0, 1)) * t, [(2, 3)]),
    ("roll", lambda t: ag.roll(t, (1, -1), (0, 1)) * t, [(2, 3)]),
    ("pad_constant", lambda t: ag.pad(t, (1, -1, 0, 2), value=0.5) ** 2, [(2, 3)]),
    ("pad_reflect", lambda t: ag.pad(t * t, (2, 1), mode="reflect"), [(2, 4)]),
    ("pad_replicate", lambda t: ag.pad(t * t, (1, 2, 1, 0), mode="replicate"), [(2, 3)]),
    ("pad_circular", lambda t: ag.pad(t * t, (2, 1), mode="circular"), [(2, 3)]),
    ("repeat", lambda t: t.repeat(2, 1, 2) ** 2, [(2, 3)]),
    ("tril", lambda t: ag.tril(t * t, -1) + ag.triu(t, 1) ** 3, [(3, 3)]),
    ("trace", lambda t: ag.trace(t * t), [(3, 4)]),
    ("diagonal", lambda t: ag.diagonal(t * t, 1, -1, 0), [(3, 4, 2)]),
    ("einsum_matmul", lambda a, b: ag.einsum("ij,jk->ik", a, b) ** 2, [(2, 3), (3, 2)]),
    ("einsum_diag", lambda a: ag.einsum("ii->i", a * a), [(3, 3)]),
    ("einsum_ellipsis", lambda a, b: ag.einsum("...ij,j->...i", a, b * b), [(2, 2, 3), (3,)]),
    ("einsum_stretch", lambda a, b: ag.einsum("ij,ij->i", a, b) ** 2, [(3, 1), (3, 2)]),
]


def _fd_jvp(fn: Any, xs: list[Arr], vs: list[Arr], eps: float = 1e-6) -> Arr:
    with ag.no_grad():
        hi = fn(*[ag.tensor(x + eps * v) for x, v in zip(xs, vs, strict=True)]).numpy()
        lo = fn(*[ag.tensor(x - eps * v) for x, v in zip(xs, vs, strict=True)]).numpy()
    out: Arr = (hi - lo) / (2 * eps)
    return out


@pytest.mark.parametrize(("name", "fn", "shapes"), HIGHER, ids=[c[0] for c in HIGHER])
def test_jvp_matches_finite_differences(
    name: str, fn: Any, shapes: list[Shape], rng: np.random.Generator
) -> None:
    xs = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    out, tangent = ag.jvp(fn, tuple(ag.tensor(x) for x in xs), tuple(ag.tensor(v) for v in vs))
    np.testing.assert_allclose(out.numpy(), fn(*[ag.tensor(x) for x in xs]).numpy())
    np.testing.assert_allclose(tangent.numpy(), _fd_jvp(fn, xs, vs), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "fn", "shapes"), HIGHER, ids=[c[0] for c in HIGHER])
def test_gradgradcheck(name: str, fn: Any, shapes: list[Shape], rng: np.random.Generator) -> None:
    xs = [ag.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert ag.gradgradcheck(fn, xs)


def test_non_contiguous_inputs(rng: np.random.Generator) -> None:
    base = rng.standard_normal((6, 5))
    x = ag.tensor(base, requires_grad=True)
    idx = np.array([[0, 2, 1, 1, 0, 2]])
    cases: list[tuple[Any, Any]] = [
        (lambda t: ag.cumprod(t.T[::2], 1), lambda a: np.cumprod(a.T[::2], 1)),
        (lambda t: ag.gather(t.T, 0, idx), lambda a: np.take_along_axis(a.T, idx, 0)),
        (
            lambda t: ag.pad(t[::2], (1, 2), mode="reflect"),
            lambda a: np.pad(a[::2], ((0, 0), (1, 2)), "reflect"),
        ),
        (lambda t: ag.einsum("ij,ij->j", t.T, t.T), lambda a: np.einsum("ij,ij->j", a.T, a.T)),
        (lambda t: ag.diagonal(t.T, 1), lambda a: np.diagonal(a.T, 1)),
    ]
    for fn, ref in cases:
        np.testing.assert_allclose(fn(x).numpy(), ref(base), rtol=1e-14)
        assert gradcheck(fn, [x])


def test_inplace_change_of_a_saved_input_is_caught(rng: np.random.Generator) -> None:
    a, b = _t(rng, 2, 3), _t(rng, 3, 2)
    p, q = a * 1.0, b * 1.0
    y = ag.einsum("ij,jk->ik", p, q)
    assert y.grad_fn is not None and y.grad_fn.name() == "EinsumBackward"
    with ag.no_grad():
        q.add_(1.0)
    with pytest.raises(RuntimeError, match="EinsumBackward: a tensor this op saved"):
        y.sum().backward()
    c = a * 1.0
    z = ag.cumprod(c, 1)
    c.mul_(2.0)
    with pytest.raises(RuntimeError, match="CumprodBackward"):
        z.sum().backward()


SHAPE_OPS: list[tuple[str, Any, Any]] = [
    ("narrow", lambda t: ag.narrow(t, 1, 1, 2), lambda a: a[:, 1:3]),
    ("chunk", lambda t: ag.chunk(t, 2, 1)[0], lambda a: a[:, :2]),
    ("flip", lambda t: ag.flip(t, -1), lambda a: np.flip(a, -1)),
    ("roll", lambda t: ag.roll(t, 2, 1), lambda a: np.roll(a, 2, 1)),
    (
        "pad",
        lambda t: ag.pad(t, (1, 1), mode="reflect"),
        lambda a: np.pad(a, ((0, 0), (1, 1)), "reflect"),
    ),
    ("repeat", lambda t: t.repeat(2, 1), lambda a: np.tile(a, (2, 1))),
    ("tril", lambda t: ag.tril(t), np.tril),
    ("diagonal", lambda t: ag.diagonal(t), np.diagonal),
    ("trace", ag.trace, np.trace),
    ("einsum", lambda t: ag.einsum("ij,ij->i", t, t), lambda a: np.einsum("ij,ij->i", a, a)),
    ("gather", lambda t: ag.gather(t, 1, np.array([[0, 2]])), lambda a: a[:1, [0, 2]]),
    ("cumsum", lambda t: ag.cumsum(t, 0), lambda a: np.cumsum(a, 0)),
]


@pytest.mark.parametrize(("name", "fn", "ref"), SHAPE_OPS, ids=[c[0] for c in SHAPE_OPS])
def test_float32_stays_float32(name: str, fn: Any, ref: Any, rng: np.random.Generator) -> None:
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = ag.tensor(a, requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ref(a), rtol=1e-6)
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32


@settings(deadline=None, max_examples=25)
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), st.data())
def test_property_pad_roll_repeat(shape: Shape, data: st.DataObject) -> None:
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    pads = [data.draw(st.integers(0, shape[nd - 1 - i // 2] - 1)) for i in range(2 * k)]
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    shift = data.draw(st.integers(-5, 5))
    axis = data.draw(st.integers(-nd, nd - 1))
    sizes = data.draw(st.lists(st.integers(0, 2), min_size=nd, max_size=nd + 1))
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal(shape), requires_grad=True)
    np_mode: Any = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    widths: Any = [(0, 0)] * (nd - k) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k))]
    np.testing.assert_array_equal(
        ag.pad(x, pads, mode=mode).numpy(), np.pad(x.numpy(), widths, mode=np_mode)
    )
    np.testing.assert_array_equal(ag.roll(x, shift, axis).numpy(), np.roll(x.numpy(), shift, axis))
    np.testing.assert_array_equal(x.repeat(*sizes).numpy(), np.tile(x.numpy(), sizes))
    assert gradcheck(
        lambda t: ag.pad(ag.roll(t, shift, axis), pads, mode=mode).sum() + t.repeat(*sizes).sum(),
        [x],
    )
