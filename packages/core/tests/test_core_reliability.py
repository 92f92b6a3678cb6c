"""Reliability of gradwise.core: bad input, empty and extreme values, race-free kernels.

Issue 7. Every kernel-backed op is run with the serial and the parallel variant forced
(``_jit.forced_variant``) at sizes around the vector widths and the parallel thresholds;
element-wise results must be bit-identical, reductions equal to float64 references, and
repeated parallel runs bit-identical.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from gradwise.core import _jit, ops, set_num_threads
from gradwise.core.dtypes import Array

SIZES = [1, 7, 1023, 1025, 65537, 2**20 + 3]

# (name, callable on a 1-D float array) for the element-wise kernels and their backwards.
ELEMENTWISE: list[tuple[str, Callable[[Array], Array]]] = [
    ("relu", ops.relu),
    ("relu_backward", lambda x: ops.relu_backward(x, x)),
    ("leaky_relu", lambda x: ops.leaky_relu(x, 0.1)),
    ("leaky_relu_backward", lambda x: ops.leaky_relu_backward(x, x, 0.1)),
    ("sigmoid", ops.sigmoid),
    ("sigmoid_backward", lambda x: ops.sigmoid_backward(x, x)),
    ("tanh", ops.tanh),
    ("tanh_backward", lambda x: ops.tanh_backward(x, x)),
    ("gelu", ops.gelu),
    ("gelu_tanh", lambda x: ops.gelu(x, "tanh")),
    ("gelu_backward", lambda x: ops.gelu_backward(x, x)),
    ("silu", ops.silu),
    ("silu_backward", lambda x: ops.silu_backward(x, x)),
    ("softplus", ops.softplus),
    ("softplus_backward", lambda x: ops.softplus_backward(x, x)),
]

REDUCTIONS: list[tuple[str, Callable[[Array], Array], Callable[[Array], Array]]] = [
    ("sum", ops.sum, np.sum),
    ("mean", ops.mean, np.mean),
    ("max", ops.max, np.max),
    ("min", ops.min, np.min),
    ("var", ops.var, np.var),
    ("logsumexp", lambda x: ops.logsumexp(x, 0), lambda x: np.log(np.sum(np.exp(x)))),
]


def _data(n: int, dtype: type = np.float64, seed: int = 0) -> Array:
    rng = np.random.Generator(np.random.PCG64(seed))
    return (rng.standard_normal(n) * 3).astype(dtype)


def _run(variant: str, fn: Callable[[Array], Array], x: Array) -> Array:
    with _jit.forced_variant(variant):
        return np.array(fn(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "fn"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_parallel_equals_serial(
    name: str, fn: Callable[[Array], Array], dtype: type
) -> None:
    for n in SIZES:
        x = _data(n, dtype)
        serial = _run("serial", fn, x)
        parallel = _run("parallel", fn, x)
        again = _run("parallel", fn, x)
        assert serial.dtype == dtype, name
        np.testing.assert_array_equal(parallel, serial, err_msg=f"{name} n={n}")
        np.testing.assert_array_equal(again, parallel, err_msg=f"{name} n={n} rerun")


@pytest.mark.parametrize(("name", "fn", "ref"), REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_parallel_serial_and_reference(
    name: str, fn: Callable[[Array], Array], ref: Callable[[Array], Array]
) -> None:
    for n in SIZES:
        x = _data(n)
        serial = _run("serial", fn, x)
        parallel = _run("parallel", fn, x)
        again = _run("parallel", fn, x)
        np.testing.assert_array_equal(again, parallel, err_msg=f"{name} n={n} rerun")
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(serial, ref(x), rtol=1e-10, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1023, 10), (1025, 64), (4099, 257)])
def test_row_kernels_parallel_equals_serial(shape: tuple[int, int]) -> None:
    x = _data(shape[0] * shape[1]).reshape(shape)
    target = (np.arange(shape[0]) * 7) % shape[1]
    for name, fn in [
        ("softmax", lambda a: ops.softmax(a, 1)),
        ("log_softmax", lambda a: ops.log_softmax(a, 1)),
        ("logsumexp", lambda a: ops.logsumexp(a, 1)),
        ("cross_entropy", lambda a: ops.softmax_cross_entropy(a, target)[0]),
        ("sum_axis0", lambda a: ops.sum(a, 0)),
        ("max_axis1", lambda a: ops.max(a, 1)),
    ]:
        serial = _run("serial", fn, x)
        parallel = _run("parallel", fn, x)
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(_run("parallel", fn, x), parallel, err_msg=name)


OPTIMIZER_STEPS: list[tuple[str, Callable[[Array, Array, list[Array], int], None]]] = [
    (
        "sgd_",
        lambda p, g, s, k: ops.sgd_(
            p, g, s[0], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True, first_step=k == 1
        ),
    ),
    ("adam_", lambda p, g, s, k: ops.adam_(p, g, s[0], s[1], step=k, lr=1e-2, weight_decay=0.01)),
    (
        "rmsprop_",
        lambda p, g, s, k: ops.rmsprop_(
            p, g, s[0], s[1], s[2], lr=1e-2, momentum=0.9, centered=True
        ),
    ),
    ("adagrad_", lambda p, g, s, k: ops.adagrad_(p, g, s[0], step=k, lr=0.1, lr_decay=0.01)),
]


@pytest.mark.parametrize(("name", "step"), OPTIMIZER_STEPS, ids=[o[0] for o in OPTIMIZER_STEPS])
def test_optimizer_kernels_parallel_equals_serial(
    name: str, step: Callable[[Array, Array, list[Array], int], None]
) -> None:
    for n in SIZES:
        grad = _data(n, np.float32, seed=1)
        results = []
        for variant in ("serial", "parallel"):
            p = _data(n, np.float32)
            state = [np.zeros_like(p) for _ in range(3)]
            with _jit.forced_variant(variant):
                for k in (1, 2):
                    step(p, grad, state, k)
            results.append([p, *state])
        for a, b in zip(results[0], results[1], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} n={n}")


@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_nan_and_inf_propagate_through_kernels(variant: str) -> None:
    base = np.array([np.nan, np.inf, -np.inf, 1.0, -2.0] * 3000, dtype=np.float32)
    with _jit.forced_variant(variant):
        np.testing.assert_array_equal(ops.relu(base)[:5], [np.nan, np.inf, 0.0, 1.0, 0.0])
        np.testing.assert_array_equal(
            ops.leaky_relu(base, 0.5)[:5], [np.nan, np.inf, -np.inf, 1.0, -1.0]
        )
        np.testing.assert_array_equal(ops.sigmoid(base)[:3], [np.nan, 1.0, 0.0])
        np.testing.assert_array_equal(ops.tanh(base)[:3], [np.nan, 1.0, -1.0])
        assert np.isnan(ops.gelu(base)[0]) and ops.gelu(base)[1] == np.inf
        assert np.isnan(ops.softplus(base)[0]) and ops.softplus(base)[1] == np.inf
        # Small float sums call NumPy's reduce directly, which warns on inf - inf; the value
        # is PyTorch's (a warning filter costs ~1 us on the hot path, so none is set).
        with np.errstate(invalid="ignore"):
            for red in (ops.sum, ops.mean, ops.max, ops.min, ops.var):
                assert np.isnan(red(base)), red.__name__
        assert ops.max(base[1:3]) == np.inf and ops.min(base[1:3]) == -np.inf
        assert ops.sum(base[1:2].repeat(5000)) == np.inf
        rows = base[:15000].reshape(3000, 5)
        assert np.isnan(ops.softmax(rows, 1)).all()
        assert np.isnan(ops.logsumexp(rows, 1)).all()


def test_subnormals_are_not_flushed() -> None:
    tiny = np.full(70000, 1e-42, dtype=np.float32)
    assert tiny[0] != 0
    for variant in ("serial", "parallel"):
        with _jit.forced_variant(variant):
            np.testing.assert_array_equal(ops.relu(tiny), tiny)
            assert ops.sum(tiny) > 0
    # numpy arithmetic after importing gradwise still produces subnormals (no FTZ/DAZ)
    assert np.float32(1e-38) / np.float32(1e3) != 0


def test_extreme_magnitudes() -> None:
    big32 = np.array([1e38, 3e38, -1e38], dtype=np.float32)
    with np.errstate(over="ignore"):  # NumPy's small-sum path warns; torch also gives inf
        assert ops.sum(big32) == np.inf and ops.sum(big32).dtype == np.float32
    assert ops.max(big32) == np.float32(3e38)
    assert ops.logsumexp(big32, 0) == pytest.approx(3e38, rel=1e-6)
    np.testing.assert_array_equal(ops.softmax(big32, 0), [0.0, 1.0, 0.0])
    assert ops.var(big32) == np.inf  # the true variance exceeds float32's range
    big64 = np.array([1e308, 1.7e308, -1e308])
    with np.errstate(over="ignore"):  # the running sum overflows, as in torch 2.13 (inf)
        assert ops.mean(big64) == np.inf
    assert ops.logsumexp(big64, 0) == pytest.approx(1.7e308)
    assert ops.var(big64) == np.inf


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: ops.relu([1.0, 2.0]), TypeError, "relu"),  # type: ignore[arg-type]
        (lambda: ops.relu(np.array([1, 2])), TypeError, "relu: x must be float32"),
        (lambda: ops.relu(np.array(["a"])), TypeError, "relu"),
        (lambda: ops.relu(np.array([None], dtype=object)), TypeError, "relu"),
        (lambda: ops.relu(None), TypeError, "relu"),  # type: ignore[arg-type]
        (lambda: ops.sigmoid({}), TypeError, "sigmoid"),  # type: ignore[arg-type]
        (lambda: ops.sigmoid(np.ones(2, np.float16)), TypeError, "sigmoid"),
        (lambda: ops.relu_backward(np.ones(3), np.ones(4)), ValueError, r"relu_backward.*\(4,\)"),
        (
            lambda: ops.relu_backward(np.ones(3), np.ones(3, np.float32)),
            TypeError,
            "relu_backward",
        ),
        (lambda: ops.gelu(np.ones(3), "fast"), ValueError, "gelu"),
        (lambda: ops.leaky_relu(np.ones(3), "a"), TypeError, "leaky_relu"),  # type: ignore[arg-type]
        (lambda: ops.sum(np.ones((2, 3)), 2), ValueError, "sum: axis 2"),
        (lambda: ops.sum(np.ones((2, 3)), (0, 0)), ValueError, "sum"),
        (lambda: ops.mean(np.ones((2, 3)), "a"), TypeError, "mean"),  # type: ignore[arg-type]
        (lambda: ops.max(np.ones((0, 3))), ValueError, r"max.*\(0, 3\)"),
        (lambda: ops.min(np.ones((0, 3)), 0), ValueError, "min"),
        (lambda: ops.var(np.ones(3), ddof="a"), TypeError, "var"),  # type: ignore[arg-type]
        (lambda: ops.softmax(np.ones((2, 3)), 2), ValueError, "softmax"),
        (lambda: ops.logsumexp(np.ones((2, 3)), -3), ValueError, "logsumexp"),
        (lambda: ops.matmul(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"matmul.*\(2, 3\)"),
        (lambda: ops.matmul(np.ones(3), 2.0), TypeError, "matmul"),  # type: ignore[arg-type]
        (lambda: ops.matmul(np.ones(()), np.ones(3)), ValueError, "matmul"),
        (
            lambda: ops.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3])),
            IndexError,
            "softmax_cross_entropy: target 3",
        ),
        (
            lambda: ops.softmax_cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0])),
            TypeError,
            "softmax_cross_entropy",
        ),
        (
            lambda: ops.softmax_cross_entropy(np.ones((2, 3)), np.array([0])),
            ValueError,
            "softmax_cross_entropy",
        ),
        (
            lambda: ops.adam_(np.ones(3), np.ones(4), np.ones(3), np.ones(3), step=1),
            ValueError,
            "adam_",
        ),
        (
            lambda: ops.sgd_(np.ones(3, np.float32), np.ones(3), lr=0.1),
            TypeError,
            "sgd_",
        ),
        (lambda: set_num_threads(0), ValueError, "set_num_threads"),
        (lambda: set_num_threads("2"), TypeError, "set_num_threads"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_table(call: Callable[[], object], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
def test_empty_arrays_through_every_op(shape: tuple[int, ...]) -> None:
    x = np.zeros(shape, dtype=np.float32)
    for _, fn in ELEMENTWISE:
        out = fn(x)
        assert out.shape == shape and out.dtype == np.float32
    assert ops.sum(x) == 0 and ops.sum(x).dtype == np.float32
    with np.errstate(all="raise"):  # no warning either
        assert np.isnan(ops.mean(x)) and np.isnan(ops.var(x))
    assert ops.logsumexp(x.reshape(-1), 0) == -np.inf
    for axis in range(len(shape)):
        assert ops.sum(x, axis).shape == shape[:axis] + shape[axis + 1 :]
        np.testing.assert_array_equal(ops.softmax(x, axis), x)
        np.testing.assert_array_equal(ops.log_softmax(x, axis), x)
        lse = ops.logsumexp(x, axis)
        assert lse.shape == shape[:axis] + shape[axis + 1 :]
        if shape[axis] == 0:
            assert (lse == -np.inf).all()
            with pytest.raises(ValueError, match="max"):
                ops.max(x, axis)
        else:
            assert ops.max(x, axis).shape == lse.shape


def test_zero_d_arrays() -> None:
    x = np.array(2.0, dtype=np.float32)
    assert ops.sum(x) == 2.0 and ops.sum(x).dtype == np.float32
    assert ops.max(x) == 2.0 and ops.mean(x, 0) == 2.0
    assert ops.relu(x).shape == ()
    assert ops.sigmoid(np.float32(0.0)) == 0.5  # type: ignore[arg-type]


def _run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )


def test_import_does_not_enable_flush_to_zero() -> None:
    code = (
        "import numpy as np\n"
        "import gradwise.core as c\n"
        "from gradwise.core import ops\n"
        "ops.sigmoid(np.ones(100000, np.float32))\n"
        "a = np.array([1e-38], np.float32) / np.float32(1e3)\n"
        "print(a[0] != 0)\n"
    )
    res = _run_python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True"
