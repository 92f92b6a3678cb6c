"""Typed entry points of the convolution and pooling kernels (NCHW float arrays).

Geometry (kernel size, stride, padding, dilation) is given as ``(h, w)`` pairs of ints;
padding is ``(top, left)`` and the output size ``(OH, OW)`` is passed in, which lets the
caller pad asymmetrically (``padding='same'`` with an even kernel, ``ceil_mode``). Each
function validates, makes its inputs contiguous, picks the serial or parallel kernel by
size and allocates the output.

:func:`conv2d`, :func:`conv2d_input_grad` and :func:`conv2d_weight_grad` run a
convolution as im2col plus BLAS GEMMs a few images at a time: the columns of a chunk of B
images ``(C kH kW, B OH OW)`` stay in cache, so no full-batch column matrix is ever built
(nor saved: backward rebuilds each chunk's columns). A stride-1 3x3 forward skips both
(:func:`direct_fits`): its direct kernel keeps tiles of outputs in registers.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext
from typing import TypeVar, cast

import numba
import numpy as np

from gradwise.core import _jit
from gradwise.core._kernels import conv as _conv
from gradwise.core.blas import OPENBLAS
from gradwise.core.dtypes import Array, Shape, contiguous

Pair = tuple[int, int]


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _float4(x: object, op: str, name: str = "x", ndim: int = 4) -> Array:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {_fmt(x.shape)}")
    return contiguous(x)


def _pairs(op: str, **pairs: Pair) -> None:
    for name, value in pairs.items():
        if len(value) != 2 or not all(isinstance(v, int | np.integer) for v in value):
            raise TypeError(f"{op}: {name} must be a pair of ints, got {value!r}")
        low = 0 if name in ("padding", "out_size") else 1
        if min(value) < low:
            raise ValueError(f"{op}: {name} must be >= {low}, got {value!r}")


def output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """floor((size + pad_total - dilation (kernel - 1) - 1) / stride) + 1 (may be <= 0)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's pooling size: floor or ceil; in ceil mode the last window must start
    inside the input or the left padding.
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def im2col(
    x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, out_size: Pair
) -> Array:
    """Columns ``(C, kH, kW, N, OH, OW)`` of ``x`` ``(N, C, H, W)``: one receptive field per
    ``(n, oh, ow)``, zero where the window reaches into the padding.
    """
    x = _float4(x, "im2col")
    _pairs(
        "im2col",
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        out_size=out_size,
    )
    n, c = x.shape[:2]
    cols = np.empty((c, *kernel_size, n, *out_size), dtype=x.dtype)
    if cols.size:
        _conv.im2col.pick(cols.size)(x, *stride, *padding, *dilation, False, cols)
    return cols


def col2im(cols: Array, x_shape: Shape, stride: Pair, padding: Pair, dilation: Pair) -> Array:
    """The adjoint of :func:`im2col`: ``dx`` of shape ``x_shape`` with every column entry
    added back where it was read from (padding entries dropped).
    """
    cols = _float4(cols, "col2im", "cols", ndim=6)
    _pairs("col2im", stride=stride, padding=padding, dilation=dilation)
    if len(x_shape) != 4 or cols.shape[0] != x_shape[1] or cols.shape[3] != x_shape[0]:
        raise ValueError(
            f"col2im: cols of shape {_fmt(cols.shape)} do not fit input shape {_fmt(x_shape)}"
        )
    dx = np.zeros(x_shape, dtype=cols.dtype)
    if cols.size and dx.size:
        _conv.col2im.pick(cols.size)(cols, *stride, *padding, *dilation, False, dx)
    return dx


# How a convolution splits its work. It runs a few images (a chunk) at a time, so each
# chunk's columns stay in cache, and no full-batch column matrix is ever built (nor saved:
# backward rebuilds each chunk's columns). Measured on 2 cores, batch 64, 28x28, 16 -> 32
# channels:
#
# - A GEMM on OpenBLAS's 2 threads only scales when it is wide: (32, 144) @ (144, 784) ran
#   at 94 GFLOP/s, 3136 columns at 160 (one thread: 85-94 for either). Chunks are then at
#   least CHUNK_COLUMNS wide, and the (O, B OH OW) product is copied into NCHW order.
# - Faster still: OpenBLAS on one thread and each core running its own images, im2col,
#   GEMM and col2im included (the Numba loops run serially between GEMMs otherwise): the
#   forward took 3.8 ms against 5.3-6.2 ms. The columns are then image-major, and one
#   matmul call runs a GEMM per image whose product is already NCHW. A chunk's columns
#   take at most THREADED_BYTES: 2 MB (4 images of 16x28x28) beat 1 MB (more Python calls,
#   and the threads hand the GIL back and forth at each) and 4-16 MB (out of cache).
#   Below MAJOR_MIN_LENGTH output pixels per image (8x8: 64) those GEMMs are too narrow,
#   and a thread's chunk is one Caffe-ordered GEMM copied into NCHW, as above.
#   gradwise does that when it can set OpenBLAS's thread count (NumPy's bundled OpenBLAS),
#   with more than one thread (``gradwise.core.threads``) and THREADED_MIN_FLOPS of work.
CHUNK_COLUMNS = 3072
CHUNK_BYTES = 1 << 22
THREADED_BYTES = 1 << 21
THREADED_MIN_FLOPS = 1 << 22
UNITS_PER_THREAD = 16
MAJOR_MIN_LENGTH = 400
DIRECT = True
"""Whether stride-1 3x3 convolutions that :func:`direct_fits` take the direct kernel (the
tests turn it off to run the GEMM path on the same cases). The register-tile kernel,
batch 64, 2 threads, medians: 16 -> 32 at 28x28 4.0 ms against the GEMM path's 6.4,
16 -> 32 at 8x8 0.93 against 1.22, 64 -> 64 at 14x14 (batch 32) 4.7 against 5.9, and
1 -> 16 at 28x28 0.71 against 0.79 (that one now takes the plane kernel: 0.39)."""
DIRECT_WEIGHT_MIN_LENGTH = 400
"""Output pixels per image from which a direct-fitting dW takes the direct kernel: its
tiles run along the planes and end in lane sums, so short planes pay those sums often.
16 -> 32, batch 64, 2 threads, medians against the GEMM path: 8x8 2.09 ms against 1.62,
14x14 3.65 against 3.66, 28x28 5.38 against 7.94."""
PLANE_MAX_CHANNELS = 1
"""Up to this many input channels per group a direct convolution writes whole output planes
(``plane_conv2d``) instead of register tiles through a padded copy: at one channel writing
the outputs is most of the work. Serial, batch 64, 28x28 to 16 outputs, medians (minimums):
1 channel 0.39 (0.29) ms against 0.71 (0.49), 2 channels 0.99 (0.75) against 1.02 (0.64),
4 channels 2.47 (2.12) against 1.80 (1.45)."""
DIRECT_THREADED_FLOPS = 1 << 25
"""From this many flops the direct kernel splits the images between threads: a thread's
wake-up cost 50-250 us on the 2-core host. Serial against two threads (batch 64, medians
and minimums, same run): 1 -> 16 at 28x28 (14.5 MFLOP) 0.75/0.47 ms against 0.89/0.56,
16 -> 32 at 8x8 (38 MFLOP) 0.96/0.90 against 1.04/0.71, 4 -> 16 at 28x28 (58 MFLOP)
1.43/1.00 against 1.30/0.78."""


def _chunk(n: int, length: int, rows: int, itemsize: int, columns: int) -> int:
    """Images per chunk for ``rows`` column rows of ``length`` entries per image."""
    by_width = -(-columns // max(length, 1))
    by_bytes = CHUNK_BYTES // max(rows * length * itemsize, 1)
    return max(1, min(n, by_width, by_bytes))


_OPENBLAS = OPENBLAS  # NumPy's OpenBLAS thread count, shared with blas.matmul
_POOL: list[tuple[int, ThreadPoolExecutor]] = []  # (pid, pool): a forked child makes its own
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if not _POOL or _POOL[0][0] != os.getpid():
            workers = max(_jit.THREAD_STATE.count, int(numba.config.NUMBA_NUM_THREADS)) - 1
            pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="gradwise-conv")
            _POOL[:] = [(os.getpid(), pool)]
        return _POOL[0][1]


T = TypeVar("T")


def _plan(n: int, length: int, rows: int, itemsize: int, flops: float) -> tuple[int, int, bool]:
    """(threads, images per chunk, image-major columns) for a convolution of ``n`` images."""
    threads = min(_jit.THREAD_STATE.count, n)
    if threads > 1 and flops >= THREADED_MIN_FLOPS and _OPENBLAS.available():
        per_image = max(rows * length * itemsize, 1)
        step = max(1, min(-(-n // threads), THREADED_BYTES // per_image))
        return threads, step, length >= MAJOR_MIN_LENGTH
    return 1, _chunk(n, length, rows, itemsize, CHUNK_COLUMNS), False


def _run(
    n: int, step: int, threads: int, make: Callable[[], Callable[[int, int], T]], blas: bool = True
) -> list[T]:
    """``work(lo, hi)`` over contiguous, chunk-aligned image ranges, in ``threads`` threads
    (the calling thread is one), each calling ``work = make()`` once (its scratch buffers)
    and taking the next range when done with one: up to UNITS_PER_THREAD ranges a thread,
    so a thread slowed down (a busy core) takes fewer. Results come back in range order,
    and a range's result never depends on which thread ran it, so sums of them are the
    same whatever the timing. With ``blas``, the GEMMs in ``work`` run on BLAS's saved
    thread count when one thread runs them all, and on one BLAS thread each when several
    do (the two modes of ``blas.OpenBlas``, which never overlap).
    """
    chunks = -(-n // step)
    threads = min(threads, chunks)
    if threads < 2:
        if blas and _OPENBLAS.available():
            with _OPENBLAS.mode(False):
                return [make()(0, n)]
        return [make()(0, n)]
    per = -(-chunks // min(chunks, UNITS_PER_THREAD * threads)) * step
    ranges = [(lo, min(n, lo + per)) for lo in range(0, n, per)]
    results: list[T | None] = [None] * len(ranges)
    order = iter(range(len(ranges)))  # shared: next() on it is atomic under the GIL

    def loop() -> None:
        work = make()
        for i in order:
            results[i] = work(*ranges[i])

    with _OPENBLAS.single() if blas else nullcontext():
        pool = _pool()
        futures = [pool.submit(loop) for _ in range(threads - 1)]
        try:
            loop()
        finally:
            wait(futures)
        for f in futures:
            f.result()  # re-raises a worker's exception
    return cast(list[T], results)


def _conv_args(
    op: str, x: object, w: object, stride: Pair, padding: Pair, dilation: Pair, groups: int
) -> tuple[Array, Array]:
    x = _float4(x, op)
    w = _float4(w, op, "w")
    if x.dtype != w.dtype:
        raise TypeError(f"{op}: x has dtype {x.dtype} but w has dtype {w.dtype}")
    _pairs(op, stride=stride, padding=padding, dilation=dilation)
    o, c_g = w.shape[:2]
    if groups < 1 or o % groups or x.shape[1] != c_g * groups:
        raise ValueError(
            f"{op}: x of shape {_fmt(x.shape)} and w of shape {_fmt(w.shape)} do not fit "
            f"groups={groups}"
        )
    return x, w


def conv2d(
    x: Array,
    w: Array,
    bias: Array | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    out_size: Pair,
) -> Array:
    """y (N, O, OH, OW) = bias + cross-correlation of ``x`` (N, C, H, W) with ``w``
    (O, C / groups, kH, kW), as PyTorch's ``conv2d`` with top/left ``padding``.

    Per chunk of B images: ``y2 (O, B OH OW) = W @ im2col(chunk)``, copied into NCHW order
    with the bias (for one image, ``y2`` is already NCHW).
    """
    x, w = _conv_args("conv2d", x, w, stride, padding, dilation, groups)
    _pairs("conv2d", out_size=out_size)
    n, c = x.shape[:2]
    o, c_g, kh, kw = w.shape
    length, k_g, o_g, rows = out_size[0] * out_size[1], c_g * kh * kw, o // groups, c * kh * kw
    y = np.empty((n, o, *out_size), dtype=x.dtype)
    if y.size == 0:
        return y
    if k_g == 0:
        y[...] = 0 if bias is None else bias.reshape(1, o, 1, 1)
        return y
    if bias is not None:
        bias = contiguous(bias, x.dtype)
        if bias.shape != (o,):
            raise ValueError(f"conv2d: bias of shape {_fmt(bias.shape)} does not fit {o} outputs")
    if stride == (1, 1) and direct_fits(w.shape, groups):
        return _direct(x, w, bias, padding, dilation, groups, y)
    threads, step, major = _plan(n, length, rows, x.itemsize, 2.0 * n * o * k_g * length)
    w3 = w.reshape(groups, o_g, k_g)
    im2col_fn = _conv.im2col.pick(rows * step * length)
    add_bias_fn = _conv.add_bias.pick(o * step * length)
    to_nchw_fn = _conv.to_nchw.pick(o * step * length)
    zeros = np.zeros(o, dtype=x.dtype)

    def make() -> Callable[[int, int], None]:
        cols_buf = np.empty(rows * step * length, dtype=x.dtype)
        y_buf = np.empty(0 if major else o * step * length, dtype=x.dtype)

        def run(lo: int, hi: int) -> None:
            for n0 in range(lo, hi, step):
                b = min(step, hi - n0)
                width = b * length
                dst = y[n0 : n0 + b].reshape(b, o, length)
                if major:  # y[n] = W @ cols[n], NCHW already
                    cols = cols_buf[: rows * width].reshape(b, c, kh, kw, *out_size)
                    im2col_fn(x[n0 : n0 + b], *stride, *padding, *dilation, True, cols)
                    if groups == 1:
                        np.matmul(w3[0], cols.reshape(b, k_g, length), out=dst)
                    else:
                        np.matmul(
                            w3,
                            cols.reshape(b, groups, k_g, length),
                            out=dst.reshape(b, groups, o_g, length),
                        )
                    if bias is not None:
                        add_bias_fn(dst, bias)
                    continue
                cols = cols_buf[: rows * width].reshape(c, kh, kw, b, *out_size)
                im2col_fn(x[n0 : n0 + b], *stride, *padding, *dilation, False, cols)
                y2 = y_buf[: o * width].reshape(o, width)
                if groups == 1:
                    np.matmul(w3[0], cols.reshape(k_g, width), out=y2)
                else:
                    np.matmul(w3, cols.reshape(groups, k_g, width), out=y2.reshape(groups, o_g, -1))
                to_nchw_fn(y2.reshape(o, b, length), zeros if bias is None else bias, dst)

        return run

    _run(n, step, threads, make)
    return y


def direct_fits(w_shape: Shape, groups: int) -> bool:
    """Whether a stride-1 conv2d with weights of ``w_shape`` runs on the direct kernel: a
    3x3 kernel and a multiple of DIRECT_BLOCK (4) outputs per group, what its register
    tile computes. Other shapes take the im2col + GEMM path.
    """
    o, _, kh, kw = w_shape
    return DIRECT and (kh, kw) == (3, 3) and (o // groups) % _conv.DIRECT_BLOCK == 0


def plane_fits(w_shape: Shape, groups: int) -> bool:
    """Whether a direct convolution runs on the plane kernel instead: at most
    PLANE_MAX_CHANNELS input channels and a multiple of PLANE_BLOCK (8) outputs per group.
    """
    o, c_g = w_shape[:2]
    return c_g <= PLANE_MAX_CHANNELS and (o // groups) % _conv.PLANE_BLOCK == 0


def _direct_threads(n: int, flops: float) -> int:
    """Threads a direct kernel splits ``n`` images between (1: one serial or prange call)."""
    return min(_jit.THREAD_STATE.count, n) if flops >= DIRECT_THREADED_FLOPS else 1


def _direct(
    x: Array, w: Array, bias: Array | None, padding: Pair, dilation: Pair, groups: int, y: Array
) -> Array:
    """:func:`conv2d` at stride 1 when :func:`direct_fits`, by ``direct_conv2d``: no
    im2col, no GEMM (the columns cost a copy of C kH kW values per output, and the GEMM
    packs them once more). Images are split between threads as in the GEMM path (Python threads
    running the serial kernel, which releases the GIL: Numba's workqueue launches cost more
    than this whole op on a busy host); results do not depend on the split.
    """
    n, c = x.shape[:2]
    o = w.shape[0]
    oh, ow = y.shape[2:]
    b = np.zeros(o, dtype=x.dtype) if bias is None else bias
    flops = 2.0 * n * o * c * 9 * oh * ow / groups
    kernel = _conv.plane_conv2d if plane_fits(w.shape, groups) else _conv.direct_conv2d
    threads = _direct_threads(n, flops)
    if threads < 2:
        size = int(flops)
        tasks = n if size >= kernel.threshold() else 1  # parallel: one per image
        kernel.pick(size)(x, w, b, *padding, *dilation, groups, tasks, y)
        return y
    serial = kernel.serial_fn  # Python threads: one wake-up, not one per launch

    def make() -> Callable[[int, int], None]:
        def run(lo: int, hi: int) -> None:
            serial(x[lo:hi], w, b, *padding, *dilation, groups, 1, y[lo:hi])

        return run

    _run(n, -(-n // (4 * threads)), threads, make, blas=False)
    return y


def conv2d_backward(
    grad: Array,
    x: Array | None,
    w: Array | None,
    x_shape: Shape,
    w_shape: Shape,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> tuple[Array | None, Array | None]:
    """Gradients of :func:`conv2d` for the output gradient ``grad`` (N, O, OH, OW):
    ``dx`` (``x_shape``) when the weight ``w`` is given, ``dW`` (``w_shape``) when the
    input ``x`` is given.

    Per chunk of B images, with ``g2 (O, B OH OW)`` the chunk's gradient:
    ``dW^T += im2col(x) @ g2^T`` and ``dx = col2im(W^T @ g2)``; a stride-1 3x3 dx whose
    transposed convolution :func:`direct_fits` runs on the direct kernel instead.
    """
    op = "conv2d_backward"
    grad = _float4(grad, op, "grad")
    _pairs(op, stride=stride, padding=padding, dilation=dilation)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{op}: x_shape {_fmt(x_shape)} and w_shape {_fmt(w_shape)} must be 4-D")
    if x is not None:
        x = _float4(x, op)
    if w is not None:
        w = _float4(w, op, "w")
    n, c = x_shape[:2]
    o, c_g, kh, kw = w_shape
    oh, ow = grad.shape[2:]
    length, k_g, o_g, rows = oh * ow, c_g * kh * kw, o // groups, c * kh * kw
    dtype = grad.dtype
    work = bool(n and length and k_g and o)
    # col2im writes every entry of each chunk's dx, so only a degenerate shape needs zeros
    dx = None if w is None else (np.empty if work else np.zeros)(x_shape, dtype=dtype)
    dwt = None if x is None else np.zeros((groups, k_g, o_g), dtype=dtype)
    if (
        work
        and w is not None
        and dx is not None
        and _direct_input_grad(grad, w, stride, padding, dilation, groups, dx)
    ):
        w = None  # dx is done; the loop below computes dW only
    if work and x is not None and dwt is not None:
        direct_dw = _direct_weight_grad(grad, x, w_shape, stride, padding, dilation, groups)
        if direct_dw is not None:
            dwt[...] = direct_dw.reshape(groups, o_g, k_g).transpose(0, 2, 1)
            x = None  # dW is done
    if work and (x is not None or w is not None):
        flops = 2.0 * n * o * k_g * length * ((x is not None) + (w is not None))
        threads, step, major = _plan(n, length, rows, grad.itemsize, flops)
        im2col_fn = _conv.im2col.pick(rows * step * length)
        col2im_fn = _conv.col2im.pick(rows * step * length)
        w3t = None if w is None else w.reshape(groups, o_g, k_g).transpose(0, 2, 1)

        def make() -> Callable[[int, int], Array | None]:
            g_buf = np.empty(0 if major else o * step * length, dtype=dtype)
            cols_buf = np.empty(rows * step * length, dtype=dtype)
            part = np.empty((step * groups if major else groups, k_g, o_g), dtype=dtype)

            def run(lo: int, hi: int) -> Array | None:
                acc = None if x is None else np.zeros((groups, k_g, o_g), dtype=dtype)
                for n0 in range(lo, hi, step):
                    b = min(step, hi - n0)
                    width = b * length
                    g_n = grad[n0 : n0 + b].reshape(b, groups, o_g, length)
                    if major:
                        cols = cols_buf[: rows * width].reshape(b, c, kh, kw, oh, ow)
                        c4 = cols.reshape(b, groups, k_g, length)
                    else:
                        g2 = g_buf[: o * width].reshape(o, b, length)
                        g2[...] = grad[n0 : n0 + b].reshape(b, o, length).transpose(1, 0, 2)
                        g3 = g2.reshape(groups, o_g, width)
                        cols = cols_buf[: rows * width].reshape(c, kh, kw, b, oh, ow)
                        c3 = cols.reshape(groups, k_g, width)
                    if x is not None and acc is not None:
                        im2col_fn(x[n0 : n0 + b], *stride, *padding, *dilation, major, cols)
                        if major:  # dW^T[n] = cols[n] @ g[n]^T, summed over the chunk
                            pb = part[: b * groups]
                            np.matmul(
                                c4.reshape(b * groups, k_g, length),
                                g_n.reshape(b * groups, o_g, length).transpose(0, 2, 1),
                                out=pb,
                            )
                            acc += pb.reshape(b, groups, k_g, o_g).sum(axis=0)
                        else:
                            if groups == 1:
                                np.matmul(c3[0], g3[0].T, out=part[0])
                            else:
                                np.matmul(c3, g3.transpose(0, 2, 1), out=part)
                            acc += part
                    if w3t is not None and dx is not None:
                        if major and groups == 1:
                            np.matmul(
                                w3t[0], g_n.reshape(b, o, length), out=c4.reshape(b, k_g, length)
                            )
                        elif major:
                            np.matmul(w3t, g_n, out=c4)
                        elif groups == 1:
                            np.matmul(w3t[0], g3[0], out=c3[0])
                        else:
                            np.matmul(w3t, g3, out=c3)
                        col2im_fn(cols, *stride, *padding, *dilation, major, dx[n0 : n0 + b])
                return acc

            return run

        parts = _run(n, step, threads, make)
        if dwt is not None:
            for p in parts:  # in image order: the same sum whatever the timing
                if p is not None:
                    dwt += p
    dw = None if dwt is None else np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape(w_shape)
    return dx, dw


def _direct_input_grad(
    grad: Array, w: Array, stride: Pair, padding: Pair, dilation: Pair, groups: int, dx: Array
) -> bool:
    """dx of a stride-1 3x3 convolution as the direct kernel's convolution of ``grad`` with
    the flipped, transposed weights ``w[g O_g + o, c, 2 - i, 2 - j]`` at padding
    2 d - p, when that fits (C / groups a multiple of 4, p <= 2 d); False otherwise.
    """
    o, c_g, kh, kw = w.shape
    pad = (2 * dilation[0] - padding[0], 2 * dilation[1] - padding[1])
    if stride != (1, 1) or (kh, kw) != (3, 3) or min(pad) < 0:
        return False
    wt = w.reshape(groups, o // groups, c_g, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    wt = np.ascontiguousarray(wt).reshape(groups * c_g, o // groups, kh, kw)
    if not direct_fits(wt.shape, groups):
        return False
    _direct(grad, wt, None, pad, dilation, groups, dx)
    return True


def _direct_weight_grad(
    grad: Array, x: Array, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair, groups: int
) -> Array | None:
    """dW (O, C / groups, 9) of a stride-1 3x3 convolution by ``direct_weight_grad`` when
    its register tile fits (O / groups a multiple of 4) and the planes are at least
    DIRECT_WEIGHT_MIN_LENGTH long; None otherwise. Images are split between threads as in
    :func:`_direct`, and the partial sums are added in image order.
    """
    o, c_g = w_shape[:2]
    if stride != (1, 1) or not direct_fits(w_shape, groups):
        return None
    if grad.shape[2] * grad.shape[3] < DIRECT_WEIGHT_MIN_LENGTH:
        return None
    n = x.shape[0]
    flops = 2.0 * n * o * c_g * 9 * grad.shape[2] * grad.shape[3]
    threads = _direct_threads(n, flops)
    kernel = _conv.direct_weight_grad
    if threads < 2:
        tasks = n if int(flops) >= kernel.threshold() else 1
        parts = np.empty((tasks, o, c_g, 9), dtype=grad.dtype)
        kernel.pick(int(flops))(x, grad, *padding, *dilation, groups, tasks, parts)
        return cast(Array, parts.sum(axis=0))
    serial = kernel.serial_fn

    def make() -> Callable[[int, int], Array]:
        def run(lo: int, hi: int) -> Array:
            part: Array = np.empty((1, o, c_g, 9), dtype=grad.dtype)
            serial(x[lo:hi], grad[lo:hi], *padding, *dilation, groups, 1, part)
            return part.reshape(o, c_g, 9)

        return run

    total = np.zeros((o, c_g, 9), dtype=grad.dtype)
    for part in _run(n, -(-n // (4 * threads)), threads, make, blas=False):
        total += part  # in image order: the same sum whatever the timing
    return total


def conv2d_input_grad(
    grad: Array,
    w: Array,
    x_shape: Shape,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> Array:
    """dx (``x_shape``) of :func:`conv2d`: ``col2im(W^T @ grad)``."""
    dx, _ = conv2d_backward(grad, None, w, x_shape, w.shape, stride, padding, dilation, groups)
    return cast(Array, dx)


def conv2d_weight_grad(
    x: Array,
    grad: Array,
    w_shape: Shape,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> Array:
    """dW (``w_shape``) of :func:`conv2d`: ``grad @ im2col(x)^T``, summed over images."""
    _, dw = conv2d_backward(grad, x, None, x.shape, w_shape, stride, padding, dilation, groups)
    return cast(Array, dw)


def _planes(x: Array) -> Array:
    n, c, h, w = x.shape
    return x.reshape(n * c, h, w)


def max_pool2d(
    x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, out_size: Pair
) -> tuple[Array, Array]:
    """Window maxima of ``(N, C, H, W)`` and the flat ``h * W + w`` index of each (int64);
    NaN propagates. Windows lying wholly in the padding give -inf and index -1.
    """
    x = _float4(x, "max_pool2d")
    _pairs(
        "max_pool2d",
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        out_size=out_size,
    )
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    index = np.empty((n, c, *out_size), dtype=np.int64)
    if out.size:
        _conv.max_pool2d.pick(out.size * math.prod(kernel_size))(
            _planes(x), *kernel_size, *stride, *padding, *dilation, _planes(out), _planes(index)
        )
    return out, index


def max_pool2d_backward(grad: Array, index: Array, x_shape: Shape) -> Array:
    """Scatter ``grad`` to the positions ``index`` chose (repeated positions add up)."""
    grad = _float4(grad, "max_pool2d_backward", "grad")
    if index.shape != grad.shape or index.dtype != np.int64:
        raise ValueError(
            f"max_pool2d_backward: index of shape {_fmt(index.shape)} ({index.dtype}) does not "
            f"fit grad of shape {_fmt(grad.shape)} (int64 expected)"
        )
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.max_pool2d_backward.pick(dx.size)(_planes(grad), _planes(index), _planes(dx))
    return dx


def avg_pool2d(
    x: Array,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    out_size: Pair,
    count_include_pad: bool = True,
) -> Array:
    """Window means of ``(N, C, H, W)``, the sum accumulated in float64."""
    x = _float4(x, "avg_pool2d")
    _pairs("avg_pool2d", kernel_size=kernel_size, stride=stride, padding=padding, out_size=out_size)
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    if out.size:
        _conv.avg_pool2d.pick(out.size * math.prod(kernel_size))(
            _planes(x), *kernel_size, *stride, *padding, bool(count_include_pad), _planes(out)
        )
    return out


def avg_pool2d_backward(
    grad: Array,
    x_shape: Shape,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    count_include_pad: bool = True,
) -> Array:
    """Each output's gradient divided by its divisor, spread over its window."""
    grad = _float4(grad, "avg_pool2d_backward", "grad")
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.avg_pool2d_backward.pick(grad.size * math.prod(kernel_size))(
            _planes(grad), *kernel_size, *stride, *padding, bool(count_include_pad), _planes(dx)
        )
    return dx


def adaptive_avg_pool2d(x: Array, out_size: Pair) -> Array:
    """Means over PyTorch's adaptive windows ``[floor(i H / OH), ceil((i + 1) H / OH))``."""
    x = _float4(x, "adaptive_avg_pool2d")
    _pairs("adaptive_avg_pool2d", out_size=out_size)
    n, c = x.shape[:2]
    out = np.empty((n, c, *out_size), dtype=x.dtype)
    if out.size:
        _conv.adaptive_avg_pool2d.pick(x.size)(_planes(x), _planes(out))
    return out


def adaptive_avg_pool2d_backward(grad: Array, x_shape: Shape) -> Array:
    """Each output's gradient divided by its window size, spread over its window."""
    grad = _float4(grad, "adaptive_avg_pool2d_backward", "grad")
    dx = np.zeros(x_shape, dtype=grad.dtype)
    if grad.size and dx.size:
        _conv.adaptive_avg_pool2d_backward.pick(dx.size)(_planes(grad), _planes(dx))
    return dx


__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "output_size",
    "pool_output_size",
]
