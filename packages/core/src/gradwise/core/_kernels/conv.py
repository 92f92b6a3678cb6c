"""Convolution and pooling loops over NCHW arrays (conv1d runs as conv2d with H = 1).

``im2col`` unrolls every receptive field into a column matrix laid out as
``cols[c, kh, kw, n, oh, ow]`` (Caffe's order), so a convolution is one GEMM
``W (O, C kH kW) @ cols (C kH kW, N OH OW)``, or image-major ``cols[n, c, kh, kw, oh, ow]``
(one GEMM per image, whose product is already NCHW); consecutive ``ow`` read consecutive
input columns when the stride is 1, and each thread writes its own rows. ``col2im`` is the
adjoint: it adds the columns back, one writer per input plane ``(n, c)``. Padding is
virtual (out-of-range reads give 0, out-of-range writes are dropped), and only the
top/left padding is needed: the output size already encodes the bottom/right one.

Stride-1 3x3 convolutions also run without columns: ``direct_conv2d`` (and its gradient
``direct_weight_grad``) on zero-padded copies of each image, accumulating tiles of 4
outputs x 24 pixels in registers (``simd.Vec8``); ``plane_conv2d``, for one input channel,
writes whole output planes as long vectorised runs over shifted copies of the input.

Pooling loops run one plane ``(n, c)`` per iteration, so the backward scatters are
race-free. Max pooling keeps the flat index of each window's maximum (NaN wins, as in
PyTorch).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradwise.core._jit import kernel, reassociating
from gradwise.core._kernels.simd import LANES, vfma, vload, vsplat, vstore, vsum, vzero
from gradwise.core.dtypes import Array

# Parallel thresholds: in a network these loops run between BLAS GEMMs, and on the 2-core
# machine they were measured on, the OpenMP workers of a parallel variant and OpenBLAS's
# threads spin against each other: interleaved with a (32, 144) @ (144, 50176) float32
# GEMM, parallel im2col of 7.2M elements took 8.4 ms against 2.7 ms serial (max pooling:
# 14 ms against 3.5 ms), and the GEMM itself slowed 9x. So they stay serial up to 64M.
_PARALLEL_MIN = 1 << 26


@reassociating  # a compiled helper the kernels call (integer work: its flags are moot)
def _column_masks(kw: int, size: int, ow_n: int, pw: int, dw: int, w: int) -> Array:
    """masks[j, oh OW + ow] = (0 <= ow - pw + j dw < w): the entries of a flattened
    ``(OH, OW)`` block whose stride-1 reads for kernel column ``j`` stay inside the row.
    """
    masks = np.zeros((kw, size), dtype=np.bool_)
    for j in range(kw):
        dj = j * dw - pw
        for p in range(size):
            iw = p % ow_n + dj
            masks[j, p] = iw >= 0 and iw < w
    return masks


@kernel(_PARALLEL_MIN)
def im2col(
    x: Array,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    image_major: bool,
    cols: Array,
) -> None:
    """cols[c, i, j, n, oh, ow] = x[n, c, oh sh - ph + i dh, ow sw - pw + j dw] (0 outside);
    ``image_major`` columns are laid out ``cols[n, c, i, j, oh, ow]`` instead.
    """
    n_batch, n_chan, h, w = x.shape
    kh, kw = (cols.shape[2], cols.shape[3]) if image_major else (cols.shape[1], cols.shape[2])
    oh_n, ow_n = cols.shape[4], cols.shape[5]
    zero = x.dtype.type(0.0)
    # Stride 1 with OW == W: each block is one shifted copy of the flattened plane (a long
    # vectorised loop); the columns whose reads wrapped into the next row are then zeroed.
    # (A select against a column mask inside the copy: 36 -> 29 us per image at 28x28.)
    flat = sh == 1 and sw == 1 and ow_n == w
    size = oh_n * ow_n
    x_flat, cols_flat = x.reshape(x.size), cols.reshape(cols.size)
    # One task per (c, i, j): the bounds below depend on (i, j) only, so the integer
    # divisions run once per task, not once per image (at 8x8 they cost more than the copy).
    for task in prange(n_chan * kh * kw):
        j = task % kw
        i = (task // kw) % kh
        c = task // (kw * kh)
        di, dj = i * dh - ph, j * dw - pw  # ih = oh sh + di, iw = ow sw + dj
        r_lo = min(oh_n, 0 if di >= 0 else (sh - 1 - di) // sh)  # rows with 0 <= ih < h
        r_hi = max(r_lo, min(oh_n, (h - 1 - di) // sh + 1))
        c_lo = min(ow_n, 0 if dj >= 0 else (sw - 1 - dj) // sw)  # columns with 0 <= iw < w
        c_hi = max(c_lo, min(ow_n, (w - 1 - dj) // sw + 1))
        start = r_lo * w + c_lo  # flat case: the first and last valid entries bound the copy
        count = (r_hi - 1) * w + c_hi - start
        for n in range(n_batch):
            b = (
                ((n * n_chan + c) * kh + i) * kw + j
                if image_major
                else ((c * kh + i) * kw + j) * n_batch + n
            )
            if flat and r_hi > r_lo and c_hi > c_lo:
                # Flat indices, unsigned so that LLVM drops the negative-index checks and
                # vectorises the copy.
                base = np.uint64(b * size)
                src = np.uint64((n * n_chan + c) * h * w + start + di * w + dj)
                for q in range(np.uint64(start)):
                    cols_flat[base + q] = zero
                for q in range(np.uint64(start + count), np.uint64(size)):
                    cols_flat[base + q] = zero
                dst = base + np.uint64(start)
                for q in range(np.uint64(count)):
                    cols_flat[dst + q] = x_flat[src + q]
                for r in range(r_lo, r_hi):
                    row = base + np.uint64(r * ow_n)
                    for q in range(np.uint64(c_lo)):
                        cols_flat[row + q] = zero
                    for q in range(np.uint64(c_hi), np.uint64(ow_n)):
                        cols_flat[row + q] = zero
                continue
            block = cols[n, c, i, j] if image_major else cols[c, i, j, n]
            for oh in range(oh_n):
                ih = oh * sh + di
                if oh < r_lo or oh >= r_hi:
                    for ow in range(ow_n):
                        block[oh, ow] = zero
                    continue
                for ow in range(c_lo):
                    block[oh, ow] = zero
                for ow in range(c_hi, ow_n):
                    block[oh, ow] = zero
                if c_hi > c_lo:
                    dst = block[oh, c_lo:c_hi]
                    part = x[n, c, ih, c_lo * sw + dj : (c_hi - 1) * sw + dj + 1 : sw]
                    for q in range(c_hi - c_lo):
                        dst[q] = part[q]


@kernel(_PARALLEL_MIN)
def col2im(
    cols: Array,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    image_major: bool,
    dx: Array,
) -> None:
    """dx[n, c, ih, iw] = sum of the cols entries im2col read from x[n, c, ih, iw]."""
    n_batch, n_chan, h, w = dx.shape
    kh, kw = (cols.shape[2], cols.shape[3]) if image_major else (cols.shape[1], cols.shape[2])
    oh_n, ow_n = cols.shape[4], cols.shape[5]
    zero = dx.dtype.type(0.0)
    flat = sh == 1 and sw == 1 and ow_n == w  # as in im2col: one masked shifted add
    size = oh_n * ow_n
    masks = _column_masks(kw if flat else 0, size, ow_n, pw, dw, w)
    dx_flat, cols_flat, mask_flat = dx.reshape(dx.size), cols.reshape(cols.size), masks.reshape(-1)
    for task in prange(n_batch * n_chan):
        n = task // n_chan
        c = task % n_chan
        plane = dx[n, c]
        at = np.uint64(task * h * w)
        for q in range(np.uint64(h * w)):
            dx_flat[at + q] = zero
        for i in range(kh):
            for j in range(kw):
                di, dj = i * dh - ph, j * dw - pw
                r_lo = min(oh_n, 0 if di >= 0 else (sh - 1 - di) // sh)
                r_hi = max(r_lo, min(oh_n, (h - 1 - di) // sh + 1))
                c_lo = min(ow_n, 0 if dj >= 0 else (sw - 1 - dj) // sw)
                c_hi = max(c_lo, min(ow_n, (w - 1 - dj) // sw + 1))
                if r_hi <= r_lo or c_hi <= c_lo:
                    continue
                b = (
                    ((n * n_chan + c) * kh + i) * kw + j
                    if image_major
                    else ((c * kh + i) * kw + j) * n_batch + n
                )
                if flat:
                    start = r_lo * w + c_lo
                    count = (r_hi - 1) * w + c_hi - start
                    src = np.uint64(b * size + start)
                    dst = at + np.uint64(start + di * w + dj)
                    keep = np.uint64(j * size + start)
                    for q in range(np.uint64(count)):
                        dx_flat[dst + q] += cols_flat[src + q] if mask_flat[keep + q] else zero
                    continue
                block = cols[n, c, i, j] if image_major else cols[c, i, j, n]
                for oh in range(r_lo, r_hi):
                    ih = oh * sh + di
                    row = block[oh, c_lo:c_hi]
                    dst = plane[ih, c_lo * sw + dj : (c_hi - 1) * sw + dj + 1 : sw]
                    for q in range(c_hi - c_lo):
                        dst[q] += row[q]


@kernel(_PARALLEL_MIN)
def add_bias(y: Array, bias: Array) -> None:
    """y[n, o, :] += bias[o] for y of shape (N, O, L)."""
    n_batch, n_out, length = y.shape
    for task in prange(n_batch * n_out):
        row = y[task // n_out, task % n_out]
        v = bias[task % n_out]
        for p in range(length):
            row[p] += v


@kernel(_PARALLEL_MIN)
def to_nchw(src: Array, bias: Array, dst: Array) -> None:
    """dst[n, o, :] = src[o, n, :] + bias[o] (a chunk's (O, B L) GEMM product into NCHW)."""
    n_batch, n_out, length = dst.shape
    for task in prange(n_batch * n_out):
        n = task // n_out
        o = task % n_out
        row, part = dst[n, o], src[o, n]
        v = bias[o]
        for p in range(length):
            row[p] = part[p] + v


PLANE_BLOCK = 8
"""Output channels the plane convolution computes together: each input value it loads
feeds 8 multiply-adds. One core here, 3x3 taps into 784-wide planes: 2 outputs 28 GFLOP/s,
4 outputs 42, 8 outputs 51; 8 outputs from two channels at once, 7 (LLVM gave up)."""


@reassociating
def _taps3x3(a: Array, s: Array, k: Array, v: Array, row: int, n: int, init: bool) -> None:
    """a[u, p] = (v[u] if init else a[u, p]) + sum_{i, j < 3} k[u, 3 i + j] s[j, i row + p]
    for u < 8, p < n: nine shifted reads feed 72 multiply-adds into 8 output planes.
    Written out: LLVM vectorises only innermost loops, and a loop over u inside the loop
    over p is not. ``init`` (the first input channel) starts from the bias instead of
    reading ``a``: with a separate bias pass first (its stores missing the cache) the
    direct kernel took 870 us, fused 300 us (28x28, 1 -> 16 channels, batch 64).
    """
    # element reads (ravel() of a strided slice would allocate)
    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
    k03, k04, k05 = k[0, 3], k[0, 4], k[0, 5]
    k06, k07, k08 = k[0, 6], k[0, 7], k[0, 8]
    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
    k13, k14, k15 = k[1, 3], k[1, 4], k[1, 5]
    k16, k17, k18 = k[1, 6], k[1, 7], k[1, 8]
    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
    k23, k24, k25 = k[2, 3], k[2, 4], k[2, 5]
    k26, k27, k28 = k[2, 6], k[2, 7], k[2, 8]
    k30, k31, k32 = k[3, 0], k[3, 1], k[3, 2]
    k33, k34, k35 = k[3, 3], k[3, 4], k[3, 5]
    k36, k37, k38 = k[3, 6], k[3, 7], k[3, 8]
    k40, k41, k42 = k[4, 0], k[4, 1], k[4, 2]
    k43, k44, k45 = k[4, 3], k[4, 4], k[4, 5]
    k46, k47, k48 = k[4, 6], k[4, 7], k[4, 8]
    k50, k51, k52 = k[5, 0], k[5, 1], k[5, 2]
    k53, k54, k55 = k[5, 3], k[5, 4], k[5, 5]
    k56, k57, k58 = k[5, 6], k[5, 7], k[5, 8]
    k60, k61, k62 = k[6, 0], k[6, 1], k[6, 2]
    k63, k64, k65 = k[6, 3], k[6, 4], k[6, 5]
    k66, k67, k68 = k[6, 6], k[6, 7], k[6, 8]
    k70, k71, k72 = k[7, 0], k[7, 1], k[7, 2]
    k73, k74, k75 = k[7, 3], k[7, 4], k[7, 5]
    k76, k77, k78 = k[7, 6], k[7, 7], k[7, 8]
    v0, v1, v2, v3, v4, v5, v6, v7 = v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
    s0, s1, s2 = s[0, 0:n], s[1, 0:n], s[2, 0:n]
    s3, s4, s5 = s[0, row : row + n], s[1, row : row + n], s[2, row : row + n]
    r2 = 2 * row
    s6, s7, s8 = s[0, r2 : r2 + n], s[1, r2 : r2 + n], s[2, r2 : r2 + n]
    a0, a1, a2, a3, a4, a5, a6, a7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    # Two loops, not one with a per-element choice: LLVM did not unswitch that one and
    # left it scalar (3x slower).
    if init:
        for p in range(n):
            x0, x1, x2, x3, x4 = s0[p], s1[p], s2[p], s3[p], s4[p]
            x5, x6, x7, x8 = s5[p], s6[p], s7[p], s8[p]
            a0[p] = v0 + (
                k00 * x0 + k01 * x1 + k02 * x2 + k03 * x3 + k04 * x4
                + k05 * x5 + k06 * x6 + k07 * x7 + k08 * x8
            )  # fmt: skip
            a1[p] = v1 + (
                k10 * x0 + k11 * x1 + k12 * x2 + k13 * x3 + k14 * x4
                + k15 * x5 + k16 * x6 + k17 * x7 + k18 * x8
            )  # fmt: skip
            a2[p] = v2 + (
                k20 * x0 + k21 * x1 + k22 * x2 + k23 * x3 + k24 * x4
                + k25 * x5 + k26 * x6 + k27 * x7 + k28 * x8
            )  # fmt: skip
            a3[p] = v3 + (
                k30 * x0 + k31 * x1 + k32 * x2 + k33 * x3 + k34 * x4
                + k35 * x5 + k36 * x6 + k37 * x7 + k38 * x8
            )  # fmt: skip
            a4[p] = v4 + (
                k40 * x0 + k41 * x1 + k42 * x2 + k43 * x3 + k44 * x4
                + k45 * x5 + k46 * x6 + k47 * x7 + k48 * x8
            )  # fmt: skip
            a5[p] = v5 + (
                k50 * x0 + k51 * x1 + k52 * x2 + k53 * x3 + k54 * x4
                + k55 * x5 + k56 * x6 + k57 * x7 + k58 * x8
            )  # fmt: skip
            a6[p] = v6 + (
                k60 * x0 + k61 * x1 + k62 * x2 + k63 * x3 + k64 * x4
                + k65 * x5 + k66 * x6 + k67 * x7 + k68 * x8
            )  # fmt: skip
            a7[p] = v7 + (
                k70 * x0 + k71 * x1 + k72 * x2 + k73 * x3 + k74 * x4
                + k75 * x5 + k76 * x6 + k77 * x7 + k78 * x8
            )  # fmt: skip
        return
    for p in range(n):
        x0, x1, x2, x3, x4 = s0[p], s1[p], s2[p], s3[p], s4[p]
        x5, x6, x7, x8 = s5[p], s6[p], s7[p], s8[p]
        a0[p] += (
            k00 * x0 + k01 * x1 + k02 * x2 + k03 * x3 + k04 * x4
            + k05 * x5 + k06 * x6 + k07 * x7 + k08 * x8
        )  # fmt: skip
        a1[p] += (
            k10 * x0 + k11 * x1 + k12 * x2 + k13 * x3 + k14 * x4
            + k15 * x5 + k16 * x6 + k17 * x7 + k18 * x8
        )  # fmt: skip
        a2[p] += (
            k20 * x0 + k21 * x1 + k22 * x2 + k23 * x3 + k24 * x4
            + k25 * x5 + k26 * x6 + k27 * x7 + k28 * x8
        )  # fmt: skip
        a3[p] += (
            k30 * x0 + k31 * x1 + k32 * x2 + k33 * x3 + k34 * x4
            + k35 * x5 + k36 * x6 + k37 * x7 + k38 * x8
        )  # fmt: skip
        a4[p] += (
            k40 * x0 + k41 * x1 + k42 * x2 + k43 * x3 + k44 * x4
            + k45 * x5 + k46 * x6 + k47 * x7 + k48 * x8
        )  # fmt: skip
        a5[p] += (
            k50 * x0 + k51 * x1 + k52 * x2 + k53 * x3 + k54 * x4
            + k55 * x5 + k56 * x6 + k57 * x7 + k58 * x8
        )  # fmt: skip
        a6[p] += (
            k60 * x0 + k61 * x1 + k62 * x2 + k63 * x3 + k64 * x4
            + k65 * x5 + k66 * x6 + k67 * x7 + k68 * x8
        )  # fmt: skip
        a7[p] += (
            k70 * x0 + k71 * x1 + k72 * x2 + k73 * x3 + k74 * x4
            + k75 * x5 + k76 * x6 + k77 * x7 + k78 * x8
        )  # fmt: skip


@kernel(_PARALLEL_MIN)  # by flops; conv.py runs the serial variant on its own threads
def plane_conv2d(
    x: Array,
    w: Array,
    bias: Array,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    groups: int,
    tasks: int,
    y: Array,
) -> None:
    """Stride-1 3x3 convolution as whole output planes, for one input channel per group
    and a multiple of PLANE_BLOCK outputs per group (``conv.plane_fits`` says when): what
    ``direct_conv2d`` computes, without its padded copies of the output (at one channel,
    writing the outputs is most of the work):
    ``y[n, o, oh, ow] = bias[o] + sum_{c, i, j} w[o, c, i, j] x[n, g + c, ih, iw]`` with
    ih = oh - ph + i dh, iw = ow - pw + j dw (g: the first input channel of o's group;
    0 outside x).

    For each image, channel c and kernel column j, ``cols[c, j]`` holds the input shifted
    by that column's offset, rows OW wide, with the padding as zeros:
    ``cols[c, j, r OW + q] = x[n, c, r - ph, q - pw + j dw]`` for r < OH + 2 dH.
    Tap (i, j) of output position p = oh OW + ow then reads ``cols[c, j, i dH OW + p]``,
    so each output plane is a flat run of ``y[p] += w * cols[off + p]`` per tap (long
    vectorised loops, written straight into y). The images are split into ``tasks``
    contiguous ranges (the parallel loop's iterations), each allocating and zeroing its
    ``cols`` once: its images overwrite the same entries, the padding stays zero.
    """
    n_batch, n_chan = x.shape[0], x.shape[1]
    n_out, c_g = w.shape[0], w.shape[1]
    oh_n, ow_n = y.shape[2], y.shape[3]
    rows = oh_n + 2 * dh
    y3 = y.reshape(n_batch, n_out, oh_n * ow_n)
    w9 = w.reshape(n_out, c_g, 9)
    for task in prange(tasks):
        cols = np.zeros((n_chan, 3, rows * ow_n), dtype=x.dtype)
        for n in range(task * n_batch // tasks, (task + 1) * n_batch // tasks):
            _plane_image(x, w9, bias, ph, pw, dh, dw, groups, ow_n, cols, y3, n)


@reassociating
def _plane_image(
    x: Array,
    w9: Array,
    bias: Array,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    groups: int,
    ow_n: int,
    cols: Array,
    y3: Array,
    n: int,
) -> None:
    """Image ``n`` of :func:`plane_conv2d`, with ``w9`` = w as (O, C/groups, 9) and
    ``y3`` = y as (N, O, OH OW).
    """
    n_chan, h, wd = x.shape[1], x.shape[2], x.shape[3]
    rows = cols.shape[2] // ow_n
    n_out, c_g = w9.shape[0], w9.shape[1]
    length = y3.shape[2]
    o_g = n_out // groups
    block = PLANE_BLOCK
    for c in range(n_chan):
        for j in range(3):
            dj = j * dw - pw  # q reads column q + dj: inside x for q_lo <= q < q_hi
            q_lo, q_hi = max(0, -dj), min(ow_n, wd - dj)
            if q_lo >= q_hi:
                continue
            for r in range(max(0, ph), min(rows, ph + h)):
                dst = cols[c, j, r * ow_n + q_lo : r * ow_n + q_hi]
                src = x[n, c, r - ph, q_lo + dj : q_hi + dj]
                for q in range(q_hi - q_lo):
                    dst[q] = src[q]
    for g in range(groups):
        first = g * c_g
        for o0 in range(g * o_g, (g + 1) * o_g, block):
            v = bias[o0 : o0 + block]
            for c in range(c_g):
                k = w9[o0 : o0 + block, c]
                a = y3[n, o0 : o0 + block]
                _taps3x3(a, cols[first + c], k, v, dh * ow_n, length, c == 0)


DIRECT_BLOCK = 4
"""Output channels the direct convolution computes together (its register tile is 4
outputs x 24 pixels: 12 eight-lane accumulators, the 16 AVX2 registers' limit with the 3
input vectors and a broadcast weight). Each loaded input vector feeds 4 multiply-adds and
each broadcast weight 3, so the loop is bound by its multiply-adds, not its loads."""

DIRECT_PIXELS = 3 * LANES


@reassociating
def _tile(
    xp: Array,
    wk: Array,
    w0: int,
    x0: int,
    c_g: int,
    plane: int,
    dy: int,
    dx: int,
    yv: Array,
    y0: int,
    ln: int,
) -> None:
    """yv[y0 + u ln + p] = sum_{c < c_g, i, j < 3} wk[w0 + 4 (9 c + 3 i + j) + u]
    xp[x0 + c plane + i dy + j dx + p] for u < 4, p < 24: one register tile of
    :func:`direct_conv2d`, its 12 vectors accumulated over every channel and tap.
    """
    a00, a01, a02 = vzero(xp), vzero(xp), vzero(xp)
    a10, a11, a12 = vzero(xp), vzero(xp), vzero(xp)
    a20, a21, a22 = vzero(xp), vzero(xp), vzero(xp)
    a30, a31, a32 = vzero(xp), vzero(xp), vzero(xp)
    for c in range(c_g):
        for i in range(3):
            row = x0 + c * plane + i * dy
            for j in range(3):
                at = row + j * dx
                s0, s1, s2 = vload(xp, at), vload(xp, at + LANES), vload(xp, at + 2 * LANES)
                kb = np.uint64(w0 + 4 * (9 * c + 3 * i + j))  # unsigned: no wraparound test
                k = vsplat(wk[kb])
                a00, a01, a02 = vfma(k, s0, a00), vfma(k, s1, a01), vfma(k, s2, a02)
                k = vsplat(wk[kb + np.uint64(1)])
                a10, a11, a12 = vfma(k, s0, a10), vfma(k, s1, a11), vfma(k, s2, a12)
                k = vsplat(wk[kb + np.uint64(2)])
                a20, a21, a22 = vfma(k, s0, a20), vfma(k, s1, a21), vfma(k, s2, a22)
                k = vsplat(wk[kb + np.uint64(3)])
                a30, a31, a32 = vfma(k, s0, a30), vfma(k, s1, a31), vfma(k, s2, a32)
    at = y0
    vstore(yv, at, a00), vstore(yv, at + LANES, a01), vstore(yv, at + 2 * LANES, a02)
    at += ln
    vstore(yv, at, a10), vstore(yv, at + LANES, a11), vstore(yv, at + 2 * LANES, a12)
    at += ln
    vstore(yv, at, a20), vstore(yv, at + LANES, a21), vstore(yv, at + 2 * LANES, a22)
    at += ln
    vstore(yv, at, a30), vstore(yv, at + LANES, a31), vstore(yv, at + 2 * LANES, a32)


@kernel(_PARALLEL_MIN)  # by flops; conv.py runs the serial variant on its own threads
def direct_conv2d(
    x: Array,
    w: Array,
    bias: Array,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    groups: int,
    tasks: int,
    y: Array,
) -> None:
    """Stride-1 3x3 convolution without im2col or GEMM, for a multiple of DIRECT_BLOCK
    outputs per group (``conv.direct_fits`` says when):
    ``y[n, o, oh, ow] = bias[o] + sum_{c, i, j} w[o, c, i, j] x[n, g + c, ih, iw]`` with
    ih = oh - ph + i dh, iw = ow - pw + j dw (g: the first input channel of o's group;
    0 outside x).

    Each image is copied into zero-padded planes ``xp[c]`` of rows WP = OW + 2 dW wide, so
    that output q = oh WP + ow reads tap (i, j) at ``xp[c, q + i dH WP + j dW]``: every
    tap is a shift of one flat index. Tiles of 4 outputs x 24 consecutive q (:func:`_tile`)
    accumulate in registers over all channels and taps into ``yv``, whose rows carry
    2 dW columns of padding garbage; the copy into y drops them and adds the bias. The
    weights are packed 4 outputs at a time, ``wk[o // 4, c, i, j, o % 4]``. The images
    are split into ``tasks`` contiguous ranges (the parallel loop's iterations), each with
    its own ``xp``, zeroed once: its images overwrite the same entries, the padding stays
    zero.
    """
    n_batch, n_chan = x.shape[0], x.shape[1]
    n_out, c_g = w.shape[0], w.shape[1]
    oh_n, ow_n = y.shape[2], y.shape[3]
    wp = ow_n + 2 * dw
    ln = -(-(oh_n * wp) // DIRECT_PIXELS) * DIRECT_PIXELS  # q < ln, whole tiles
    plane = ln + 2 * dh * wp + 2 * dw  # the last tile's farthest tap stays inside
    wk = np.empty(n_out * c_g * 9, dtype=x.dtype)
    for o in range(n_out):
        for c in range(c_g):
            for t in range(9):
                wk[((o // 4 * c_g + c) * 9 + t) * 4 + o % 4] = w[o, c, t // 3, t % 3]
    for task in prange(tasks):
        xp = np.zeros(n_chan * plane, dtype=x.dtype)
        yv = np.empty(n_out * ln, dtype=x.dtype)
        for n in range(task * n_batch // tasks, (task + 1) * n_batch // tasks):
            _direct_image(x, wk, bias, ph, pw, dh, dw, groups, xp, yv, y, n, wp, plane, ln)


@reassociating
def _pad_planes(
    x: Array, n: int, ph: int, pw: int, rows: int, wp: int, plane: int, xp: Array
) -> None:
    """xp[c plane + (ih + ph) wp + iw + pw] = x[n, c, ih, iw] for the ``rows`` padded rows
    and ``wp`` padded columns that the taps read (the rest of ``xp`` is left as it is).
    """
    n_chan, h, wd = x.shape[1], x.shape[2], x.shape[3]
    c_lo, c_hi = max(0, -pw), min(wd, wp - pw)  # x columns that land inside a row
    for c in range(n_chan):
        for ih in range(max(0, -ph), min(h, rows - ph)):
            at = c * plane + (ih + ph) * wp + pw
            dst = xp[at + c_lo : at + c_hi]
            src = x[n, c, ih, c_lo:c_hi]
            for q in range(c_hi - c_lo):
                dst[q] = src[q]


@reassociating
def _direct_image(
    x: Array,
    wk: Array,
    bias: Array,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    groups: int,
    xp: Array,
    yv: Array,
    y: Array,
    n: int,
    wp: int,
    plane: int,
    ln: int,
) -> None:
    """Image ``n`` of :func:`direct_conv2d`."""
    n_out, oh_n, ow_n = y.shape[1], y.shape[2], y.shape[3]
    _pad_planes(x, n, ph, pw, oh_n + 2 * dh, wp, plane, xp)
    c_g = wk.size // (9 * n_out)
    o_g = n_out // groups
    for g in range(groups):
        for b in range(0, ln, DIRECT_PIXELS):
            for o0 in range(g * o_g, (g + 1) * o_g, DIRECT_BLOCK):
                w0 = o0 * c_g * 9
                _tile(xp, wk, w0, g * c_g * plane + b, c_g, plane, dh * wp, dw, yv, o0 * ln + b, ln)
    for o in range(n_out):
        v = bias[o]
        for oh in range(oh_n):
            dst = y[n, o, oh]
            src = yv[o * ln + oh * wp : o * ln + oh * wp + ow_n]
            for q in range(ow_n):
                dst[q] = src[q] + v


@kernel(_PARALLEL_MIN)
def direct_weight_grad(
    x: Array,
    g: Array,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    groups: int,
    tasks: int,
    out: Array,
) -> None:
    """dW of a stride-1 3x3 convolution (``direct_conv2d``'s weights) for the output
    gradient ``g`` (N, O, OH, OW): ``out[task, o, c, 3 i + j]`` = the sum over the task's
    images and positions of ``g[n, o, oh, ow] x[n, g + c, ih, iw]`` (ih, iw as in
    ``direct_conv2d``).

    The same padded planes as the forward: with ``gp[o, q]`` = g at q = oh WP + ow (zero
    in the padding columns), tap (i, j) of (o, c) is the dot product of ``gp[o]`` with
    ``xp[c]`` shifted by i dH WP + j dW. :func:`_weight_tile` runs 4 outputs x 3 kernel
    columns of one channel and kernel row along q, 12 vector accumulators, and adds their
    lane sums into ``out``. The images are split into ``tasks`` ranges as in the forward.
    """
    n_batch, n_chan = x.shape[0], x.shape[1]
    n_out, oh_n, ow_n = g.shape[1], g.shape[2], g.shape[3]
    c_g, o_g = n_chan // groups, n_out // groups
    wp = ow_n + 2 * dw
    ln = -(-(oh_n * wp) // DIRECT_PIXELS) * DIRECT_PIXELS
    plane = ln + 2 * dh * wp + 2 * dw
    for task in prange(tasks):
        xp = np.zeros(n_chan * plane, dtype=x.dtype)
        gp = np.zeros(n_out * ln, dtype=x.dtype)
        acc = out[task]
        acc[...] = 0
        for n in range(task * n_batch // tasks, (task + 1) * n_batch // tasks):
            _pad_planes(x, n, ph, pw, oh_n + 2 * dh, wp, plane, xp)
            _pad_planes(g, n, 0, 0, oh_n, wp, ln, gp)
            for gr in range(groups):
                for o0 in range(gr * o_g, (gr + 1) * o_g, DIRECT_BLOCK):
                    for c in range(c_g):
                        for i in range(3):
                            x0 = (gr * c_g + c) * plane + i * dh * wp
                            _weight_tile(gp, xp, o0 * ln, x0, ln, dw, acc, o0, c, 3 * i)


@reassociating
def _weight_tile(
    gp: Array,
    xp: Array,
    g0: int,
    x0: int,
    ln: int,
    dx: int,
    acc: Array,
    o0: int,
    c: int,
    t0: int,
) -> None:
    """acc[o0 + u, c, t0 + j] += sum_{q < ln} gp[g0 + u ln + q] xp[x0 + j dx + q] for
    u < 4, j < 3: one register tile of :func:`direct_weight_grad`.
    """
    a00, a01, a02 = vzero(xp), vzero(xp), vzero(xp)
    a10, a11, a12 = vzero(xp), vzero(xp), vzero(xp)
    a20, a21, a22 = vzero(xp), vzero(xp), vzero(xp)
    a30, a31, a32 = vzero(xp), vzero(xp), vzero(xp)
    for q in range(0, ln, LANES):
        at = x0 + q
        s0, s1, s2 = vload(xp, at), vload(xp, at + dx), vload(xp, at + 2 * dx)
        at = g0 + q
        k = vload(gp, at)
        a00, a01, a02 = vfma(k, s0, a00), vfma(k, s1, a01), vfma(k, s2, a02)
        k = vload(gp, at + ln)
        a10, a11, a12 = vfma(k, s0, a10), vfma(k, s1, a11), vfma(k, s2, a12)
        k = vload(gp, at + 2 * ln)
        a20, a21, a22 = vfma(k, s0, a20), vfma(k, s1, a21), vfma(k, s2, a22)
        k = vload(gp, at + 3 * ln)
        a30, a31, a32 = vfma(k, s0, a30), vfma(k, s1, a31), vfma(k, s2, a32)
    acc[o0, c, t0] += vsum(a00)
    acc[o0, c, t0 + 1] += vsum(a01)
    acc[o0, c, t0 + 2] += vsum(a02)
    acc[o0 + 1, c, t0] += vsum(a10)
    acc[o0 + 1, c, t0 + 1] += vsum(a11)
    acc[o0 + 1, c, t0 + 2] += vsum(a12)
    acc[o0 + 2, c, t0] += vsum(a20)
    acc[o0 + 2, c, t0 + 1] += vsum(a21)
    acc[o0 + 2, c, t0 + 2] += vsum(a22)
    acc[o0 + 3, c, t0] += vsum(a30)
    acc[o0 + 3, c, t0 + 1] += vsum(a31)
    acc[o0 + 3, c, t0 + 2] += vsum(a32)


@kernel(_PARALLEL_MIN)
def max_pool2d(
    x: Array,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    out: Array,
    index: Array,
) -> None:
    """out[p, oh, ow] = max of the window (NaN wins); index = its flat position in x[p]."""
    n_planes, h, w = x.shape
    oh_n, ow_n = out.shape[1], out.shape[2]
    fits = 2 * oh_n <= h and 2 * ow_n <= w
    if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1) and fits:
        # The common 2x2 pool with every window inside the plane: the loop below written
        # out, in the same order and by the same rule (a later entry wins only if greater,
        # or NaN over a number), with selects instead of branches; 8x8 planes, 32 channels,
        # batch 64: 0.32 ms against 1.3 ms.
        for p in prange(n_planes):
            for oh in range(oh_n):
                r0 = 2 * oh * w
                r1 = r0 + w
                for ow in range(ow_n):
                    q = 2 * ow
                    best, best_at = x[p, 2 * oh, q], r0 + q
                    v = x[p, 2 * oh, q + 1]
                    take = (v > best) | ((v != v) & (best == best))
                    best, best_at = (v, r0 + q + 1) if take else (best, best_at)
                    v = x[p, 2 * oh + 1, q]
                    take = (v > best) | ((v != v) & (best == best))
                    best, best_at = (v, r1 + q) if take else (best, best_at)
                    v = x[p, 2 * oh + 1, q + 1]
                    take = (v > best) | ((v != v) & (best == best))
                    best, best_at = (v, r1 + q + 1) if take else (best, best_at)
                    out[p, oh, ow] = best
                    index[p, oh, ow] = best_at
        return
    for p in prange(n_planes):
        for oh in range(oh_n):
            for ow in range(ow_n):
                best = -math.inf
                best_at = -1
                for i in range(kh):
                    ih = oh * sh - ph + i * dh
                    if ih < 0 or ih >= h:
                        continue
                    for j in range(kw):
                        iw = ow * sw - pw + j * dw
                        if iw < 0 or iw >= w:
                            continue
                        v = x[p, ih, iw]
                        if best_at < 0 or v > best or (math.isnan(v) and not math.isnan(best)):
                            best = v
                            best_at = ih * w + iw
                out[p, oh, ow] = best
                index[p, oh, ow] = best_at


@kernel(_PARALLEL_MIN)
def max_pool2d_backward(grad: Array, index: Array, dx: Array) -> None:
    """dx[p] = grad scattered to the positions of the maxima (repeats add up)."""
    n_planes, h, w = dx.shape
    oh_n, ow_n = grad.shape[1], grad.shape[2]
    zero = dx.dtype.type(0.0)
    for p in prange(n_planes):
        for ih in range(h):
            for iw in range(w):
                dx[p, ih, iw] = zero
        for oh in range(oh_n):
            for ow in range(ow_n):
                k = index[p, oh, ow]
                if k >= 0:
                    dx[p, k // w, k % w] += grad[p, oh, ow]


@kernel(_PARALLEL_MIN)
def avg_pool2d(
    x: Array,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    count_include_pad: bool,
    out: Array,
) -> None:
    """out = window sum / divisor (padding counted, clipped at the padded edge, or not)."""
    n_planes, h, w = x.shape
    oh_n, ow_n = out.shape[1], out.shape[2]
    for p in prange(n_planes):
        for oh in range(oh_n):
            h0 = oh * sh - ph
            h1 = min(h0 + kh, h + ph)
            pool_h = h1 - h0
            h0 = max(h0, 0)
            h1 = min(h1, h)
            for ow in range(ow_n):
                w0 = ow * sw - pw
                w1 = min(w0 + kw, w + pw)
                pool = pool_h * (w1 - w0)
                w0 = max(w0, 0)
                w1 = min(w1, w)
                acc = np.float64(0.0)
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[p, ih, iw]
                divisor = pool if count_include_pad else (h1 - h0) * (w1 - w0)
                out[p, oh, ow] = acc / divisor


@kernel(_PARALLEL_MIN)
def avg_pool2d_backward(
    grad: Array,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    count_include_pad: bool,
    dx: Array,
) -> None:
    """dx = each output's grad / divisor spread over its window."""
    n_planes, h, w = dx.shape
    oh_n, ow_n = grad.shape[1], grad.shape[2]
    zero = dx.dtype.type(0.0)
    for p in prange(n_planes):
        for ih in range(h):
            for iw in range(w):
                dx[p, ih, iw] = zero
        for oh in range(oh_n):
            h0 = oh * sh - ph
            h1 = min(h0 + kh, h + ph)
            pool_h = h1 - h0
            h0 = max(h0, 0)
            h1 = min(h1, h)
            for ow in range(ow_n):
                w0 = ow * sw - pw
                w1 = min(w0 + kw, w + pw)
                pool = pool_h * (w1 - w0)
                w0 = max(w0, 0)
                w1 = min(w1, w)
                divisor = pool if count_include_pad else (h1 - h0) * (w1 - w0)
                g = grad[p, oh, ow] / divisor
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        dx[p, ih, iw] += g


@kernel(_PARALLEL_MIN)
def adaptive_avg_pool2d(x: Array, out: Array) -> None:
    """out[p, oh, ow] = mean of x[p, floor(oh H/OH):ceil((oh+1) H/OH), (same for w)]."""
    n_planes, h, w = x.shape
    oh_n, ow_n = out.shape[1], out.shape[2]
    for p in prange(n_planes):
        for oh in range(oh_n):
            h0 = (oh * h) // oh_n
            h1 = ((oh + 1) * h + oh_n - 1) // oh_n
            for ow in range(ow_n):
                w0 = (ow * w) // ow_n
                w1 = ((ow + 1) * w + ow_n - 1) // ow_n
                acc = np.float64(0.0)
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[p, ih, iw]
                out[p, oh, ow] = acc / ((h1 - h0) * (w1 - w0))


@kernel(_PARALLEL_MIN)
def adaptive_avg_pool2d_backward(grad: Array, dx: Array) -> None:
    """dx = each output's grad / window size spread over its window."""
    n_planes, h, w = dx.shape
    oh_n, ow_n = grad.shape[1], grad.shape[2]
    zero = dx.dtype.type(0.0)
    for p in prange(n_planes):
        for ih in range(h):
            for iw in range(w):
                dx[p, ih, iw] = zero
        for oh in range(oh_n):
            h0 = (oh * h) // oh_n
            h1 = ((oh + 1) * h + oh_n - 1) // oh_n
            for ow in range(ow_n):
                w0 = (ow * w) // ow_n
                w1 = ((ow + 1) * w + ow_n - 1) // ow_n
                g = grad[p, oh, ow] / ((h1 - h0) * (w1 - w0))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        dx[p, ih, iw] += g
