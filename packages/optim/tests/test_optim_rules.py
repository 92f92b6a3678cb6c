"""30-step trajectories of every optimizer and option combination, in float64, against
plain-NumPy transcriptions of the update pseudo-code in PyTorch's documentation.

The problem: a parameter ``p`` of shape (4,) on the quadratic ``0.5 p.A.p - b.p`` (its
gradient ``A p - b`` depends on the trajectory) and a parameter ``w`` of shape (2, 3)
fed a fixed sequence of gradients. As in PyTorch's implementation (and its SGD and Adam
pseudo-code), ``maximize`` negates the gradient before weight decay.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradwise.autograd import Tensor
from gradwise.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

Arr = np.ndarray[Any, Any]
GradFn = Callable[[int, list[Arr]], list[Arr]]

A = np.array(
    [[2.0, 0.3, 0.0, 0.1], [0.3, 1.5, 0.2, 0.0], [0.0, 0.2, 1.0, 0.4], [0.1, 0.0, 0.4, 3.0]]
)
B = np.array([1.0, -0.5, 0.25, 2.0])
P0 = np.array([0.5, -1.0, 1.5, -2.0])
W0 = np.array([[-1.0, -0.6, -0.2], [0.2, 0.6, 1.0]])
STEPS = 30


def w_grad(t: int) -> Arr:
    return np.sin(0.7 * t + 1.3 * np.arange(6.0)).reshape(2, 3)


def problem_grads(t: int, params: list[Arr]) -> list[Arr]:
    return [A @ params[0] - B, w_grad(t)]


def run_gradwise(cls: type[Optimizer], kw: dict[str, Any], dtype: type = np.float64) -> list[Arr]:
    p = Tensor(P0.astype(dtype), requires_grad=True)
    w = Tensor(W0.astype(dtype), requires_grad=True)
    opt = cls([p, w], **kw)
    traj: list[Arr] = []
    for t in range(1, STEPS + 1):
        gp, gw = problem_grads(t, [p.data.astype(np.float64), w.data])
        p.grad = Tensor(gp.astype(dtype))
        w.grad = Tensor(gw.astype(dtype))
        opt.step()
        assert p.data.dtype == dtype and w.data.dtype == dtype
        traj.append(np.concatenate([p.data.ravel(), w.data.ravel()]))
    return traj


def flat(params: list[Arr]) -> Arr:
    return np.concatenate([x.ravel() for x in params])


# ---- PyTorch's documented pseudo-code, transcribed ----------------------------------------


def ref_sgd(
    grad_fn: GradFn,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> list[Arr]:
    theta = [P0.copy(), W0.copy()]
    b: list[Arr] = [np.zeros(0), np.zeros(0)]
    traj = []
    for t in range(1, STEPS + 1):
        grads = grad_fn(t, theta)
        for i, g in enumerate(grads):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g + weight_decay * theta[i]
            if momentum != 0:
                b[i] = momentum * b[i] + (1 - dampening) * g if t > 1 else g
                g = g + momentum * b[i] if nesterov else b[i]
            theta[i] = theta[i] - lr * g
        traj.append(flat(theta))
    return traj


def ref_adam(
    grad_fn: GradFn,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled: bool = False,
) -> list[Arr]:
    b1, b2 = betas
    theta = [P0.copy(), W0.copy()]
    m = [np.zeros_like(x) for x in theta]
    v = [np.zeros_like(x) for x in theta]
    vmax = [np.zeros_like(x) for x in theta]
    traj = []
    for t in range(1, STEPS + 1):
        grads = grad_fn(t, theta)
        for i, g in enumerate(grads):
            g = -g if maximize else g
            if decoupled:
                theta[i] = theta[i] - lr * weight_decay * theta[i]
            elif weight_decay != 0:
                g = g + weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat = m[i] / (1 - b1**t)
            if amsgrad:
                vmax[i] = np.maximum(vmax[i], v[i])
                v_hat = vmax[i] / (1 - b2**t)
            else:
                v_hat = v[i] / (1 - b2**t)
            theta[i] = theta[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        traj.append(flat(theta))
    return traj


def ref_rmsprop(
    grad_fn: GradFn,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> list[Arr]:
    theta = [P0.copy(), W0.copy()]
    v = [np.zeros_like(x) for x in theta]
    buf = [np.zeros_like(x) for x in theta]
    g_ave = [np.zeros_like(x) for x in theta]
    traj = []
    for t in range(1, STEPS + 1):
        grads = grad_fn(t, theta)
        for i, g in enumerate(grads):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g + weight_decay * theta[i]
            v[i] = alpha * v[i] + (1 - alpha) * g**2
            v_tilde = v[i]
            if centered:
                g_ave[i] = g_ave[i] * alpha + (1 - alpha) * g
                v_tilde = v_tilde - g_ave[i] ** 2
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / (np.sqrt(v_tilde) + eps)
                theta[i] = theta[i] - lr * buf[i]
            else:
                theta[i] = theta[i] - lr * g / (np.sqrt(v_tilde) + eps)
        traj.append(flat(theta))
    return traj


def ref_adagrad(
    grad_fn: GradFn,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> list[Arr]:
    theta = [P0.copy(), W0.copy()]
    state_sum = [np.full_like(x, initial_accumulator_value) for x in theta]
    traj = []
    for t in range(1, STEPS + 1):
        grads = grad_fn(t, theta)
        for i, g in enumerate(grads):
            g = -g if maximize else g
            gamma = lr / (1 + (t - 1) * lr_decay)
            if weight_decay != 0:
                g = g + weight_decay * theta[i]
            state_sum[i] = state_sum[i] + g**2
            theta[i] = theta[i] - gamma * g / (np.sqrt(state_sum[i]) + eps)
        traj.append(flat(theta))
    return traj


def assert_trajectories(actual: list[Arr], desired: list[Arr]) -> None:
    assert len(actual) == len(desired) == STEPS
    for t, (a, d) in enumerate(zip(actual, desired, strict=True), start=1):
        scale = max(1.0, float(np.abs(d).max()))
        np.testing.assert_allclose(a, d, rtol=1e-10, atol=1e-12 * scale, err_msg=f"step {t}")


# ---- option grids --------------------------------------------------------------------------

SGD_CASES = [
    {"momentum": m, "dampening": d, "weight_decay": wd, "nesterov": n, "maximize": mx}
    for m, d, wd, n, mx in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [0.0, 0.05], [False, True], [False, True]
    )
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("opts", SGD_CASES, ids=str)
def test_sgd_trajectory_matches_documented_rule(opts: dict[str, Any]) -> None:
    assert_trajectories(
        run_gradwise(SGD, {"lr": 0.05, **opts}), ref_sgd(problem_grads, 0.05, **opts)
    )


ADAM_CASES = list(itertools.product([0.0, 0.1], [False, True], [False, True]))


@pytest.mark.parametrize(("wd", "amsgrad", "maximize"), ADAM_CASES)
def test_adam_trajectory_matches_documented_rule(wd: float, amsgrad: bool, maximize: bool) -> None:
    kw: dict[str, Any] = {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": wd}
    kw |= {"amsgrad": amsgrad, "maximize": maximize}
    assert_trajectories(run_gradwise(Adam, kw), ref_adam(problem_grads, **kw))


@pytest.mark.parametrize(("wd", "amsgrad", "maximize"), ADAM_CASES)
def test_adamw_trajectory_matches_documented_rule(wd: float, amsgrad: bool, maximize: bool) -> None:
    kw: dict[str, Any] = {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": wd}
    kw |= {"amsgrad": amsgrad, "maximize": maximize}
    assert_trajectories(run_gradwise(AdamW, kw), ref_adam(problem_grads, **kw, decoupled=True))


def test_adamw_default_weight_decay_is_decoupled() -> None:
    assert_trajectories(
        run_gradwise(AdamW, {"lr": 0.05}),
        ref_adam(problem_grads, lr=0.05, weight_decay=1e-2, decoupled=True),
    )


RMSPROP_CASES = list(itertools.product([False, True], [0.0, 0.5], [0.0, 0.05], [False, True]))


@pytest.mark.parametrize(("centered", "momentum", "wd", "maximize"), RMSPROP_CASES)
def test_rmsprop_trajectory_matches_documented_rule(
    centered: bool, momentum: float, wd: float, maximize: bool
) -> None:
    kw: dict[str, Any] = {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": wd}
    kw |= {"momentum": momentum, "centered": centered, "maximize": maximize}
    assert_trajectories(run_gradwise(RMSprop, kw), ref_rmsprop(problem_grads, **kw))


ADAGRAD_CASES = list(itertools.product([0.0, 0.05], [0.0, 0.5], [0.0, 0.05], [False, True]))


@pytest.mark.parametrize(("lr_decay", "init", "wd", "maximize"), ADAGRAD_CASES)
def test_adagrad_trajectory_matches_documented_rule(
    lr_decay: float, init: float, wd: float, maximize: bool
) -> None:
    kw: dict[str, Any] = {"lr": 0.1, "lr_decay": lr_decay, "weight_decay": wd}
    kw |= {"initial_accumulator_value": init, "maximize": maximize}
    assert_trajectories(run_gradwise(Adagrad, kw), ref_adagrad(problem_grads, **kw))


@pytest.mark.parametrize(
    ("cls", "ref"),
    [(SGD, ref_sgd), (Adam, ref_adam), (RMSprop, ref_rmsprop), (Adagrad, ref_adagrad)],
    ids=["SGD", "Adam", "RMSprop", "Adagrad"],
)
def test_default_options_match_documented_rule(
    cls: type[Optimizer], ref: Callable[..., Any]
) -> None:
    lr = 0.05
    assert_trajectories(run_gradwise(cls, {"lr": lr}), ref(problem_grads, lr))


def test_trajectory_through_autograd_backward() -> None:
    # the same quadratic, with gradients from backward() instead of assigned ones
    p = Tensor(P0.copy(), requires_grad=True)
    a, b = Tensor(A), Tensor(B)
    opt = Adam([p], lr=0.05, amsgrad=True)
    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = 0.5 * (p * (a @ p)).sum() - (b * p).sum()
        loss.backward()
        opt.step()
        traj.append(p.data.copy())

    def only_p(t: int, params: list[Arr]) -> list[Arr]:
        return [A @ params[0] - B, np.zeros_like(params[1])]

    ref = ref_adam(only_p, lr=0.05, amsgrad=True)
    for t in range(STEPS):
        np.testing.assert_allclose(traj[t], ref[t][:4], rtol=1e-10, atol=1e-12)
