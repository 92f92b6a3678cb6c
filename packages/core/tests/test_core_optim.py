"""Fused optimizer updates against PyTorch's documented update rules written out in NumPy."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from gradwise.core import ops, threads

Arr = np.ndarray[Any, Any]
SIZES = [1, 7, 1023, 65537, pytest.param(2**20 + 3, marks=pytest.mark.slow)]


def _tol(dtype: type) -> dict[str, float]:
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _close(actual: Arr, desired: Arr, dtype: type) -> None:
    tol = _tol(dtype)
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"], atol=tol["atol"])


def _ref_sgd(
    p: Arr,
    grads: list[Arr],
    lr: float,
    momentum: float,
    dampening: float,
    wd: float,
    nesterov: bool,
    maximize: bool,
) -> Arr:
    p = p.copy()
    buf: Arr | None = None
    for g in grads:
        d = -g if maximize else g
        if wd:
            d = d + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


SGD_OPTIONS = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=n, maximize=mx)
    for m, d, wd, n, mx in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [0.0, 0.01], [False, True], [False, True]
    )
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("opts", SGD_OPTIONS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_matches_pytorch_rule(
    opts: dict[str, Any], dtype: type, rng: np.random.Generator
) -> None:
    p0 = rng.standard_normal(37)
    grads = [rng.standard_normal(37) for _ in range(4)]
    p: Arr = p0.astype(dtype)
    buf = np.zeros_like(p)
    for i, g in enumerate(grads):
        ops.sgd_(p, g.astype(dtype), buf, lr=0.1, first_step=i == 0, **opts)
    _close(
        p,
        _ref_sgd(
            p0, grads, 0.1, **{k if k != "weight_decay" else "wd": v for k, v in opts.items()}
        ),
        dtype,
    )


def _ref_adam(
    p: Arr,
    grads: list[Arr],
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    wd: float,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> Arr:
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / np.sqrt(1 - b2**t) + eps
        p = p - lr / (1 - b1**t) * m / denom
    return p


@pytest.mark.parametrize(
    ("wd", "amsgrad", "maximize", "decoupled"),
    list(itertools.product([0.0, 0.1], [False, True], [False, True], [False, True])),
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_and_adamw_match_pytorch_rule(
    wd: float, amsgrad: bool, maximize: bool, decoupled: bool, dtype: type, rng: np.random.Generator
) -> None:
    p0 = rng.standard_normal(53)
    grads = [rng.standard_normal(53) for _ in range(5)]
    p: Arr = p0.astype(dtype)
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        ops.adam_(
            p,
            g.astype(dtype),
            m,
            v,
            vmax,
            step=t,
            lr=0.01,
            beta1=0.8,
            beta2=0.9,
            eps=1e-6,
            weight_decay=wd,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled,
        )
    _close(p, _ref_adam(p0, grads, 0.01, 0.8, 0.9, 1e-6, wd, amsgrad, maximize, decoupled), dtype)


def _ref_rmsprop(
    p: Arr,
    grads: list[Arr],
    lr: float,
    alpha: float,
    eps: float,
    wd: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> Arr:
    p = p.copy()
    sq = np.zeros_like(p)
    ga = np.zeros_like(p)
    buf = np.zeros_like(p)
    for g in grads:
        g = -g if maximize else g
        if wd:
            g = g + wd * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            ga = alpha * ga + (1 - alpha) * g
            avg = np.sqrt(sq - ga * ga) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


@pytest.mark.parametrize(
    ("wd", "momentum", "centered", "maximize"),
    list(itertools.product([0.0, 0.1], [0.0, 0.9], [False, True], [False, True])),
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_matches_pytorch_rule(
    wd: float,
    momentum: float,
    centered: bool,
    maximize: bool,
    dtype: type,
    rng: np.random.Generator,
) -> None:
    p0 = rng.standard_normal(41)
    grads = [rng.standard_normal(41) for _ in range(5)]
    p: Arr = p0.astype(dtype)
    sq, ga, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        ops.rmsprop_(
            p,
            g.astype(dtype),
            sq,
            ga,
            buf,
            lr=0.01,
            alpha=0.9,
            eps=1e-6,
            weight_decay=wd,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
    _close(p, _ref_rmsprop(p0, grads, 0.01, 0.9, 1e-6, wd, momentum, centered, maximize), dtype)


@pytest.mark.parametrize(
    ("lr_decay", "wd", "init", "maximize"),
    list(itertools.product([0.0, 0.1], [0.0, 0.1], [0.0, 0.5], [False, True])),
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad_matches_pytorch_rule(
    lr_decay: float, wd: float, init: float, maximize: bool, dtype: type, rng: np.random.Generator
) -> None:
    p0 = rng.standard_normal(29)
    grads = [rng.standard_normal(29) for _ in range(5)]
    p: Arr = p0.astype(dtype)
    s = np.full_like(p, init)
    for t, g in enumerate(grads, start=1):
        ops.adagrad_(
            p,
            g.astype(dtype),
            s,
            step=t,
            lr=0.1,
            lr_decay=lr_decay,
            weight_decay=wd,
            eps=1e-10,
            maximize=maximize,
        )
    ref = p0.copy()
    ss = np.full_like(ref, init)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if wd:
            g = g + wd * ref
        clr = 0.1 / (1 + (t - 1) * lr_decay)
        ss = ss + g * g
        ref = ref - clr * g / (np.sqrt(ss) + 1e-10)
    _close(p, ref, dtype)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_identical_across_threads_and_sizes(
    size: int, dtype: type, rng: np.random.Generator
) -> None:
    p0: Arr = rng.standard_normal(size).astype(dtype)
    g: Arr = rng.standard_normal(size).astype(dtype)
    results = []
    for n in (1, 2):
        p = p0.copy()
        m, v, vm = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        with threads(n):
            ops.adam_(p, g, m, v, vm, step=1, amsgrad=True, weight_decay=0.01)
            ops.sgd_(p, g, m, lr=0.1, momentum=0.9, nesterov=True)
        results.append(p)
    np.testing.assert_array_equal(results[0], results[1])
    assert np.isfinite(results[0]).all()


def test_optimizer_updates_propagate_nan() -> None:
    p = np.ones(4, dtype=np.float32)
    g = np.array([np.nan, 1.0, np.inf, 0.0], dtype=np.float32)
    ops.sgd_(p, g, lr=0.1)
    assert np.isnan(p[0])
    assert p[2] == -np.inf
    assert p[3] == 1.0


def test_optimizer_rejects_bad_state() -> None:
    p = np.zeros(3, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"adam_: exp_avg has shape \(2,\) but param has shape \(3,\)"
    ):
        ops.adam_(
            p, np.zeros(3, np.float32), np.zeros(2, np.float32), np.zeros(3, np.float32), step=1
        )
    with pytest.raises(TypeError, match="sgd_: grad has dtype float64 but param has dtype float32"):
        ops.sgd_(p, np.zeros(3), lr=0.1)
    with pytest.raises(ValueError, match="momentum_buffer is required"):
        ops.sgd_(p, np.zeros(3, np.float32), None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="param must be a writeable C-contiguous array"):
        ops.sgd_(np.zeros((3, 4), np.float32).T, np.zeros((4, 3), np.float32), lr=0.1)
    with pytest.raises(ValueError, match="step counts from 1"):
        ops.adam_(p, p.copy(), p.copy(), p.copy(), step=0)
