"""The fast paths: specialised ``apply``, the engine's leaf hand-over, size-1 accumulation.

Each fast path must give exactly what the generic path gives; these tests run both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.autograd as ag
from gradwise.autograd import Tensor
from gradwise.autograd.function import Grads, Op
from gradwise.autograd.ops.elementwise import Add, Mul, PowScalar, Sub
from gradwise.autograd.ops.reduce import Sum
from gradwise.autograd.ops.shape import Reshape

Arr = np.ndarray[Any, Any]
_GENERIC = Op.__dict__["apply"].__func__


def _generic(cls: type[Op], *inputs: Tensor, **kwargs: Any) -> Tensor:
    """Run ``cls`` through the generic ``Op.apply``, bypassing its specialised copy."""
    return _GENERIC(cls, *inputs, **kwargs)  # type: ignore[no-any-return]


def _leaf(values: Any, dtype: str = "float32") -> Tensor:
    return ag.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ---- specialised apply -------------------------------------------------------------------


def test_builtin_ops_get_a_specialised_apply() -> None:
    x = _leaf([1.0, 2.0])
    calls: dict[type[Op], Callable[[], Tensor]] = {
        Add: lambda: Add.apply(x, x),
        Mul: lambda: Mul.apply(x, x),
        Sum: lambda: Sum.apply(x, axis=None, keepdims=False),
        Reshape: lambda: Reshape.apply(x, shape=(2, 1)),
        PowScalar: lambda: PowScalar.apply(x, p=2.0),
    }
    for cls, call in calls.items():
        call()  # the first call puts the specialised apply in place
        fn = cls.__dict__["apply"].__func__
        assert fn is not _GENERIC
        assert "def apply(cls, _x0" in fn.__source__
    assert Mul.apply.__doc__ == Op.apply.__doc__


def test_apply_is_specialised_on_first_use_and_only_once() -> None:
    class Twice(Op):
        __slots__ = ()

        def forward(self, x: Arr) -> Arr:
            return x * 2

        def backward(self, grad: Arr) -> Grads:
            return (grad * 2,)

    stand_in = Twice.__dict__["apply"].__func__
    assert not hasattr(stand_in, "__source__")  # nothing written out at class creation
    assert Twice.apply.__doc__ == Op.apply.__doc__
    x = _leaf([1.0, 2.0])
    y = Twice.apply(x)
    fast = Twice.__dict__["apply"].__func__
    assert fast is not stand_in and "def apply(cls, _x0" in fast.__source__
    Twice.apply(y).sum().backward()
    assert Twice.__dict__["apply"].__func__ is fast
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_signatures_that_do_not_fit_keep_the_generic_apply() -> None:
    class Varargs(Op):
        __slots__ = ()

        def forward(self, *xs: Arr) -> Arr:
            return np.add(*xs)

        def backward(self, grad: Arr) -> Grads:
            return grad, grad

    class Defaulted(Op):
        __slots__ = ()

        def forward(self, x: Arr, y: Arr | None = None) -> Arr:
            return x * 2

        def backward(self, grad: Arr) -> Grads:
            return (grad * 2,)

    class Custom(Op):
        __slots__ = ()

        @classmethod
        def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
            return super().apply(*inputs, **kwargs)

        def forward(self, x: Arr) -> Arr:
            return x + 1

        def backward(self, grad: Arr) -> Grads:
            return (grad,)

    class SubCustom(Custom):
        __slots__ = ()

    x = _leaf([1.0, 2.0])
    (Varargs.apply(x, x).sum() + Defaulted.apply(x).sum() + SubCustom.apply(x).sum()).backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])
    for cls in (Varargs, Defaulted):  # after their first call
        assert cls.apply.__func__ is _GENERIC  # type: ignore[attr-defined]
    assert SubCustom.apply.__func__ is Custom.__dict__["apply"].__func__  # type: ignore[attr-defined]


def test_specialised_apply_keeps_keyword_defaults_and_names() -> None:
    class Scale(Op):
        __slots__ = ("k",)

        def forward(self, x: Arr, *, k: float = 3.0, shift: float) -> Arr:
            self.k = k
            out: Arr = x * x.dtype.type(k) + x.dtype.type(shift)
            return out

        def backward(self, grad: Arr) -> Grads:
            return (grad * grad.dtype.type(self.k),)

    assert Scale.apply.__func__ is not _GENERIC  # type: ignore[attr-defined]
    x = _leaf([1.0, -2.0])
    np.testing.assert_array_equal(Scale.apply(x, shift=1.0).numpy(), [4.0, -5.0])
    y = Scale.apply(x, k=2.0, shift=0.0)
    np.testing.assert_array_equal(y.numpy(), [2.0, -4.0])
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    with pytest.raises(TypeError, match="shift"):
        Scale.apply(x)


def _state(t: Tensor) -> tuple[Any, ...]:
    node = t.grad_fn
    versions = None
    if node is not None:
        saved = node._saved_versions  # type: ignore[attr-defined]
        versions = [v for _, v in saved]
    return (
        t.data.dtype,
        t.data.shape,
        t.data.tobytes(),
        t.requires_grad,
        type(node),
        None if node is None else [type(n) for n in node.inputs],
        None if node is None else node.shapes,
        None if node is None else node.dtypes,
        versions,
        t._base is not None,
        t._version is not None,
    )


@pytest.mark.parametrize("mode", ["grad", "no_grad", "constant"])
def test_specialised_and_generic_apply_build_the_same_graph(mode: str) -> None:
    rng = np.random.default_rng(0)
    a = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=mode != "constant")
    b = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=mode != "constant")
    cases: list[tuple[type[Op], tuple[Tensor, ...], dict[str, Any]]] = [
        (Add, (a, b), {}),
        (Mul, (a, b), {}),
        (Sum, (a,), {"axis": 1, "keepdims": True}),
        (Reshape, (a,), {"shape": (3, 2)}),
        (PowScalar, (a,), {"p": 3}),
    ]
    for cls, inputs, kw in cases:
        if mode == "no_grad":
            with ag.no_grad():
                fast, slow = cls.apply(*inputs, **kw), _generic(cls, *inputs, **kw)
        else:
            fast, slow = cls.apply(*inputs, **kw), _generic(cls, *inputs, **kw)
        assert _state(fast) == _state(slow), cls.__name__
        if fast.requires_grad:
            assert fast.grad_fn is not None and slow.grad_fn is not None
            assert fast.grad_fn.seq > slow.grad_fn.seq - 2


def test_specialised_apply_records_saved_versions_and_catches_inplace_changes() -> None:
    x = _leaf([1.0, 2.0]) * 1
    y = x * x  # Mul saves both inputs
    x.mul_(2)
    with pytest.raises(RuntimeError, match="MulBackward: a tensor this op saved"):
        y.sum().backward()


def test_view_from_specialised_apply_shares_the_version_counter() -> None:
    x = _leaf([[1.0, 2.0], [3.0, 4.0]]) * 1
    v = x.reshape(4)
    assert v._base is x and v.version_counter() is x.version_counter()
    with ag.no_grad():
        w = x.reshape(4)
    assert w._base is x and not w.requires_grad


# ---- leaf gradients: adopted only when nothing else can reach them ----------------------


def test_leaf_gradients_never_alias_each_other_through_views() -> None:
    x1 = _leaf(np.ones((2, 3)))
    x2 = _leaf(np.ones((2, 3)))
    (x1.reshape(6) + x2.reshape(6)).sum().backward()  # both grads are views of one array
    assert x1.grad is not None and x2.grad is not None
    assert not np.shares_memory(x1.grad.numpy(), x2.grad.numpy())
    (x1 * 1).sum().backward()
    np.testing.assert_array_equal(x1.grad.numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(x2.grad.numpy(), np.ones((2, 3)))


def test_leaf_gradient_never_aliases_the_callers_gradient() -> None:
    x = _leaf(np.ones((2, 3)))
    g = np.arange(6, dtype=np.float32)
    x.reshape(6).backward(g)  # the reshape's backward returns a view of g
    assert x.grad is not None
    assert not np.shares_memory(x.grad.numpy(), g)
    g[:] = 0
    np.testing.assert_array_equal(x.grad.numpy().ravel(), np.arange(6))
    y = _leaf([1.0, 2.0])
    gy = np.array([3.0, 4.0], dtype=np.float32)
    y.backward(gy)  # a leaf root: the seed itself reaches the leaf
    assert y.grad is not None and not np.shares_memory(y.grad.numpy(), gy)


def test_one_array_for_two_leaves_is_copied_for_the_second() -> None:
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    (a + b).sum().backward()  # Add hands the same array to both leaves
    assert a.grad is not None and b.grad is not None
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    (a * 2).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_an_array_an_op_keeps_is_not_adopted() -> None:
    class Keeps(Op):
        __slots__ = ("s_g",)

        def forward(self, x: Arr) -> Arr:
            self.s_g = np.ones_like(x)
            return x.copy()

        def backward(self, grad: Arr) -> Grads:
            return (self.s_g,)  # the same array every time (with retain_graph)

    x = _leaf([1.0, 2.0])
    y = Keeps.apply(x)
    y.backward(np.ones(2, np.float32), retain_graph=True)
    node = y.grad_fn
    assert x.grad is not None and node is not None
    assert not np.shares_memory(x.grad.numpy(), node.s_g)  # type: ignore[attr-defined]
    y.backward(np.ones(2, np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_a_fresh_gradient_is_adopted_without_a_copy() -> None:
    class Fresh(Op):
        __slots__ = ("made",)

        def forward(self, x: Arr) -> Arr:
            return x.copy()

        def backward(self, grad: Arr) -> Grads:
            out = grad * 2
            self.made = out.__array_interface__["data"][0]
            # a view whose base nothing else holds is as good as the base
            return (out.reshape(-1, 1).reshape(-1),)

    x = _leaf([1.0, 2.0, 3.0])
    y = Fresh.apply(x)
    y.sum().backward()
    assert x.grad is not None and y.grad_fn is not None
    assert x.grad.numpy().__array_interface__["data"][0] == y.grad_fn.made  # type: ignore[attr-defined]
    assert x.grad.numpy().flags.writeable


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (3,)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accumulation_into_an_existing_grad_is_exact_and_in_place(
    shape: tuple[int, ...], dtype: str
) -> None:
    rng = np.random.default_rng(1)
    v = rng.standard_normal(shape).astype(dtype)
    x = ag.tensor(v, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad is not None
    first = x.grad
    held = first.numpy()
    (x * 3).sum().backward()
    assert x.grad is first and x.grad.numpy() is held  # accumulated in place
    expected = np.add(np.multiply(np.ones(shape, dtype), v) * 2, np.full(shape, 3, dtype))
    np.testing.assert_array_equal(held, expected)
    assert held.dtype == np.dtype(dtype)


def test_leaf_whose_grad_was_assigned_accumulates_into_that_tensor() -> None:
    x = _leaf([5.0])
    g = ag.tensor(np.array([1.0], np.float32))
    x.grad = g
    (x * 2).sum().backward()
    assert x.grad is g
    np.testing.assert_array_equal(g.numpy(), [3.0])


@settings(deadline=None, max_examples=30)
@given(
    shape=st.sampled_from([(), (1,), (2,), (2, 3), (1, 4)]),
    uses=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_engine_gradients_match_a_numpy_reference(
    shape: tuple[int, ...], uses: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    va, vb = rng.standard_normal(shape), rng.standard_normal(shape)
    a, b = _leaf(va, "float64"), _leaf(vb, "float64")
    total = None
    for _ in range(uses):
        term = (a * b + a).sum()
        total = term if total is None else total + term
    assert total is not None
    total.backward()
    assert a.grad is not None and b.grad is not None
    np.testing.assert_allclose(a.grad.numpy(), uses * (vb + 1), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), uses * va, rtol=1e-12)


# ---- the engine's chain shortcut ----------------------------------------------------------


def test_chain_node_reached_twice_from_one_node_gets_both_gradients() -> None:
    a = _leaf([1.0, -2.0, 3.0], "float64")
    y = a * 2
    (y * y).sum().backward()  # Mul's two edges lead to the same pending node
    assert a.grad is not None
    np.testing.assert_array_equal(a.grad.numpy(), 8 * a.numpy())


def test_two_non_leaf_children_go_through_the_heap_in_order() -> None:
    calls: list[str] = []

    class Tap(Op):
        __slots__ = ("tag",)

        def forward(self, x: Arr, *, tag: str) -> Arr:
            self.tag = tag
            return x.copy()

        def backward(self, grad: Arr) -> Grads:
            calls.append(self.tag)
            return (grad,)

    a = _leaf([1.0, 2.0], "float64")
    t1 = Tap.apply(a * 3, tag="t1")
    t2 = Tap.apply(t1 + a, tag="t2")  # depends on t1: must run before it
    (t1 * t2).sum().backward()  # Mul's first child t1 waits; t2 joins it in the heap
    assert calls == ["t2", "t1"]
    va = a.numpy()
    # d/da (3a * 4a) = 24a
    assert a.grad is not None
    np.testing.assert_allclose(a.grad.numpy(), 24 * va, rtol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 7, 100, 32767, 32768, 100_000])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_whole_array_sum_is_bitwise_cops_sum(n: int, dtype: str, keepdims: bool) -> None:
    from gradwise.core import ops as cops

    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 1000).astype(dtype)
    got = ag.tensor(x).sum(keepdims=keepdims).numpy()
    want = cops.sum(x, None, keepdims)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


# ---- fused operators ---------------------------------------------------------------------

_OPERATORS = [
    ("__add__", np.add, Add),
    ("__sub__", np.subtract, Sub),
    ("__mul__", np.multiply, Mul),
]


@pytest.mark.parametrize(("method", "ufunc", "cls"), _OPERATORS)
def test_fused_operators_match_the_generic_apply(method: str, ufunc: Any, cls: type[Op]) -> None:
    assert "fused_operator" in (getattr(Tensor, method).__doc__ or "")
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        for sa, sb in [((3, 1), (4,)), ((), (2,)), ((0, 2), (1, 2))]:
            xa, xb = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
            a, b, a2, b2 = _leaf(xa, dtype), _leaf(xb, dtype), _leaf(xa, dtype), _leaf(xb, dtype)
            fused = getattr(Tensor, method)(a, b)
            generic = _generic(cls, a2, b2)
            assert type(fused.grad_fn) is cls and fused.dtype == dtype
            np.testing.assert_array_equal(fused.data, ufunc(xa, xb))
            g = rng.standard_normal(fused.shape).astype(dtype)
            fused.backward(ag.tensor(g))
            generic.backward(ag.tensor(g))
            for x, y in ((a, a2), (b, b2)):
                assert x.grad is not None and y.grad is not None
                np.testing.assert_array_equal(x.grad.data, y.grad.data)


def test_fused_operators_keep_errors_fallbacks_and_version_checks() -> None:
    a = _leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"add: shapes \(2,\) and \(3,\) do not broadcast"):
        a + _leaf([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"mul: shapes"):
        a * _leaf([1.0, 2.0, 3.0])
    assert (a - 1).dtype == np.float32  # scalars and mixed dtypes take the general path
    assert (a * _leaf([1.0, 2.0], "float64")).dtype == np.float64
    with ag.no_grad():
        assert (a * a).grad_fn is None and not (a + a).requires_grad
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = h * h
    with ag.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
