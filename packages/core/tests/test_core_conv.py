"""gradwise.core.conv: im2col/col2im and pooling kernels against naive NumPy loops."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.core import conv
from gradwise.core._jit import forced_variant
from gradwise.core.dtypes import Array
from gradwise.core.threads import max_threads, threads

Pair = tuple[int, int]


@pytest.fixture(params=["serial", "parallel"])
def variant(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test under each compiled variant."""
    with forced_variant(request.param):
        yield request.param


def naive_im2col(x: Array, k: Pair, s: Pair, p: Pair, d: Pair, out: Pair) -> Array:
    n, c, h, w = x.shape
    cols = np.zeros((c, *k, n, *out), dtype=x.dtype)
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                for oh in range(out[0]):
                    for ow in range(out[1]):
                        ih, iw = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                        if 0 <= ih < h and 0 <= iw < w:
                            cols[ci, i, j, :, oh, ow] = x[:, ci, ih, iw]
    return cols


def naive_pool(x: Array, k: Pair, s: Pair, p: Pair, d: Pair, out: Pair, how: str) -> Array:
    n, c, h, w = x.shape
    y = np.zeros((n, c, *out))
    for oh in range(out[0]):
        for ow in range(out[1]):
            vals = []
            for i in range(k[0]):
                for j in range(k[1]):
                    ih, iw = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                    if 0 <= ih < h and 0 <= iw < w:
                        vals.append(x[:, :, ih, iw])
            stack = np.stack(vals)
            y[:, :, oh, ow] = stack.max(axis=0) if how == "max" else stack.mean(axis=0)
    return y


GEOMETRIES = [
    # kernel, stride, padding, dilation
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 3), (2, 1), (1, 2), (1, 2)),
    ((1, 1), (3, 2), (0, 0), (1, 1)),
    ((3, 2), (1, 2), (2, 0), (2, 1)),
]


@pytest.mark.parametrize(("k", "s", "p", "d"), GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_matches_naive(
    k: Pair, s: Pair, p: Pair, d: Pair, dtype: type, variant: str
) -> None:
    x: Array = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(dtype)
    out = tuple(conv.output_size(x.shape[2 + a], k[a], s[a], 2 * p[a], d[a]) for a in range(2))
    cols = conv.im2col(x, k, s, p, d, (out[0], out[1]))
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, naive_im2col(x, k, s, p, d, (out[0], out[1])))


@pytest.mark.parametrize(("k", "s", "p", "d"), GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(k: Pair, s: Pair, p: Pair, d: Pair, variant: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 7))
    out = tuple(conv.output_size(x.shape[2 + a], k[a], s[a], 2 * p[a], d[a]) for a in range(2))
    cols = conv.im2col(x, k, s, p, d, (out[0], out[1]))
    g = rng.standard_normal(cols.shape)
    dx = conv.col2im(g, x.shape, s, p, d)
    assert dx.shape == x.shape
    # <g, im2col(x)> == <col2im(g), x> for every x: col2im is the transpose
    np.testing.assert_allclose(np.sum(g * cols), np.sum(dx * x), rtol=1e-12)


@settings(deadline=None, max_examples=25)
@given(
    n=st.integers(0, 3),
    c=st.integers(1, 3),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
)
def test_im2col_property(
    n: int, c: int, h: int, w: int, k: Pair, s: Pair, p: Pair, d: Pair
) -> None:
    out = (
        conv.output_size(h, k[0], s[0], 2 * p[0], d[0]),
        conv.output_size(w, k[1], s[1], 2 * p[1], d[1]),
    )
    if min(out) < 1:
        return
    x = np.random.default_rng(2).standard_normal((n, c, h, w)).astype(np.float32)
    cols = conv.im2col(x, k, s, p, d, out)
    np.testing.assert_array_equal(cols, naive_im2col(x, k, s, p, d, out))
    dx = conv.col2im(cols, x.shape, s, p, d)
    assert dx.shape == x.shape and dx.dtype == np.float32


@pytest.mark.parametrize(("k", "s", "p", "d"), GEOMETRIES[:3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_naive_and_scatters_back(
    k: Pair, s: Pair, p: Pair, d: Pair, dtype: type, variant: str
) -> None:
    x: Array = np.random.default_rng(3).standard_normal((2, 3, 6, 7)).astype(dtype)
    out = (
        conv.pool_output_size(6, k[0], s[0], p[0], d[0], False),
        conv.pool_output_size(7, k[1], s[1], p[1], d[1], False),
    )
    y, index = conv.max_pool2d(x, k, s, p, d, out)
    assert y.dtype == dtype and index.dtype == np.int64
    np.testing.assert_array_equal(y, naive_pool(x, k, s, p, d, out, "max").astype(dtype))
    # the index points at the maximum
    flat = x.reshape(2, 3, -1)
    picked = np.take_along_axis(flat, index.reshape(2, 3, -1), axis=2).reshape(y.shape)
    np.testing.assert_array_equal(picked, y)
    g = np.ones_like(y)
    dx = conv.max_pool2d_backward(g, index, x.shape)
    assert dx.sum() == pytest.approx(y.size)  # every output sends its 1 somewhere


def test_max_pool_propagates_nan() -> None:
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    y, _ = conv.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), (2, 2))
    assert np.isnan(y[0, 0, 0, 0])
    np.testing.assert_array_equal(y[0, 0].ravel()[1:], [7.0, 13.0, 15.0])


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_matches_naive(count_include_pad: bool, variant: str) -> None:
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 6))
    k, s, p = (3, 2), (2, 1), (1, 1)
    out = (conv.pool_output_size(5, 3, 2, 1, 1, False), conv.pool_output_size(6, 2, 1, 1, 1, False))
    y = conv.avg_pool2d(x, k, s, p, out, count_include_pad)
    if count_include_pad:
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        ref = naive_pool(xp, k, s, (0, 0), (1, 1), out, "mean")
    else:
        ref = naive_pool(x, k, s, p, (1, 1), out, "mean")
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    g = np.random.default_rng(5).standard_normal(y.shape)
    dx = conv.avg_pool2d_backward(g, x.shape, k, s, p, count_include_pad)
    # linear map: <g, A x> == <A^T g, x>
    np.testing.assert_allclose(np.sum(g * y), np.sum(dx * x), rtol=1e-12)


@pytest.mark.parametrize("out", [(1, 1), (2, 3), (5, 6), (7, 4)])
def test_adaptive_avg_pool_windows(out: Pair, variant: str) -> None:
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 6))
    y = conv.adaptive_avg_pool2d(x, out)
    for oh in range(out[0]):
        for ow in range(out[1]):
            h0, h1 = (oh * 5) // out[0], math.ceil((oh + 1) * 5 / out[0])
            w0, w1 = (ow * 6) // out[1], math.ceil((ow + 1) * 6 / out[1])
            np.testing.assert_allclose(y[:, :, oh, ow], x[:, :, h0:h1, w0:w1].mean(axis=(2, 3)))
    g = np.random.default_rng(7).standard_normal(y.shape)
    dx = conv.adaptive_avg_pool2d_backward(g, x.shape)
    np.testing.assert_allclose(np.sum(g * y), np.sum(dx * x), rtol=1e-12)


def test_float32_accumulates_in_float64() -> None:
    x = np.full((1, 1, 64, 64), 0.1, dtype=np.float32)
    y = conv.avg_pool2d(x, (64, 64), (64, 64), (0, 0), (1, 1))
    assert y.dtype == np.float32
    assert y[0, 0, 0, 0] == np.float32(0.1)


def test_output_sizes_follow_pytorch() -> None:
    assert conv.output_size(28, 3, 1, 2) == 28
    assert conv.output_size(7, 3, 2, 2, 2) == 3
    # ceil mode: the last window must start inside the input or the left padding
    assert conv.pool_output_size(5, 2, 2, 0, 1, True) == 3
    assert conv.pool_output_size(6, 3, 2, 1, 1, True) == 4
    assert conv.pool_output_size(6, 3, 2, 1, 1, False) == 3


def test_errors_name_the_function() -> None:
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(TypeError, match="im2col: x must be float32 or float64"):
        conv.im2col(x.astype(np.int64), (2, 2), (1, 1), (0, 0), (1, 1), (3, 3))
    with pytest.raises(ValueError, match=r"im2col: x must be 4-D, got shape \(4, 4\)"):
        conv.im2col(x[0, 0], (2, 2), (1, 1), (0, 0), (1, 1), (3, 3))
    with pytest.raises(ValueError, match="im2col: stride must be >= 1"):
        conv.im2col(x, (2, 2), (0, 1), (0, 0), (1, 1), (3, 3))
    with pytest.raises(TypeError, match="max_pool2d: x must be a NumPy array"):
        conv.max_pool2d([1.0], (2, 2), (1, 1), (0, 0), (1, 1), (3, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"col2im: cols of shape .* do not fit input shape"):
        conv.col2im(np.zeros((2, 2, 2, 1, 3, 3)), (1, 1, 4, 4), (1, 1), (0, 0), (1, 1))


# ---- conv2d / conv2d_backward: chunked GEMMs, serial or on worker threads ----------------

CONV_CASES = [
    # (n, c, o, h, w), kernel, stride, padding, dilation, groups
    ((5, 3, 4, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((4, 4, 6, 6, 7), (3, 2), (2, 1), (1, 0), (1, 2), 2),
    ((3, 6, 6, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1), 3),
    ((6, 2, 3, 9, 9), (5, 5), (1, 1), (2, 2), (1, 1), 1),
    ((2, 1, 2, 8, 8), (3, 3), (3, 2), (0, 2), (2, 1), 1),
]


@pytest.fixture(params=["serial", "threaded", "threaded-image-major"])
def conv_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a conv test on the serial path and on the worker-thread paths (forced)."""
    if request.param.startswith("threaded"):
        if max_threads() < 2 or not conv._OPENBLAS.available():
            pytest.skip("the threaded path needs 2 threads and NumPy's bundled OpenBLAS")
        monkeypatch.setattr(conv, "THREADED_MIN_FLOPS", 0)
        monkeypatch.setattr(conv, "THREADED_BYTES", 1)  # one image per chunk
        major = request.param.endswith("major")
        monkeypatch.setattr(conv, "MAJOR_MIN_LENGTH", 0 if major else math.inf)
    else:
        monkeypatch.setattr(conv, "THREADED_MIN_FLOPS", math.inf)
    return str(request.param)


def _conv_case(
    case: tuple[tuple[int, ...], Pair, Pair, Pair, Pair, int],
) -> tuple[Array, Array, Array, Pair]:
    (n, c, o, h, w), k, s, p, d, groups = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((o, c // groups, *k))
    b = rng.standard_normal(o)
    out = (
        conv.output_size(h, k[0], s[0], 2 * p[0], d[0]),
        conv.output_size(w, k[1], s[1], 2 * p[1], d[1]),
    )
    return x, wt, b, out


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv2d_is_im2col_times_weights_and_backward_is_its_adjoint(
    case: tuple[tuple[int, ...], Pair, Pair, Pair, Pair, int], n_threads: int, conv_mode: str
) -> None:
    x, w, b, out = _conv_case(case)
    _, k, s, p, d, groups = case
    if n_threads > max_threads():
        pytest.skip("needs 2 threads")
    with threads(n_threads):
        y = conv.conv2d(x, w, b, s, p, d, groups, out)
        g = np.random.default_rng(6).standard_normal(y.shape)
        dx, dw = conv.conv2d_backward(g, x, w, x.shape, w.shape, s, p, d, groups)
    cols = conv.im2col(x, k, s, p, d, out)  # (C, kH, kW, N, OH, OW)
    o, c_g = w.shape[:2]
    cg = cols.reshape(groups, c_g * k[0] * k[1], -1)
    ref = np.matmul(w.reshape(groups, o // groups, -1), cg).reshape(o, x.shape[0], *out)
    np.testing.assert_allclose(
        y, ref.transpose(1, 0, 2, 3) + b[:, None, None], rtol=1e-12, atol=1e-12
    )
    assert dx is not None and dw is not None
    assert dx.shape == x.shape and dw.shape == w.shape
    # conv is bilinear: <g, conv(x, w)> = <dx, x> = <dW, w>
    inner = np.sum(g * (y - b[:, None, None]))
    np.testing.assert_allclose(np.sum(dx * x), inner, rtol=1e-10)
    np.testing.assert_allclose(np.sum(dw * w), inner, rtol=1e-10)
    dx_only = conv.conv2d_input_grad(g, w, x.shape, s, p, d, groups)
    dw_only = conv.conv2d_weight_grad(x, g, w.shape, s, p, d, groups)
    np.testing.assert_array_equal(dx_only, dx)
    np.testing.assert_allclose(dw_only, dw, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_paths_agree_and_keep_the_dtype(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    if max_threads() < 2 or not conv._OPENBLAS.available():
        pytest.skip("the threaded path needs 2 threads and NumPy's bundled OpenBLAS")
    rng = np.random.default_rng(7)
    x: Array = rng.standard_normal((9, 4, 10, 10)).astype(dtype)
    w: Array = rng.standard_normal((6, 4, 3, 3)).astype(dtype)
    g: Array = rng.standard_normal((9, 6, 10, 10)).astype(dtype)
    bias: Array = rng.standard_normal(6).astype(dtype)
    geo = ((1, 1), (1, 1), (1, 1), 1)
    results = []
    for floor, major in ((math.inf, 0), (0, 0), (0, math.inf)):
        monkeypatch.setattr(conv, "THREADED_MIN_FLOPS", floor)
        monkeypatch.setattr(conv, "MAJOR_MIN_LENGTH", major)
        with threads(2):
            y = conv.conv2d(x, w, bias, *geo, (10, 10))
            results.append((y, *conv.conv2d_backward(g, x, w, x.shape, w.shape, *geo)))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert a is not None and b is not None and a.dtype == dtype
            # sums of hundreds of products: rounding scales with the largest magnitude
            tol = 1e-5 if dtype == np.float32 else 1e-12
            scale = float(np.abs(b).max())
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)
    get, _ = conv._OPENBLAS.found or (None, None)
    assert get is not None and conv._OPENBLAS.active == 0  # the thread count is put back


def test_conv2d_empty_and_channel_free_shapes() -> None:
    geo = ((1, 1), (0, 0), (1, 1), 1)
    y = conv.conv2d(np.zeros((0, 2, 3, 3)), np.ones((4, 2, 1, 1)), None, *geo, (3, 3))
    assert y.shape == (0, 4, 3, 3)
    y = conv.conv2d(np.zeros((2, 0, 3, 3)), np.ones((4, 0, 1, 1)), np.arange(4.0), *geo, (3, 3))
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(4.0)[:, None, None], (2, 4, 3, 3)))
    dx, dw = conv.conv2d_backward(
        np.ones((0, 4, 3, 3)),
        np.zeros((0, 2, 3, 3)),
        np.ones((4, 2, 1, 1)),
        (0, 2, 3, 3),
        (4, 2, 1, 1),
        *geo,
    )
    assert dx is not None and dx.shape == (0, 2, 3, 3)
    np.testing.assert_array_equal(dw, np.zeros((4, 2, 1, 1)))


DIRECT_CASES = [
    # (n, c, o, h, w), kernel, padding, dilation, groups, out_size (None: from padding)
    ((3, 1, 16, 9, 7), (3, 3), (1, 1), (1, 1), 1, None),  # four tiles of four outputs
    ((2, 2, 8, 8, 8), (3, 3), (1, 1), (1, 1), 1, None),
    ((2, 4, 16, 7, 9), (3, 3), (2, 0), (2, 1), 2, None),  # dilation, groups
    ((2, 3, 8, 6, 6), (3, 3), (0, 3), (1, 1), 1, None),  # padding on one side only
    ((2, 2, 8, 5, 5), (3, 3), (1, 1), (1, 1), 1, (4, 6)),  # asymmetric: out_size given
    ((1, 1, 8, 1, 1), (3, 3), (2, 2), (1, 1), 1, None),  # padding wider than the input
    ((2, 4, 32, 4, 4), (3, 3), (1, 1), (1, 1), 4, None),  # eight outputs per group
    ((2, 8, 32, 6, 5), (3, 3), (1, 1), (1, 1), 8, None),  # per group: 1 in, 4 out
    ((1, 16, 32, 12, 12), (3, 3), (1, 1), (1, 1), 1, None),  # a CNN's second layer
    ((2, 12, 4, 3, 11), (3, 3), (1, 1), (2, 1), 1, None),  # rows that share a tile
]


@pytest.mark.parametrize("case", DIRECT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["serial", "threaded", "prange"])
def test_direct_conv2d_matches_the_gemm_path(
    case: tuple[tuple[int, ...], Pair, Pair, Pair, int, Pair | None],
    dtype: type,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (n, c, o, h, w), k, p, d, groups, out = case
    if out is None:
        out = (
            conv.output_size(h, k[0], 1, 2 * p[0], d[0]),
            conv.output_size(w, k[1], 1, 2 * p[1], d[1]),
        )
    rng = np.random.default_rng(8)
    x: Array = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt: Array = rng.standard_normal((o, c // groups, *k)).astype(dtype)
    b: Array = rng.standard_normal(o).astype(dtype)
    assert conv.direct_fits(wt.shape, groups)  # the direct path serves it
    threaded = mode == "threaded"
    if threaded and max_threads() < 2:
        pytest.skip("needs 2 threads")
    monkeypatch.setattr(conv, "DIRECT_THREADED_FLOPS", 0 if threaded else math.inf)
    variant = "parallel" if mode == "prange" else "serial"
    with threads(2 if threaded else 1), forced_variant(variant):
        y = conv.conv2d(x, wt, b, (1, 1), p, d, groups, out)
        y0 = conv.conv2d(x, wt, None, (1, 1), p, d, groups, out)
    monkeypatch.setattr(conv, "DIRECT", False)  # the im2col + GEMM path
    ref = conv.conv2d(x, wt, b, (1, 1), p, d, groups, out)
    assert y.dtype == dtype and y.shape == ref.shape == (n, o, *out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(y0, ref - b[:, None, None], rtol=tol, atol=tol)


def test_direct_conv2d_serves_only_what_its_register_tile_computes() -> None:
    assert conv.direct_fits((16, 1, 3, 3), 1) and conv.direct_fits((32, 16, 3, 3), 1)
    assert conv.direct_fits((32, 1, 3, 3), 4) and conv.direct_fits((16, 1, 3, 3), 4)
    assert conv.direct_fits((256, 256, 3, 3), 1)
    assert not conv.direct_fits((6, 3, 3, 3), 1)  # not a multiple of four outputs
    assert not conv.direct_fits((16, 1, 5, 5), 1)  # not 3x3
    assert not conv.direct_fits((8, 1, 3, 3), 4)  # two outputs per group


@contextmanager
def _conv_settings(**values: object) -> Iterator[None]:
    """Set ``conv`` module settings (DIRECT, DIRECT_WEIGHT_MIN_LENGTH, ...) for a block."""
    saved = {name: getattr(conv, name) for name in values}
    for name, value in values.items():
        setattr(conv, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(conv, name, value)


_BACKWARD_GEOMETRY = {
    "hw": st.tuples(st.integers(1, 11), st.integers(1, 11)),
    "pad": st.tuples(st.integers(0, 3), st.integers(0, 3)),
    "dil": st.tuples(st.integers(1, 2), st.integers(1, 2)),
}


def _out3x3(hw: Pair, pad: Pair, dil: Pair) -> Pair | None:
    """The stride-1 3x3 output size, or None where the op would refuse the geometry."""
    oh, ow = (conv.output_size(hw[a], 3, 1, 2 * pad[a], dil[a]) for a in (0, 1))
    return (oh, ow) if min(oh, ow) >= 1 else None


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c_g=st.integers(1, 6),
    tiles=st.integers(1, 3),
    groups=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 13), st.integers(1, 13)),
    pad=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    dil=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_direct_conv2d_agrees_with_the_gemm_path_on_any_geometry(
    n: int,
    c_g: int,
    tiles: int,
    groups: int,
    hw: Pair,
    pad: Pair,
    dil: Pair,
) -> None:
    out = _out3x3(hw, pad, dil)
    if out is None:
        return  # the op refuses it before any kernel runs
    rng = np.random.default_rng(9)
    x: Array = rng.standard_normal((n, c_g * groups, *hw))
    wt: Array = rng.standard_normal((4 * tiles * groups, c_g, 3, 3))
    b: Array = rng.standard_normal(4 * tiles * groups)
    assert conv.direct_fits(wt.shape, groups)
    y = conv.conv2d(x, wt, b, (1, 1), pad, dil, groups, out)
    with _conv_settings(DIRECT=False):
        ref = conv.conv2d(x, wt, b, (1, 1), pad, dil, groups, out)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c_tiles=st.integers(1, 2),
    o_g=st.integers(1, 5),
    groups=st.integers(1, 2),
    **_BACKWARD_GEOMETRY,
)
def test_direct_input_grad_agrees_with_col2im(
    n: int, c_tiles: int, o_g: int, groups: int, hw: Pair, pad: Pair, dil: Pair
) -> None:
    out = _out3x3(hw, pad, dil)
    if out is None:
        return
    rng = np.random.default_rng(10)
    c = 4 * c_tiles * groups
    wt: Array = rng.standard_normal((o_g * groups, c // groups, 3, 3))
    g: Array = rng.standard_normal((n, o_g * groups, *out))
    shape = (n, c, *hw)
    dx = conv.conv2d_input_grad(g, wt, shape, (1, 1), pad, dil, groups)
    with _conv_settings(DIRECT=False):
        ref = conv.conv2d_input_grad(g, wt, shape, (1, 1), pad, dil, groups)
    np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 5),
    c_g=st.integers(1, 5),
    o_tiles=st.integers(1, 2),
    groups=st.integers(1, 2),
    **_BACKWARD_GEOMETRY,
)
def test_direct_weight_grad_agrees_with_the_gemm_path(
    n: int, c_g: int, o_tiles: int, groups: int, hw: Pair, pad: Pair, dil: Pair
) -> None:
    out = _out3x3(hw, pad, dil)
    if out is None:
        return
    rng = np.random.default_rng(11)
    o = 4 * o_tiles * groups
    x: Array = rng.standard_normal((n, c_g * groups, *hw))
    g: Array = rng.standard_normal((n, o, *out))
    w_shape = (o, c_g, 3, 3)
    assert conv.direct_fits(w_shape, groups)
    with _conv_settings(DIRECT_WEIGHT_MIN_LENGTH=0):  # every plane length: the direct kernel
        dw = conv.conv2d_weight_grad(x, g, w_shape, (1, 1), pad, dil, groups)
    with _conv_settings(DIRECT=False):
        ref = conv.conv2d_weight_grad(x, g, w_shape, (1, 1), pad, dil, groups)
    assert dw.shape == w_shape
    np.testing.assert_allclose(dw, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["threaded", "prange"])
def test_direct_gradients_do_not_depend_on_the_split(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "threaded" and max_threads() < 2:
        pytest.skip("needs 2 threads")
    rng = np.random.default_rng(12)
    x: Array = rng.standard_normal((7, 8, 6, 5))
    w: Array = rng.standard_normal((12, 8, 3, 3))
    g: Array = rng.standard_normal((7, 12, 6, 5))
    geo = ((1, 1), (1, 1), (1, 1), 1)
    monkeypatch.setattr(conv, "DIRECT_WEIGHT_MIN_LENGTH", 0)
    serial = conv.conv2d_backward(g, x, w, x.shape, w.shape, *geo)
    monkeypatch.setattr(conv, "DIRECT_THREADED_FLOPS", 0 if mode == "threaded" else math.inf)
    variant = "parallel" if mode == "prange" else "serial"
    with threads(2 if mode == "threaded" else 1), forced_variant(variant):
        split = conv.conv2d_backward(g, x, w, x.shape, w.shape, *geo)
    monkeypatch.setattr(conv, "DIRECT", False)
    ref = conv.conv2d_backward(g, x, w, x.shape, w.shape, *geo)
    for a, b, r in zip(serial, split, ref, strict=True):
        assert a is not None and b is not None and r is not None
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def _pool_reference(x: Array, out: Pair) -> tuple[Array, Array]:
    """2x2 stride-2 max pool by the generic rule, one window entry at a time in row order:
    a later entry replaces the best only if greater, or if it is NaN and the best is not.
    """
    n, c, _, w = x.shape
    y = np.empty((n, c, *out), x.dtype)
    index = np.empty((n, c, *out), np.int64)
    for a in range(n):
        for b in range(c):
            for oh in range(out[0]):
                for ow in range(out[1]):
                    best, at = x[a, b, 2 * oh, 2 * ow], 2 * oh * w + 2 * ow
                    for i, j in ((0, 1), (1, 0), (1, 1)):
                        v = x[a, b, 2 * oh + i, 2 * ow + j]
                        if v > best or (np.isnan(v) and not np.isnan(best)):
                            best, at = v, (2 * oh + i) * w + 2 * ow + j
                    y[a, b, oh, ow], index[a, b, oh, ow] = best, at
    return y, index


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 9), (2, 2), (5, 4)])
def test_two_by_two_max_pool_fast_path_keeps_the_generic_rule(
    dtype: type, h: int, w: int, variant: str
) -> None:
    rng = np.random.default_rng(11)
    # few distinct values, so windows hold ties, NaNs, infinities and signed zeros
    pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0])
    x: Array = rng.choice(pool, size=(3, 2, h, w)).astype(dtype)
    out = (h // 2, w // 2)
    y, index = conv.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), out)
    ref_y, ref_index = _pool_reference(x, out)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ref_y))
    np.testing.assert_array_equal(index, ref_index)
