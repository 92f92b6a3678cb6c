"""softmax, log_softmax, logsumexp and the fused softmax cross-entropy against NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradwise.core import ops, threads

DTYPES = [np.float32, np.float64]
# (rows, classes): total sizes 0, 1, 7, 1023, 65537 and 2^20 + 3 elements
ROW_SHAPES = [
    (0, 5),
    (1, 1),
    (1, 7),
    (3, 341),
    (131, 500 + 0),
    (1, 65537),
    pytest.param((1049, 1000), marks=pytest.mark.slow),
    pytest.param((2**20 + 3, 1), marks=pytest.mark.slow),
]
Arr = np.ndarray[Any, Any]


def _tol(dtype: type) -> dict[str, float]:
    return {"rtol": 2e-5, "atol": 5e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-13}


def _close(actual: Arr, desired: Arr, dtype: type) -> None:
    tol = _tol(dtype)
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"], atol=tol["atol"])


def _ref_lse(x: Arr, axis: int) -> Arr:
    m = np.max(x, axis=axis, keepdims=True)
    lse: Arr = np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))
    return lse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_softmax_family_matches_numpy(
    dtype: type, shape: tuple[int, int], n_threads: int, rng: np.random.Generator
) -> None:
    x: Arr = (rng.standard_normal(shape) * 5).astype(dtype)
    g: Arr = rng.standard_normal(shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    with threads(n_threads):
        y = ops.softmax(x)
        ly = ops.log_softmax(x)
        lse = ops.logsumexp(x, axis=-1)
        dy = ops.softmax_backward(y, g)
        dly = ops.log_softmax_backward(ly, g)
        dlse = ops.logsumexp_backward(x, lse, g[:, 0], axis=-1)
    assert {a.dtype for a in (y, ly, lse, dy, dly, dlse)} == {np.dtype(dtype)}
    if x.size == 0:
        assert y.shape == shape
        assert lse.shape == (0,)
        return
    ref_lse = _ref_lse(x64, 1)
    p = np.exp(x64 - ref_lse[:, None])
    _close(lse, ref_lse, dtype)
    _close(y, p, dtype)
    _close(ly, x64 - ref_lse[:, None], dtype)
    _close(dy, p * (g64 - (g64 * p).sum(1, keepdims=True)), dtype)
    _close(dly, g64 - p * g64.sum(1, keepdims=True), dtype)
    _close(dlse, g64[:, :1] * p, dtype)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_softmax_over_any_axis(axis: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4, 5))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(
        ops.softmax(x, axis), e / e.sum(axis=axis, keepdims=True), rtol=1e-12
    )
    np.testing.assert_allclose(
        ops.logsumexp(x, axis, keepdims=True), np.expand_dims(_ref_lse(x, axis), axis), rtol=1e-12
    )
    y = ops.log_softmax(x, axis)
    assert y.flags.c_contiguous
    g = rng.standard_normal(x.shape)
    p = np.exp(y)
    np.testing.assert_allclose(
        ops.log_softmax_backward(y, g, axis),
        g - p * g.sum(axis=axis, keepdims=True),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        ops.softmax_backward(p, g, axis),
        p * (g - (g * p).sum(axis=axis, keepdims=True)),
        rtol=1e-10,
        atol=1e-12,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_for_huge_logits(dtype: type) -> None:
    x: Arr = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = ops.softmax(x)
    want: list[list[float]] = [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]]
    np.testing.assert_allclose(y, want, rtol=1e-6)
    np.testing.assert_allclose(ops.logsumexp(x, 1), [1e4, -1e4 + np.log(3)], rtol=1e-6)
    assert np.isfinite(ops.log_softmax(x)).all()


def test_logsumexp_edge_cases() -> None:
    assert ops.logsumexp(np.zeros((2, 0)), 1).tolist() == [-np.inf, -np.inf]
    assert ops.logsumexp(np.full(3, -np.inf)) == -np.inf
    assert ops.logsumexp(np.array([np.inf, 1.0])) == np.inf
    assert np.isnan(ops.logsumexp(np.array([np.nan, 1.0])))
    assert np.isnan(ops.softmax(np.array([np.nan, 1.0]))).all()
    assert ops.softmax(np.array(3.0)).shape == ()


# ---- fused cross-entropy --------------------------------------------------------------


def _ref_ce(x: Arr, t: Arr, w: Arr | None, ignore: int, eps: float) -> tuple[Arr, Arr]:
    """PyTorch's cross_entropy(reduction='none') and the per-row target weights, float64."""
    n, c = x.shape
    w = np.ones(c) if w is None else w
    logp = x - _ref_lse(x, 1)[:, None]
    keep = t != ignore
    tt = np.where(keep, t, 0)
    nll = -w[tt] * logp[np.arange(n), tt]
    smooth = -(logp * w).sum(1)
    loss = (1 - eps) * nll + eps / c * smooth
    return np.where(keep, loss, 0.0), np.where(keep, w[tt], 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [(1, 1), (7, 3), (64, 10), (513, 129), pytest.param((1024, 1025), marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_cross_entropy_matches_reference(
    dtype: type,
    shape: tuple[int, int],
    eps: float,
    weighted: bool,
    n_threads: int,
    rng: np.random.Generator,
) -> None:
    n, c = shape
    x: Arr = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, c, n)
    t[::5] = -100
    w = rng.uniform(0.5, 2.0, c) if weighted else None
    with threads(n_threads):
        losses, lse, tw = ops.softmax_cross_entropy(x, t, w, -100, eps)
        g = rng.standard_normal(n)
        dx = ops.softmax_cross_entropy_backward(x, t, lse, g, w, -100, eps)
    ref, ref_tw = _ref_ce(x.astype(np.float64), t, w, -100, eps)
    assert losses.dtype == dtype
    assert dx.dtype == dtype
    _close(losses, ref, dtype)
    np.testing.assert_allclose(tw, ref_tw)
    # analytic gradient of sum(g * loss) in float64
    x64 = x.astype(np.float64)
    p = np.exp(x64 - _ref_lse(x64, 1)[:, None])
    ww = np.ones(c) if w is None else w
    keep = t != -100
    tt = np.where(keep, t, 0)
    onehot = np.zeros_like(p)
    onehot[np.arange(n), tt] = 1.0
    d = (1 - eps) * ww[tt][:, None] * (p - onehot) + eps / c * (ww.sum() * p - ww)
    want = np.where(keep[:, None], g[:, None] * d, 0.0)
    _close(dx, want, dtype)


def test_cross_entropy_backward_matches_finite_differences(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 6))
    t = np.array([0, 5, -100, 2])
    w = rng.uniform(0.5, 2.0, 6)
    g = rng.standard_normal(4)

    def f(a: Arr) -> float:
        return float((ops.softmax_cross_entropy(a, t, w, -100, 0.2)[0] * g).sum())

    _, lse, _ = ops.softmax_cross_entropy(x, t, w, -100, 0.2)
    dx = ops.softmax_cross_entropy_backward(x, t, lse, g, w, -100, 0.2)
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + 1e-6
        hi = f(x)
        x[i] = old - 1e-6
        lo = f(x)
        x[i] = old
        num[i] = (hi - lo) / 2e-6
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    losses, lse, _ = ops.softmax_cross_entropy(x, np.array([0, 0]))
    np.testing.assert_allclose(losses, [0.0, 2e4], rtol=1e-6)
    dx = ops.softmax_cross_entropy_backward(x, np.array([0, 0]), lse, np.ones(2))
    assert np.isfinite(dx).all()


def test_cross_entropy_rejects_bad_targets() -> None:
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(IndexError, match="target 4 at position 1 is out of range for 4 classes"):
        ops.softmax_cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="target -1 at position 2"):
        ops.softmax_cross_entropy(x, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"target has shape \(2,\) but logits have shape \(3, 4\)"):
        ops.softmax_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="target must be an integer array"):
        ops.softmax_cross_entropy(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        ops.softmax_cross_entropy(x, np.array([0, 1, 2]), np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        ops.softmax_cross_entropy(x, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"logits must be \(N, C\)"):
        ops.softmax_cross_entropy(np.zeros(3), np.array([0]))


def test_cross_entropy_backward_rejects_bad_targets() -> None:
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(IndexError, match="target 3 at position 0"):
        ops.softmax_cross_entropy_backward(x, np.array([3, 0]), np.zeros(2), np.ones(2))
