"""gradwise.autograd.linalg: det, slogdet, inv, solve, cholesky and norm; batched float64
gradchecks, forward values against NumPy in float32 and float64, singular and
non-positive-definite inputs, shape errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.autograd as ag
from gradwise.autograd import Tensor, gradcheck, linalg

Arr = np.ndarray[Any, Any]
Shape = tuple[int, ...]


def _t(a: Arr) -> Tensor:
    return ag.tensor(a, requires_grad=True)


def _well_conditioned(rng: np.random.Generator, *shape: int) -> Arr:
    n = shape[-1]
    return rng.standard_normal(shape) + 3 * np.eye(n) if n else np.zeros(shape)


def _spd(rng: np.random.Generator, *shape: int) -> Arr:
    a = rng.standard_normal(shape)
    n = shape[-1]
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


BATCHES: list[Shape] = [(3, 3), (1, 1), (2, 3, 3), (2, 1, 2, 2), (0, 2, 2)]


# ---- det, slogdet ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", BATCHES, ids=str)
def test_det_slogdet_gradcheck(shape: Shape, rng: np.random.Generator) -> None:
    a = _well_conditioned(rng, *shape)
    assert gradcheck(linalg.det, [_t(a)])
    assert gradcheck(lambda t: linalg.slogdet(t).logabsdet, [_t(a)])
    np.testing.assert_allclose(linalg.det(_t(a)).numpy(), np.linalg.det(a), rtol=1e-12)
    sign, logabs = linalg.slogdet(_t(a))
    ws, wl = np.linalg.slogdet(a)
    np.testing.assert_array_equal(sign.numpy(), ws)
    np.testing.assert_allclose(logabs.numpy(), wl, rtol=1e-12)
    assert not sign.requires_grad and logabs.requires_grad


def test_det_gradient_of_singular_matrices(rng: np.random.Generator) -> None:
    # rank n-1: the gradient is the adjugate's transpose (non-zero); rank n-2: zero
    u = rng.standard_normal((4, 3))
    a1 = u @ rng.standard_normal((3, 4))
    x = _t(a1)
    linalg.det(x).backward()
    assert x.grad is not None
    adj_t = np.array(
        [
            [
                (-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a1, i, 0), j, 1))
                for j in range(4)
            ]
            for i in range(4)
        ]
    )
    np.testing.assert_allclose(x.grad.numpy(), adj_t, atol=1e-10)
    assert np.abs(adj_t).max() > 1e-3
    assert gradcheck(linalg.det, [_t(a1)])
    a2 = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 4))
    y = _t(a2)
    linalg.det(y).backward()
    assert y.grad is not None
    np.testing.assert_allclose(y.grad.numpy(), np.zeros((4, 4)), atol=1e-10)


def test_det_empty_matrix_and_float32(rng: np.random.Generator) -> None:
    e = _t(np.zeros((0, 0)))
    d = linalg.det(e)
    assert d.item() == 1.0
    d.backward()
    assert e.grad is not None and e.grad.shape == (0, 0)
    a = _well_conditioned(rng, 2, 3, 3).astype(np.float32)
    x = _t(a)
    for out in (linalg.det(x), linalg.slogdet(x).logabsdet, linalg.slogdet(x).sign):
        assert out.dtype == np.float32
    linalg.det(x).sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    np.testing.assert_allclose(
        x.grad.numpy(),
        np.linalg.det(a)[:, None, None] * np.linalg.inv(a).transpose(0, 2, 1),
        rtol=1e-4,
    )


def test_slogdet_large_and_negative(rng: np.random.Generator) -> None:
    a = np.diag([-1e200, 1e200, 2.0])
    sign, logabs = linalg.slogdet(ag.tensor(a))
    assert sign.item() == -1.0
    assert logabs.item() == pytest.approx(400 * math.log(10) + math.log(2))
    s = ag.tensor(np.array([[1.0, 2.0], [2.0, 4.0]]), requires_grad=True)
    sign, logabs = linalg.slogdet(s)
    assert sign.item() == 0.0 and logabs.item() == -math.inf
    with pytest.raises(ValueError, match="slogdet"):
        logabs.backward()


# ---- inv, solve --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", BATCHES, ids=str)
def test_inv_gradcheck(shape: Shape, rng: np.random.Generator) -> None:
    a = _well_conditioned(rng, *shape)
    assert gradcheck(linalg.inv, [_t(a)])
    np.testing.assert_allclose(linalg.inv(_t(a)).numpy(), np.linalg.inv(a), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("ashape", "bshape"),
    [
        ((3, 3), (3,)),
        ((3, 3), (3, 2)),
        ((2, 3, 3), (2, 3)),  # a batch of vectors (B has A's batch shape plus n), as torch
        ((2, 3, 3), (3, 4)),  # B broadcast over A's batch
        ((1, 3, 3), (4, 3, 1)),
        ((2, 2, 2), (2,)),
        ((3, 3), (3, 0)),
    ],
    ids=str,
)
def test_solve_gradcheck_and_values(ashape: Shape, bshape: Shape, rng: np.random.Generator) -> None:
    a = _well_conditioned(rng, *ashape)
    b = rng.standard_normal(bshape)
    assert gradcheck(linalg.solve, [_t(a), _t(b)])
    x = linalg.solve(_t(a), _t(b)).numpy()
    vector = len(bshape) == 1 or (len(bshape) == len(ashape) - 1 and bshape == ashape[:-1])
    recon = np.matmul(a, x[..., None])[..., 0] if vector else np.matmul(a, x)
    np.testing.assert_allclose(recon, np.broadcast_to(b, recon.shape), atol=1e-12)


def test_solve_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    for ashape, bshape in [((2, 3, 3), (2, 3)), ((3, 3), (3,)), ((1, 3, 3), (4, 3, 2))]:
        a, b = _well_conditioned(rng, *ashape), rng.standard_normal(bshape)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        tx = torch.linalg.solve(ta, tb)
        g = rng.standard_normal(tuple(tx.shape))
        tx.backward(torch.tensor(g))
        xa, xb = _t(a), _t(b)
        x = linalg.solve(xa, xb)
        x.backward(g)
        np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(xa.grad.numpy(), ta.grad.numpy(), rtol=1e-10)  # type: ignore[union-attr]
        np.testing.assert_allclose(xb.grad.numpy(), tb.grad.numpy(), rtol=1e-10)  # type: ignore[union-attr]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inv_solve_keep_dtype(dtype: type, rng: np.random.Generator) -> None:
    a: Arr = _well_conditioned(rng, 3, 3).astype(dtype)
    b: Arr = rng.standard_normal((3, 2)).astype(dtype)
    x, y = _t(a), _t(b)
    out = linalg.solve(x, y) + linalg.inv(x) @ y
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        linalg.inv(ag.tensor(a)).numpy(), np.linalg.inv(a), rtol=tol, atol=tol
    )


def test_singular_inputs_raise_linalg_error() -> None:
    s = ag.tensor(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(linalg.LinAlgError, match=r"inv: the input of shape \(2, 2\) is singular"):
        linalg.inv(s)
    with pytest.raises(ValueError, match="solve: the input of shape"):
        linalg.solve(s, ag.tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match="singular"):  # as torch.linalg.LinAlgError
        linalg.inv(ag.tensor(np.zeros((2, 3, 3))))
    assert issubclass(linalg.LinAlgError, ValueError) and issubclass(
        linalg.LinAlgError, RuntimeError
    )
    assert linalg.det(s).item() == 0.0


def test_shape_and_type_errors() -> None:
    with pytest.raises(ValueError, match=r"det: expected a square matrix .* got shape \(3, 4\)"):
        linalg.det(ag.ones(3, 4))
    with pytest.raises(ValueError, match=r"inv: .* got shape \(3,\)"):
        linalg.inv(ag.ones(3))
    with pytest.raises(ValueError, match=r"solve: A of shape \(3, 3\) and B of shape \(4,\)"):
        linalg.solve(ag.tensor(np.eye(3)), ag.ones(4, dtype="float64"))
    with pytest.raises(
        ValueError, match=r"solve: A of shape \(2, 3, 3\) and B of shape \(4, 3, 1\)"
    ):
        linalg.solve(ag.tensor(np.ones((2, 3, 3))), ag.ones(4, 3, 1))
    with pytest.raises(TypeError, match="det: expected a float32 or float64 tensor"):
        linalg.det(ag.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match=r"cholesky: .* got shape \(2, 3\)"):
        linalg.cholesky(ag.ones(2, 3))


# ---- cholesky ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 3), (1, 1), (2, 4, 4), (0, 2, 2)], ids=str)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_gradcheck(shape: Shape, upper: bool, rng: np.random.Generator) -> None:
    a = _spd(rng, *shape)

    def f(t: Tensor) -> Tensor:  # the symmetric part: cholesky reads one triangle only
        return linalg.cholesky((t + t.mT) * 0.5, upper=upper)

    assert gradcheck(f, [_t(a)])
    low = np.linalg.cholesky(a)
    want = np.swapaxes(low, -1, -2) if upper else low
    np.testing.assert_allclose(linalg.cholesky(_t(a), upper=upper).numpy(), want, rtol=1e-12)


def test_cholesky_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a = _spd(rng, 2, 4, 4)
    g = rng.standard_normal((2, 4, 4))
    for upper in (False, True):
        ta = torch.tensor(a, requires_grad=True)
        torch.linalg.cholesky(ta, upper=upper).backward(torch.tensor(g))
        x = _t(a)
        linalg.cholesky(x, upper=upper).backward(g)
        np.testing.assert_allclose(x.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)  # type: ignore[union-attr]


def test_cholesky_not_positive_definite_and_float32(rng: np.random.Generator) -> None:
    with pytest.raises(
        linalg.LinAlgError, match=r"cholesky: the input of shape \(2, 2\) is not positive-definite"
    ):
        linalg.cholesky(ag.tensor(np.array([[1.0, 2.0], [2.0, 1.0]])))
    a = _spd(rng, 3, 3).astype(np.float32)
    x = _t(a)
    low = linalg.cholesky(x)
    assert low.dtype == np.float32
    low.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32


# ---- norm --------------------------------------------------------------------------------

VECTOR_ORDS: list[float] = [2, 1, 3, 0.5, math.inf, -math.inf, -1.5]


@pytest.mark.parametrize("p", VECTOR_ORDS, ids=str)
@pytest.mark.parametrize(
    ("shape", "axis"), [((5,), None), ((3, 4), 1), ((3, 4), -2), ((2, 3, 2), 1)]
)
def test_vector_norm_gradcheck_and_values(
    p: float, shape: Shape, axis: int | None, rng: np.random.Generator
) -> None:
    a = rng.standard_normal(shape)
    a.reshape(-1)[::3] *= 2.0  # no ties for the inf norms
    assert gradcheck(lambda t: linalg.norm(t, p, axis), [_t(a)])
    for keepdims in (False, True):
        got = linalg.norm(_t(a), p, axis, keepdims).numpy()
        want = np.linalg.norm(a, p, axis if axis is not None else None, keepdims)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_norm_defaults_frobenius_and_matrix_axes(rng: np.random.Generator) -> None:
    a = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(linalg.norm(_t(a)).numpy(), np.sqrt((a**2).sum()))
    np.testing.assert_allclose(
        linalg.norm(_t(a), "fro", (1, 2)).numpy(), np.linalg.norm(a, "fro", (1, 2))
    )
    np.testing.assert_allclose(
        linalg.norm(_t(a), None, (-1, 0), keepdims=True).numpy(),
        np.linalg.norm(a, None, (-1, 0), keepdims=True),
    )
    m = rng.standard_normal((3, 4))
    np.testing.assert_allclose(linalg.norm(_t(m), "fro").numpy(), np.linalg.norm(m, "fro"))
    assert gradcheck(lambda t: linalg.norm(t, "fro", (0, 2)), [_t(a)])
    assert gradcheck(linalg.norm, [_t(a)])


def test_norm_zero_subgradient_and_ties_as_torch() -> None:
    for p in (2.0, 1.0, 3.0, 0.5, math.inf):
        x = ag.tensor(np.zeros(3), requires_grad=True)
        linalg.norm(x, p).backward()
        assert x.grad is not None
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))
    # torch 2.13: vector_norm([0., 0., 3.], 0.5) grads [0, 0, 1]; inf norm of [1, -3, 3]
    # splits the gradient between the tied maxima: [0, -0.5, 0.5]
    x = ag.tensor([0.0, 0.0, 3.0], requires_grad=True)
    linalg.norm(x, 0.5).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0])  # type: ignore[union-attr]
    y = ag.tensor([1.0, -3.0, 3.0], requires_grad=True)
    linalg.norm(y, math.inf).backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.0, -0.5, 0.5])  # type: ignore[union-attr]
    z = ag.tensor([0.0, 2.0, -1.0], requires_grad=True)
    n0 = linalg.norm(z, 0)
    assert n0.item() == 2.0
    n0.backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.zeros(3))  # type: ignore[union-attr]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_keeps_dtype(dtype: type, rng: np.random.Generator) -> None:
    x = _t(rng.standard_normal((3, 4)).astype(dtype))
    for out in (
        linalg.norm(x),
        linalg.norm(x, 3, 1),
        linalg.norm(x, math.inf, 0),
        linalg.norm(x, "fro"),
    ):
        assert out.dtype == dtype
    linalg.norm(x, 1.5, 1).sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype
    np.testing.assert_allclose(
        linalg.norm(x).numpy(), np.linalg.norm(x.numpy().astype(np.float64)), rtol=1e-6
    )


def test_norm_empty_and_errors(rng: np.random.Generator) -> None:
    e = _t(np.zeros((0, 3)))
    assert linalg.norm(e).item() == 0.0
    np.testing.assert_array_equal(linalg.norm(e, 2, 0).numpy(), np.zeros(3))
    with pytest.raises(ValueError, match="inf norms of an empty axis"):
        linalg.norm(e, math.inf, 0)
    x = ag.tensor(rng.standard_normal((2, 3, 4)))
    with pytest.raises(
        ValueError,
        match=r"norm: with ord=2 and axis=None the input must be 1-D or 2-D, got shape \(2, 3, 4\)",
    ):
        linalg.norm(x, 2)
    with pytest.raises(ValueError, match="matrix ord 'max' is not supported"):
        linalg.norm(x, "max", (0, 1))
    with pytest.raises(ValueError, match="matrix ord 3 is not supported"):
        linalg.norm(x, 3, (0, 1))
    with pytest.raises(ValueError, match="2-norm of an empty matrix"):
        linalg.norm(ag.zeros(0, 3, dtype="float64"), 2)
    with pytest.raises(ValueError, match="is for matrices"):
        linalg.norm(x, "fro", 1)
    with pytest.raises(TypeError, match="norm: expected a float32 or float64"):
        linalg.norm(ag.tensor([1, 2]))
    with pytest.raises(ValueError, match="norm: axis 3"):
        linalg.norm(x, 2, 3)


def test_norm_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4))
    for ord_, axis in [
        (None, None),
        (2, 1),
        (1, 0),
        (3, -1),
        (math.inf, 1),
        (-math.inf, 0),
        ("fro", (0, 1)),
        (0.5, 1),
    ]:
        x = _t(a)
        linalg.norm(x, ord_, axis).sum().backward()
        tx = torch.tensor(a, requires_grad=True)
        torch.linalg.norm(tx, ord_, axis).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, err_msg=str(ord_))  # type: ignore[union-attr]


# ---- property tests ----------------------------------------------------------------------


@settings(deadline=None, max_examples=20)
@given(st.integers(1, 4), st.integers(0, 2), st.integers(0, 2**31 - 1))
def test_property_inverse_and_solve_agree(n: int, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (batch, n, n) if batch else (n, n)
    a = _well_conditioned(rng, *shape)
    b = rng.standard_normal((*shape[:-1], 2))
    x1 = linalg.solve(ag.tensor(a), ag.tensor(b)).numpy()
    x2 = (linalg.inv(ag.tensor(a)) @ ag.tensor(b)).numpy()
    np.testing.assert_allclose(x1, x2, atol=1e-10)
    assert gradcheck(lambda t: linalg.det(t) * linalg.slogdet(t).logabsdet, [_t(a)])


@settings(deadline=None, max_examples=25)
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=st.floats(-3, 3)
    ),
    st.sampled_from([1.0, 2.0, 3.0]),
)
def test_property_vector_norm_matches_numpy(a: Arr, p: float) -> None:
    got = linalg.norm(ag.tensor(a), p, -1).numpy()
    np.testing.assert_allclose(got, np.linalg.norm(a, p, -1), rtol=1e-12, atol=1e-300)
    if np.all(np.abs(a) > 1e-3):
        assert gradcheck(lambda t: linalg.norm(t, p, -1), [_t(a)])


# ---- forward mode (jvp) and double backward ---------------------------------------------------


def _sym(t: Tensor) -> Tensor:
    return (t + t.mT) * 0.5 + ag.tensor(4.0 * np.eye(t.shape[-1]))


HIGHER: list[tuple[str, Any, list[Shape]]] = [
    ("det", lambda a: linalg.det(a + ag.tensor(3 * np.eye(3))), [(2, 3, 3)]),
    ("slogdet", lambda a: linalg.slogdet(a + ag.tensor(3 * np.eye(3))).logabsdet, [(3, 3)]),
    ("inv", lambda a: linalg.inv(a + ag.tensor(3 * np.eye(2))), [(2, 2, 2)]),
    ("solve_vector", lambda a, b: linalg.solve(a + ag.tensor(3 * np.eye(3)), b), [(3, 3), (3,)]),
    (
        "solve_matrix",
        lambda a, b: linalg.solve(a + ag.tensor(3 * np.eye(3)), b),
        [(2, 3, 3), (3, 2)],
    ),
    ("cholesky", lambda a: linalg.cholesky(_sym(a)), [(3, 3)]),
    ("cholesky_upper", lambda a: linalg.cholesky(_sym(a), upper=True), [(2, 2, 2)]),
    ("norm2", lambda x: linalg.norm(x, 2, 1), [(2, 3)]),
    ("norm3", lambda x: linalg.norm(x, 3, 0, keepdims=True), [(3, 2)]),
    ("norm_half", lambda x: linalg.norm(x * x + 0.1, 0.5, -1), [(2, 3)]),
    ("norm1", lambda x: linalg.norm(x, 1, 1) ** 2, [(2, 3)]),
    ("norm_inf", lambda x: linalg.norm(x, math.inf, 1) ** 2, [(2, 3)]),
    ("norm_fro", lambda x: linalg.norm(x, "fro"), [(3, 4)]),
    ("norm_all", lambda x: linalg.norm(x), [(2, 3, 2)]),
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


def test_det_jvp_at_a_singular_matrix(rng: np.random.Generator) -> None:
    a = rng.standard_normal((3, 2)) @ rng.standard_normal((2, 3))
    v = rng.standard_normal((3, 3))
    _, tangent = ag.jvp(linalg.det, (ag.tensor(a),), (ag.tensor(v),))
    np.testing.assert_allclose(tangent.numpy(), _fd_jvp(linalg.det, [a], [v]), atol=1e-7)


MATRIX_ORDS: list[Any] = ["nuc", 2, -2, 1, -1, math.inf, -math.inf]


@pytest.mark.parametrize("ord_", MATRIX_ORDS, ids=str)
@pytest.mark.parametrize("axis", [(1, 2), (2, 0), (-1, -2)], ids=str)
def test_matrix_norms(ord_: Any, axis: tuple[int, int], rng: np.random.Generator) -> None:
    a = rng.standard_normal((2, 3, 4))
    for keepdims in (False, True):
        got = linalg.norm(_t(a), ord_, axis, keepdims).numpy()
        np.testing.assert_allclose(got, np.linalg.norm(a, ord_, axis, keepdims), rtol=1e-12)
    assert gradcheck(lambda t: linalg.norm(t, ord_, axis), [_t(a)])
    v = rng.standard_normal(a.shape)
    _, tangent = ag.jvp(lambda t: linalg.norm(t, ord_, axis), (ag.tensor(a),), (ag.tensor(v),))
    fd = _fd_jvp(lambda t: linalg.norm(t, ord_, axis), [a], [v])
    np.testing.assert_allclose(tangent.numpy(), fd, rtol=1e-6, atol=1e-6)
    m = rng.standard_normal((3, 5)).astype(np.float32)
    assert linalg.norm(ag.tensor(m), ord_).dtype == np.float32


def test_matrix_norms_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((2, 3, 4))
    for ord_ in MATRIX_ORDS:
        x = _t(a)
        y = linalg.norm(x, ord_, (1, 2))
        g = rng.standard_normal(y.shape)
        y.backward(g)
        tx = torch.tensor(a, requires_grad=True)
        torch.linalg.norm(tx, ord_, (1, 2)).backward(torch.tensor(g))
        assert x.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, err_msg=str(ord_))


def test_svdvals(rng: np.random.Generator) -> None:
    a = rng.standard_normal((2, 4, 3))
    s = linalg.svdvals(_t(a))
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False), rtol=1e-12)
    assert gradcheck(linalg.svdvals, [_t(a)])
    with pytest.raises(ValueError, match=r"svdvals: expected a matrix .* \(3,\)"):
        linalg.svdvals(ag.ones(3))


# ---- diagonal, trace (batched, over the last two axes) ----------------------------------


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 4), (2, 1, 4, 2), (0, 2, 2), (3, 0)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_diagonal_and_trace(shape: Shape, dtype: type, rng: np.random.Generator) -> None:
    a: Arr = rng.standard_normal(shape).astype(dtype)
    d, tr = linalg.diagonal(_t(a)), linalg.trace(_t(a))
    assert d.dtype == dtype and tr.dtype == dtype
    np.testing.assert_array_equal(d.numpy(), np.diagonal(a, axis1=-2, axis2=-1))
    np.testing.assert_allclose(tr.numpy(), np.trace(a, axis1=-2, axis2=-1), rtol=1e-6)
    np.testing.assert_array_equal(
        linalg.diagonal(_t(a), 1).numpy(), np.diagonal(a, 1, axis1=-2, axis2=-1)
    )
    a64 = a.astype(np.float64)
    assert gradcheck(linalg.trace, [_t(a64)])
    assert gradcheck(lambda t: linalg.diagonal(t, -1), [_t(a64)])
    assert ag.gradgradcheck(lambda t: linalg.trace(t * t), [_t(a64)])


def test_batched_trace_gradient_is_the_identity_pattern() -> None:
    a = _t(np.zeros((2, 3, 3)))
    linalg.trace(a).sum().backward()
    assert a.grad is not None
    np.testing.assert_array_equal(a.grad.numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)))
    with pytest.raises(ValueError, match=r"linalg\.trace: expected a matrix"):
        linalg.trace(_t(np.zeros(3)))
