"""dtype policy, storage conversion, randomness and threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest

import gradwise.core as gc
from gradwise.core import as_array, as_dtype, ops, result_dtype

# np.random.get_state()'s stubs pick the dict overload, but with the default legacy=True it
# returns the legacy tuple (name, key array, pos, has_gauss, cached_gaussian).
_LegacyState = tuple[str, np.ndarray[Any, Any], int, int, float]


def test_dtype_aliases_and_names() -> None:
    assert as_dtype("float32") == np.float32
    assert as_dtype(gc.float64) == np.float64
    assert as_dtype(np.int64) == gc.int64
    assert as_dtype("bool") == gc.bool_
    with pytest.raises(TypeError, match="dtype complex128 is not supported"):
        as_dtype(np.complex128)
    with pytest.raises(TypeError, match="float16 is not supported"):
        as_dtype("float16")
    with pytest.raises(TypeError, match="is not a dtype"):
        as_dtype("banana")


def test_python_scalars_are_weak() -> None:
    f32 = np.zeros(3, np.float32)
    i64 = np.zeros(3, np.int64)
    assert result_dtype(f32, 2.0) == np.float32
    assert result_dtype(f32, np.float64(2.0)) == np.float32
    assert result_dtype(f32, np.array(2.0)) == np.float32
    assert result_dtype(f32, np.zeros(3)) == np.float64  # arrays promote as NumPy does
    assert result_dtype(i64, 2.5) == np.float32  # an int array meets a float: default float
    assert result_dtype(i64, 2) == np.int64
    assert result_dtype(np.zeros(2, bool), 3) == np.int64
    assert result_dtype(2.0, 3) == np.float32
    assert result_dtype(1, 2) == np.int64
    assert result_dtype(True) == np.bool_


def test_as_array_follows_the_policy() -> None:
    assert as_array(1.5).dtype == np.float32
    assert as_array([1, 2]).dtype == np.int64
    assert as_array([1, 2.5]).dtype == np.float32
    assert as_array([True, False]).dtype == np.bool_
    assert as_array(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert as_array([[1, 2]], dtype="float64").dtype == np.float64
    t = np.zeros((3, 4), np.float32).T
    assert as_array(t).flags.c_contiguous
    assert as_array(np.array(2.0)).shape == ()
    with pytest.raises(TypeError, match="cannot make a tensor from str"):
        as_array("abc")
    with pytest.raises(TypeError, match="NoneType"):
        as_array(None)
    with pytest.raises(TypeError, match="elements must be numbers"):
        as_array([1, None])
    with pytest.raises(ValueError, match="rectangular"):
        as_array([[1, 2], [3]])
    with pytest.raises(TypeError, match=r"object is not supported|dtype object"):
        as_array(np.array([1, "a"], dtype=object))
    with pytest.raises(TypeError, match="cannot make a tensor from dict"):
        as_array({"a": 1})


def test_manual_seed_reproduces_and_leaves_numpy_global_alone() -> None:
    np.random.seed(7)  # noqa: NPY002 - the legacy global RNG is what must stay untouched
    before = cast(_LegacyState, np.random.get_state())[1].copy()  # noqa: NPY002
    gc.manual_seed(3)
    a = gc.default_generator.normal((5,))
    u = gc.default_generator.uniform((2, 2), -1.0, 1.0, dtype="float64")
    gc.manual_seed(3)
    b = gc.default_generator.normal((5,))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert u.dtype == np.float64
    assert (np.abs(u) <= 1).all()
    np.testing.assert_array_equal(
        cast(_LegacyState, np.random.get_state())[1],  # noqa: NPY002
        before,
    )
    assert gc.initial_seed() == 3


def test_rng_state_round_trip() -> None:
    gc.manual_seed(11)
    gc.default_generator.normal((3,))
    state = gc.get_rng_state()
    x = gc.default_generator.normal((4,))
    gc.set_rng_state(state)
    np.testing.assert_array_equal(gc.default_generator.normal((4,)), x)
    with pytest.raises(ValueError, match="not a gradwise generator state"):
        gc.set_rng_state({"nope": 1})
    with pytest.raises(ValueError, match="seed must be >= 0"):
        gc.manual_seed(-1)


def test_separate_generators_are_independent() -> None:
    g1, g2 = gc.Generator(5), gc.Generator(5)
    np.testing.assert_array_equal(g1.normal((3,)), g2.normal((3,)))
    assert g1.permutation(10).dtype == np.int64
    assert g1.bernoulli((100,), 0.5).dtype == np.bool_
    assert g1.integers(0, 3, (4,)).max() < 3


def test_thread_count_is_validated_and_restored() -> None:
    top = gc.max_threads()
    before = gc.get_num_threads()
    with gc.threads(1):
        assert gc.get_num_threads() == 1
    assert gc.get_num_threads() == before
    with pytest.raises(ValueError, match="set_num_threads: n must be between 1 and"):
        gc.set_num_threads(0)
    with pytest.raises(ValueError, match=str(top + 1)):
        gc.set_num_threads(top + 1)
    with pytest.raises(TypeError):
        gc.set_num_threads(1.5)  # type: ignore[arg-type]


def test_kernels_from_many_python_threads_at_once(
    run_threads: Callable[[Callable[[int], None], int], None],
) -> None:
    """Parallel kernels launched concurrently from Python threads neither abort nor mix up."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(300_000).astype(np.float32) for _ in range(6)]
    expected = [float(ops.sum(x)) for x in xs]
    results: dict[int, list[float]] = {}

    def work(i: int) -> None:
        results[i] = [float(ops.sum(ops.relu(xs[i]) - ops.relu(-xs[i]))) for _ in range(20)]

    run_threads(work, 6)
    for i in range(6):
        assert all(r == pytest.approx(expected[i], rel=1e-5, abs=1e-3) for r in results[i])
        assert len(set(results[i])) == 1  # deterministic
