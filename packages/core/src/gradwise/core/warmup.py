"""Compile (or load from the disk cache) every kernel, and report how long each took."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise.core import _jit, conv, ops
from gradwise.core._jit import CompileRecord
from gradwise.core._kernels import conv as _conv_kernels
from gradwise.core.dtypes import FLOAT_DTYPES

_LOCK = threading.Lock()


@dataclass
class WarmupReport:
    """Per-kernel first-call times.

    Each record's ``source`` is "compiled" (cold), "cache" (loaded from disk), "warm"
    (already loaded in this process) or "python" (``NUMBA_DISABLE_JIT=1``).
    """

    records: list[CompileRecord] = field(default_factory=list)
    seconds: float = 0.0
    cache_enabled: bool = False

    def compiled_seconds(self) -> float:
        """Total time spent compiling (cold kernels)."""
        return float(np.sum([r.seconds for r in self.records if r.source == "compiled"]))

    def cached_seconds(self) -> float:
        """Total time spent loading kernels from the disk cache."""
        return float(np.sum([r.seconds for r in self.records if r.source == "cache"]))

    def by_kernel(self) -> dict[str, dict[str, float]]:
        """Kernel name -> seconds by source, summed over variants and dtypes."""
        result: dict[str, dict[str, float]] = {}
        for r in self.records:
            slot = result.setdefault(
                r.kernel, {"compiled": 0.0, "cache": 0.0, "warm": 0.0, "python": 0.0}
            )
            slot[r.source] += r.seconds
        return result

    def table(self) -> str:
        """A plain-text table, one row per kernel."""
        lines = [f"{'kernel':34} {'compiled s':>11} {'cached s':>9}"]
        for name, slot in sorted(self.by_kernel().items()):
            lines.append(f"{name:34} {slot['compiled']:11.3f} {slot['cache']:9.3f}")
        lines.append(
            f"{'total':34} {self.compiled_seconds():11.3f} {self.cached_seconds():9.3f}"
            f"   (wall {self.seconds:.2f} s, disk cache {'on' if self.cache_enabled else 'off'})"
        )
        return "\n".join(lines)


def _exercise(dtype: np.dtype[Any]) -> None:
    """Call every ops function once on tiny inputs of ``dtype``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype(dtype)
    g = np.ones_like(x)
    for fwd, bwd in (
        (ops.relu, ops.relu_backward),
        (ops.leaky_relu, ops.leaky_relu_backward),
        (ops.silu, ops.silu_backward),
        (ops.softplus, ops.softplus_backward),
    ):
        fwd(x)
        bwd(x, g)
    big = rng.standard_normal((8, 5000)).astype(dtype)  # past the NumPy-only small paths
    ops.relu(big)
    ops.sum(big)
    ops.sum(big, 1)
    ops.sigmoid_backward(ops.sigmoid(x), g)
    ops.tanh_backward(ops.tanh(x), g)
    ops.erf_backward(x, ops.erf(x))
    for approximate in ("none", "tanh"):
        ops.gelu_backward(x, g, approximate)
        ops.gelu(x, approximate)
    for axis in (None, 0, 1):
        ops.sum(x, axis)
        ops.mean(x, axis)
        y = ops.max(x, axis)
        ops.extreme_backward(x, y, np.ones_like(y), axis)
        ops.min(x, axis)
        v = ops.var(x, axis)
        ops.var_backward(x, np.ones_like(v), axis)
    y = ops.softmax(x)
    ops.softmax_backward(y, g)
    y = ops.log_softmax(x)
    ops.log_softmax_backward(y, g)
    ops.logsumexp(x)
    target = np.array([0, 4, 2], dtype=np.int64)
    losses, lse, _ = ops.softmax_cross_entropy(x, target, label_smoothing=0.1)
    ops.softmax_cross_entropy_backward(x, target, lse, np.ones_like(losses))
    p = x.copy()
    s1, s2, s3 = (np.zeros_like(x) for _ in range(3))
    ops.sgd_(p, g, s1, lr=0.1, momentum=0.9, first_step=True)
    ops.adam_(p, g, s1, s2, s3, step=1, amsgrad=True)
    ops.rmsprop_(p, g, s1, s2, s3, centered=True, momentum=0.9)
    ops.adagrad_(p, g, s1, step=1)
    _exercise_conv(rng, dtype)


def _exercise_conv(rng: np.random.Generator, dtype: np.dtype[Any]) -> None:
    """conv2d forward and backward (direct, and im2col + GEMM with col2im, bias and NCHW
    copies) and the pooling kernels, forward and backward, on a tiny image.
    """
    img = rng.standard_normal((1, 2, 4, 4)).astype(dtype)
    one, two, zero = (1, 1), (2, 2), (0, 0)
    cols = conv.im2col(img, two, one, zero, one, (3, 3))
    conv.col2im(cols, img.shape, one, zero, one)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    bias = np.zeros(3, dtype)
    y = conv.conv2d(img, w, bias, one, one, one, 1, (4, 4))  # im2col + GEMM
    w8 = rng.standard_normal((8, 2, 3, 3)).astype(dtype)
    conv.conv2d(img, w8, np.zeros(8, dtype), one, one, one, 1, (4, 4))  # the direct kernel
    conv.conv2d(img[:, :1], w8[:, :1], np.zeros(8, dtype), one, one, one, 1, (4, 4))  # planes
    conv.conv2d_backward(np.ones_like(y), img, w, img.shape, w.shape, one, one, one, 1)
    img4 = rng.standard_normal((1, 4, 4, 4)).astype(dtype)  # the direct dx and dW kernels
    w4 = rng.standard_normal((4, 4, 3, 3)).astype(dtype)
    conv.conv2d_backward(np.ones_like(img4), img4, w4, img4.shape, w4.shape, one, one, one, 1)
    dw4 = np.empty((1, 4, 4, 9), dtype)  # (dW takes it from 400 pixels per image on)
    _conv_kernels.direct_weight_grad.pick(0)(img4, np.ones_like(img4), *one, *one, 1, 1, dw4)
    # the bias add of the threaded path (which small convolutions do not take)
    _conv_kernels.add_bias.pick(y.size)(y.reshape(1, 3, 16), bias)
    y, index = conv.max_pool2d(img, two, two, zero, one, two)
    conv.max_pool2d_backward(np.ones_like(y), index, img.shape)
    y = conv.avg_pool2d(img, two, two, zero, two)
    conv.avg_pool2d_backward(np.ones_like(y), img.shape, two, two, zero)
    y = conv.adaptive_avg_pool2d(img, two)
    conv.adaptive_avg_pool2d_backward(np.ones_like(y), img.shape)


def warmup(
    dtypes: Iterable[Any] = FLOAT_DTYPES, variants: Iterable[str] = ("serial", "parallel")
) -> WarmupReport:
    """Compile every kernel for each dtype and variant; returns per-kernel first-call times.

    With the disk cache on, a second process loads what the first compiled ("cache" rows).
    """
    report = WarmupReport(cache_enabled=_jit.cache_enabled())
    start = time.perf_counter()
    with _LOCK:
        rec = _jit._RECORDING
        rec.records = []
        rec.seen = set()
        for variant in variants:
            with _jit.forced_variant(variant, record=True):
                for dtype in dtypes:
                    _exercise(np.dtype(dtype))
        report.records = list(rec.records)
        report.cache_enabled = _jit.cache_enabled()
    report.seconds = time.perf_counter() - start
    return report
