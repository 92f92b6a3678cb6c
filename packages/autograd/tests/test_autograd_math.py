"""Element-wise math of the op-coverage issue: sin, cos, tan, atan2, log1p, expm1, erf,
square, reciprocal, sign, floor, ceil, round and Tensor.to: float64 gradchecks over
0-d, size-1, empty and broadcast shapes, forward values against NumPy/SciPy in float32
and float64, dtypes, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
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

SHAPES: list[Shape] = [(), (1,), (3, 4), (0, 3), (2, 1, 3)]


def _erf(a: Arr) -> Arr:
    out: Arr = np.vectorize(math.erf, otypes=[np.float64])(a)
    return out


# name, gradwise function, NumPy reference, input transform (keeps x in the domain)
UNARY: list[tuple[str, Callable[[Tensor], Tensor], Callable[[Arr], Arr], Callable[[Arr], Arr]]] = [
    ("sin", ag.sin, np.sin, lambda a: a),
    ("cos", ag.cos, np.cos, lambda a: a),
    ("tan", ag.tan, np.tan, lambda a: np.clip(a, -1.2, 1.2)),
    ("log1p", ag.log1p, np.log1p, lambda a: np.abs(a) - 0.5),
    ("expm1", ag.expm1, np.expm1, lambda a: a),
    ("erf", ag.erf, _erf, lambda a: a),
    ("square", ag.square, np.square, lambda a: a),
    ("reciprocal", ag.reciprocal, np.reciprocal, lambda a: np.sign(a) * (np.abs(a) + 0.5)),
]
PIECEWISE: list[tuple[str, Callable[[Tensor], Tensor], Callable[[Arr], Arr]]] = [
    ("sign", ag.sign, np.sign),
    ("floor", ag.floor, np.floor),
    ("ceil", ag.ceil, np.ceil),
    ("round", ag.round, np.round),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("name", "fn", "ref", "dom"), UNARY, ids=[c[0] for c in UNARY])
def test_unary_gradcheck(
    name: str,
    fn: Callable[[Tensor], Tensor],
    ref: Callable[[Arr], Arr],
    dom: Callable[[Arr], Arr],
    shape: Shape,
    rng: np.random.Generator,
) -> None:
    x = ag.tensor(dom(rng.standard_normal(shape)), requires_grad=True)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "fn", "ref", "dom"), UNARY, ids=[c[0] for c in UNARY])
def test_unary_forward_matches_numpy(
    name: str,
    fn: Callable[[Tensor], Tensor],
    ref: Callable[[Arr], Arr],
    dom: Callable[[Arr], Arr],
    dtype: type,
    rng: np.random.Generator,
) -> None:
    a: Arr = dom(rng.standard_normal((5, 7))).astype(dtype)
    x = ag.tensor(a, requires_grad=True)
    y = fn(x)
    assert y.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y.numpy(), ref(a.astype(np.float64)), rtol=tol, atol=tol)
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype


def test_erf_matches_scipy() -> None:
    special = pytest.importorskip("scipy.special")
    a = np.linspace(-6, 6, 1001)
    np.testing.assert_allclose(ag.erf(ag.tensor(a)).numpy(), special.erf(a), rtol=1e-15, atol=0)
    a32 = a.astype(np.float32)
    out = ag.erf(ag.tensor(a32)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, special.erf(a32).astype(np.float32), rtol=1e-7, atol=0)


def test_unary_non_contiguous_input(rng: np.random.Generator) -> None:
    a = rng.standard_normal((4, 6))
    x = ag.tensor(a, requires_grad=True)
    assert gradcheck(lambda t: ag.sin(t.T[::2]), [x])
    np.testing.assert_allclose(ag.cos(ag.tensor(a).T).numpy(), np.cos(a.T))


@pytest.mark.parametrize(("name", "fn", "ref"), PIECEWISE, ids=[c[0] for c in PIECEWISE])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_piecewise_values_and_zero_gradient(
    name: str,
    fn: Callable[[Tensor], Tensor],
    ref: Callable[[Arr], Arr],
    dtype: type,
    rng: np.random.Generator,
) -> None:
    a: Arr = (rng.standard_normal((4, 5)) * 3).astype(dtype)
    a[0, :4] = [0.5, 1.5, -2.5, 0.0]
    x = ag.tensor(a, requires_grad=True)
    y = fn(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy(), ref(a))
    assert y.requires_grad and y.grad_fn is not None
    assert y.grad_fn.name() == name.capitalize() + "Backward"
    (y * 3.0).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(a))


def test_round_half_to_even_as_torch() -> None:
    # torch 2.13: torch.round(torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.675]))
    a = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.675], dtype=np.float32)
    out = ag.round(ag.tensor(a)).numpy()
    np.testing.assert_array_equal(out, np.array([0.0, 2.0, 2.0, -0.0, -2.0, 3.0], np.float32))
    assert np.signbit(out[3])
    # torch 2.13: torch.round(torch.tensor([1.25, 1.35, -0.15], dtype=torch.float64), decimals=1)
    b = np.array([1.25, 1.35, -0.15])
    np.testing.assert_array_equal(ag.round(ag.tensor(b), decimals=1).numpy(), [1.2, 1.4, -0.2])


def test_piecewise_integer_and_nan() -> None:
    i = ag.tensor([-3, 0, 2])
    assert ag.floor(i).dtype == np.int64
    np.testing.assert_array_equal(ag.ceil(i).numpy(), [-3, 0, 2])
    np.testing.assert_array_equal(ag.sign(i).numpy(), [-1, 0, 1])
    s = ag.sign(ag.tensor([np.nan, -0.0, 2.0])).numpy()
    assert np.isnan(s[0]) and s[1] == 0 and s[2] == 1


@pytest.mark.parametrize(
    "shapes",
    [[(3, 4), (3, 4)], [(3, 4), (4,)], [(3, 1), (1, 4)], [(), (2, 3)], [(0, 2), (2,)], [(1,), ()]],
    ids=str,
)
def test_atan2_gradcheck_broadcast(shapes: list[Shape], rng: np.random.Generator) -> None:
    a, b = (ag.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)
    assert gradcheck(ag.atan2, [a, b])
    ref = np.arctan2(a.numpy(), b.numpy())
    np.testing.assert_allclose(ag.atan2(a, b).numpy(), ref, rtol=1e-15)


def test_atan2_float32_scalars_and_quadrants() -> None:
    y = ag.tensor(np.array([1.0, 1.0, -1.0, -1.0, 0.0], np.float32))
    x = ag.tensor(np.array([1.0, -1.0, -1.0, 1.0, -1.0], np.float32))
    out = ag.atan2(y, x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), np.arctan2(y.numpy(), x.numpy()), rtol=1e-7)
    assert ag.atan2(y, 2.0).dtype == np.float32
    assert ag.atan2(1.0, x).dtype == np.float32
    assert y.atan2(x).dtype == np.float32
    assert ag.atan2(ag.tensor([1, 2]), ag.tensor([3, 4])).dtype == np.float32


def test_integer_inputs_promote_to_float32() -> None:
    i = ag.tensor([1, 2, 3])
    for fn in (ag.sin, ag.cos, ag.tan, ag.log1p, ag.expm1, ag.erf, ag.reciprocal):
        assert fn(i).dtype == np.float32
    assert ag.square(i).dtype == np.int64
    np.testing.assert_array_equal(ag.square(i).numpy(), [1, 4, 9])


def test_methods_match_functions(rng: np.random.Generator) -> None:
    x = ag.tensor(rng.standard_normal((2, 3)))
    for name in ("sin", "cos", "tan", "log1p", "expm1", "erf", "square", "reciprocal"):
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(ag, name)(x).numpy())
    for name in ("sign", "floor", "ceil", "round"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(ag, name)(x).numpy())


def test_edge_values() -> None:
    with np.errstate(divide="ignore"):
        r = ag.reciprocal(ag.tensor([0.0, -0.0])).numpy()
    assert r[0] == np.inf and r[1] == -np.inf
    assert ag.log1p(ag.tensor([-1.0])).numpy()[0] == -np.inf
    tiny = np.array([1e-10])
    assert ag.log1p(ag.tensor(tiny)).numpy()[0] == np.log1p(1e-10)
    assert ag.expm1(ag.tensor(tiny)).numpy()[0] == np.expm1(1e-10)


def test_gradient_values_against_formulas(rng: np.random.Generator) -> None:
    a = rng.standard_normal(6)
    cases = {
        "sin": np.cos(a),
        "cos": -np.sin(a),
        "tan": 1 / np.cos(a) ** 2,
        "erf": 2 / np.sqrt(np.pi) * np.exp(-(a**2)),
        "square": 2 * a,
        "expm1": np.exp(a),
    }
    for name, want in cases.items():
        x = ag.tensor(a, requires_grad=True)
        getattr(ag, name)(x).sum().backward()
        assert x.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12, err_msg=name)


def test_errors() -> None:
    with pytest.raises(TypeError, match="sin"):
        ag.sin("a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"atan2: shapes \(3, 4\) and \(3,\)"):
        ag.atan2(ag.ones(3, 4), ag.ones(3))
    with pytest.raises(TypeError, match="round: decimals"):
        ag.round(ag.ones(2), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floor"):
        ag.floor(ag.tensor([True, False]))


# ---- Tensor.to ---------------------------------------------------------------------------


def test_to_float_cast_gradient_cast_back(rng: np.random.Generator) -> None:
    x = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    y = x.to(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)
    z = ag.tensor(rng.standard_normal(4), requires_grad=True)
    w = z.to("float32")
    assert w.dtype == np.float32 and w.grad_fn is not None
    (w * 3.0).sum().backward()
    assert z.grad is not None and z.grad.dtype == np.float64
    np.testing.assert_array_equal(z.grad.numpy(), np.full(4, 3.0))
    assert gradcheck(lambda t: t.to(ag.float64).sin(), [z])


def test_to_same_dtype_and_integer_targets() -> None:
    x = ag.tensor([1.7, -2.2], requires_grad=True)
    assert x.to(np.float32) is x
    i = x.to(ag.int64)
    assert i.dtype == np.int64 and not i.requires_grad and i.grad_fn is None
    np.testing.assert_array_equal(i.numpy(), [1, -2])
    b = x.to("bool")
    assert b.dtype == np.bool_ and not b.requires_grad
    f = ag.tensor([1, 2]).to(ag.float64)
    assert f.dtype == np.float64 and not f.requires_grad
    with pytest.raises(TypeError, match="dtype"):
        x.to("complex64")
    with pytest.raises(TypeError):
        x.to("nonsense")


# ---- property tests ----------------------------------------------------------------------

_FINITE = st.floats(-3, 3, allow_nan=False, width=64)


@settings(deadline=None, max_examples=25)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), elements=_FINITE)
)
def test_property_sin_cos_identity_and_grads(a: Arr) -> None:
    x = ag.tensor(a, requires_grad=True)
    s, c = ag.sin(x), ag.cos(x)
    np.testing.assert_allclose((s * s + c * c).numpy(), np.ones_like(a), atol=1e-12)
    assert gradcheck(lambda t: ag.sin(t) * ag.cos(t) + ag.erf(t), [x])


@settings(deadline=None, max_examples=20)
@given(
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    st.integers(0, 2**31 - 1),
)
def test_property_atan2_broadcast(shapes: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = (
        ag.tensor(rng.standard_normal(s) + 0.1, requires_grad=True) for s in shapes.input_shapes
    )
    out = ag.atan2(a, b)
    assert out.shape == shapes.result_shape
    assert gradcheck(ag.atan2, [a, b])


def test_against_torch_when_available(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4))
    for name in ("sin", "cos", "tan", "expm1", "erf", "square", "reciprocal"):
        x = ag.tensor(a, requires_grad=True)
        getattr(ag, name)(x).sum().backward()
        tx = torch.tensor(a, requires_grad=True)
        getattr(torch, name)(tx).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, err_msg=name)  # type: ignore[union-attr]


# ---- forward mode (jvp) and double backward ---------------------------------------------------

HIGHER: list[tuple[str, Callable[..., Tensor], list[Shape]]] = [
    ("sin", ag.sin, [(3, 2)]),
    ("cos", ag.cos, [(3, 2)]),
    ("tan", lambda t: ag.tan(t * 0.3), [(4,)]),
    ("atan2", ag.atan2, [(3, 1), (4,)]),
    ("log1p", lambda t: ag.log1p(t * t), [(4,)]),
    ("expm1", ag.expm1, [(2, 3)]),
    ("erf", ag.erf, [(5,)]),
    ("square", ag.square, [(2, 2)]),
    ("reciprocal", lambda t: ag.reciprocal(t * t + 0.5), [(4,)]),
    ("sign", lambda t: ag.sign(t) * t, [(4,)]),
    ("round", lambda t: ag.round(t) + ag.floor(t) + ag.ceil(t) + t, [(4,)]),
]


def _fd_jvp(fn: Callable[..., Tensor], xs: list[Arr], vs: list[Arr], eps: float = 1e-6) -> Arr:
    with ag.no_grad():
        hi = fn(*[ag.tensor(x + eps * v) for x, v in zip(xs, vs, strict=True)]).numpy()
        lo = fn(*[ag.tensor(x - eps * v) for x, v in zip(xs, vs, strict=True)]).numpy()
    out: Arr = (hi.astype(np.float64) - lo) / (2 * eps)
    return out


@pytest.mark.parametrize(("name", "fn", "shapes"), HIGHER, ids=[c[0] for c in HIGHER])
def test_jvp_matches_finite_differences(
    name: str, fn: Callable[..., Tensor], shapes: list[Shape], rng: np.random.Generator
) -> None:
    xs = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    out, tangent = ag.jvp(fn, tuple(ag.tensor(x) for x in xs), tuple(ag.tensor(v) for v in vs))
    np.testing.assert_allclose(out.numpy(), fn(*[ag.tensor(x) for x in xs]).numpy())
    np.testing.assert_allclose(tangent.numpy(), _fd_jvp(fn, xs, vs), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "fn", "shapes"), HIGHER, ids=[c[0] for c in HIGHER])
def test_gradgradcheck(
    name: str, fn: Callable[..., Tensor], shapes: list[Shape], rng: np.random.Generator
) -> None:
    xs = [ag.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert ag.gradgradcheck(fn, xs)


def test_to_jvp_and_double_backward_cast_the_tangent(rng: np.random.Generator) -> None:
    x, v = ag.tensor(rng.standard_normal(3)), ag.tensor(rng.standard_normal(3))
    out, tangent = ag.jvp(lambda t: t.to("float32") * 2.0, (x,), (v,))
    assert out.dtype == tangent.dtype == np.float32
    np.testing.assert_allclose(tangent.numpy(), 2 * v.numpy().astype(np.float32))
    w = ag.tensor(rng.standard_normal(3), requires_grad=True)
    (g,) = ag.grad((w.to("float32") ** 3).sum(), [w], create_graph=True)
    assert g is not None
    assert g.dtype == np.float64
    (gg,) = ag.grad(g.sum(), [w])
    assert gg is not None
    np.testing.assert_allclose(gg.numpy(), 6 * w.numpy(), rtol=1e-6)
