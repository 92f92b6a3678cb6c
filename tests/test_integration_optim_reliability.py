"""Reliability of gradwise.optim (issue 7): bad input for every optimizer and scheduler,
``optimizer.step()`` between forward and backward caught by version counters, float32 kept
with NumPy-scalar and 0-d float64 hyperparameters, NaN/Inf gradients, zero-size params.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradwise import nn, optim
from gradwise.autograd import Tensor
from gradwise.optim import lr_scheduler as ls


def _p(*shape: int, dtype: Any = np.float32) -> nn.Parameter:
    return nn.Parameter(Tensor(np.ones(shape, dtype=dtype)))


def _any(value: object) -> Any:
    """A deliberately wrong argument, hidden from the type checker."""
    return value


def _sgd() -> optim.SGD:
    return optim.SGD([_p(3)], lr=0.1)


BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("SGD lr<0", lambda: optim.SGD([_p(3)], lr=-1), ValueError, "SGD.*learning rate"),
    ("SGD lr str", lambda: optim.SGD([_p(3)], lr=_any("a")), TypeError, "SGD"),
    ("SGD lr None", lambda: optim.SGD([_p(3)], lr=_any(None)), TypeError, "SGD"),
    ("SGD momentum<0", lambda: optim.SGD([_p(3)], lr=0.1, momentum=-1), ValueError, "SGD"),
    (
        "SGD nesterov",
        lambda: optim.SGD([_p(3)], lr=0.1, nesterov=True),
        ValueError,
        "SGD.*Nesterov",
    ),
    ("Adam beta1", lambda: optim.Adam([_p(3)], betas=(1.0, 0.9)), ValueError, "Adam.*beta"),
    ("Adam beta2", lambda: optim.Adam([_p(3)], betas=(0.9, -0.1)), ValueError, "Adam.*beta"),
    ("Adam eps", lambda: optim.Adam([_p(3)], eps=-1), ValueError, "Adam.*epsilon"),
    ("Adam wd", lambda: optim.Adam([_p(3)], weight_decay=-1), ValueError, "Adam"),
    ("AdamW lr", lambda: optim.AdamW([_p(3)], lr=-1), ValueError, "AdamW"),
    ("RMSprop alpha", lambda: optim.RMSprop([_p(3)], alpha=-1), ValueError, "RMSprop.*alpha"),
    ("Adagrad lr_decay", lambda: optim.Adagrad([_p(3)], lr_decay=-1), ValueError, "Adagrad"),
    ("empty", lambda: optim.Adam([]), ValueError, "Adam.*empty"),
    ("one tensor", lambda: optim.Adam(_any(_p(3))), TypeError, "Adam.*iterable"),
    ("None", lambda: optim.Adam(_any(None)), TypeError, "Adam.*NoneType"),
    ("int", lambda: optim.SGD(_any(3), lr=0.1), TypeError, "SGD.*int"),
    ("str params", lambda: optim.Adam(_any(["a"])), TypeError, "Adam.*str"),
    (
        "dup param",
        lambda: (lambda p: optim.Adam([p, p]))(_p(3)),
        ValueError,
        "Adam.*more than once",
    ),
    ("int param", lambda: optim.Adam([Tensor(np.ones(3, np.int64))]), TypeError, "Adam.*int64"),
    ("non-leaf", lambda: optim.Adam([_p(3) * 2]), ValueError, "Adam.*non-leaf"),
    (
        "load_state_dict",
        lambda: _sgd().load_state_dict({"foo": 1}),
        ValueError,
        "SGD.load_state_dict",
    ),
    (
        "load_state_dict None",
        lambda: _sgd().load_state_dict(_any(None)),
        ValueError,
        "SGD.load_state_dict",
    ),
    ("StepLR 0", lambda: ls.StepLR(_sgd(), step_size=0), ValueError, "StepLR"),
    ("StepLR str", lambda: ls.StepLR(_sgd(), step_size=_any("a")), ValueError, "StepLR"),
    ("Exponential str", lambda: ls.ExponentialLR(_sgd(), _any("a")), TypeError, "ExponentialLR"),
    ("Cosine T_max 0", lambda: ls.CosineAnnealingLR(_sgd(), 0), ValueError, "CosineAnnealingLR"),
    ("LinearLR start 0", lambda: ls.LinearLR(_sgd(), start_factor=0), ValueError, "LinearLR"),
    ("OneCycle no steps", lambda: ls.OneCycleLR(_sgd(), max_lr=0.1), ValueError, "OneCycleLR"),
    (
        "OneCycle 0 steps",
        lambda: ls.OneCycleLR(_sgd(), max_lr=0.1, total_steps=0),
        ValueError,
        "OneCycleLR",
    ),
    ("scheduler of str", lambda: ls.StepLR(_any("a"), 1), TypeError, "StepLR"),
]


@pytest.mark.parametrize(("case", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_table(
    case: str, call: Callable[[], object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_onecycle_past_total_steps_raises() -> None:
    opt = _sgd()
    sched = ls.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    opt.step()
    sched.step()
    opt.step()
    sched.step()
    opt.step()
    with pytest.raises(ValueError, match="OneCycleLR"):
        sched.step()


OPTIMIZERS: list[tuple[str, Callable[[list[nn.Parameter]], optim.Optimizer]]] = [
    (
        "SGD",
        lambda ps: optim.SGD(
            ps, lr=np.float64(0.1), momentum=_any(np.array(0.9)), weight_decay=np.float64(0.01)
        ),
    ),
    ("SGD nesterov", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    (
        "Adam",
        lambda ps: optim.Adam(
            ps, lr=np.float64(1e-2), betas=(np.float64(0.9), _any(np.array(0.99)))
        ),
    ),
    ("Adam amsgrad", lambda ps: optim.Adam(ps, amsgrad=True, weight_decay=0.1)),
    ("AdamW", lambda ps: optim.AdamW(ps, lr=_any(np.array(1e-2)), weight_decay=np.float64(0.1))),
    ("RMSprop", lambda ps: optim.RMSprop(ps, lr=np.float64(1e-2), centered=True, momentum=0.5)),
    (
        "Adagrad",
        lambda ps: optim.Adagrad(
            ps, lr=np.float64(0.1), lr_decay=0.01, initial_accumulator_value=0.1
        ),
    ),
]


@pytest.mark.parametrize(("name", "make"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_step_between_forward_and_backward_is_caught(
    name: str, make: Callable[[list[nn.Parameter]], optim.Optimizer]
) -> None:
    m = nn.Linear(3, 2)
    opt = make(list(m.parameters()))
    x = Tensor(np.ones((4, 3), np.float32))
    (m(x) ** 2).sum().backward()
    y = (m(x) ** 2).sum()  # saves the weight at its current version
    v = m.weight.version_counter().value
    opt.step()
    assert m.weight.version_counter().value == v + 1
    with pytest.raises(RuntimeError, match=rf"Backward.*version is now {v + 1}, expected {v}"):
        y.backward()


SCHEDULERS: list[tuple[str, Callable[[optim.Optimizer], ls.LRScheduler]]] = [
    ("StepLR", lambda o: ls.StepLR(o, step_size=2, gamma=np.float64(0.5))),
    ("MultiStepLR", lambda o: ls.MultiStepLR(o, [1, 3], gamma=_any(np.array(0.1)))),
    ("ExponentialLR", lambda o: ls.ExponentialLR(o, np.float64(0.9))),
    ("CosineAnnealingLR", lambda o: ls.CosineAnnealingLR(o, 5, eta_min=np.float64(1e-4))),
    ("LinearLR", lambda o: ls.LinearLR(o, start_factor=np.float64(0.5), total_iters=3)),
    ("OneCycleLR", lambda o: ls.OneCycleLR(o, max_lr=np.float64(0.1), total_steps=10)),
]


@pytest.mark.parametrize(("sname", "sched"), SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
@pytest.mark.parametrize(("name", "make"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_through_optimizers_and_schedulers(
    name: str,
    make: Callable[[list[nn.Parameter]], optim.Optimizer],
    sname: str,
    sched: Callable[[optim.Optimizer], ls.LRScheduler],
    dtype: Any,
) -> None:
    ps = [_p(3, 2, dtype=dtype), _p(0, dtype=dtype), _p(dtype=dtype)]
    opt = make(ps)
    s: ls.LRScheduler
    if (
        sname == "OneCycleLR"
        and "momentum" not in opt.param_groups[0]
        and "betas" not in opt.param_groups[0]
    ):
        s = ls.OneCycleLR(opt, max_lr=np.float64(0.1), total_steps=10, cycle_momentum=False)
    else:
        s = sched(opt)
    for _ in range(4):
        for p in ps:
            p.grad = Tensor((np.arange(p.size, dtype=dtype).reshape(p.shape) - 1) * dtype(0.5))
        opt.step()
        s.step()
    for p in ps:
        assert p.dtype == dtype and p.data.dtype == dtype
        assert np.isfinite(p.numpy()).all()
    for state in opt.state.values():
        for key, value in state.items():
            if isinstance(value, Tensor):
                assert value.dtype == dtype, key
    assert all(isinstance(lr, float) for lr in s.get_last_lr())


@pytest.mark.parametrize(("name", "make"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_nan_and_inf_gradients_propagate(
    name: str, make: Callable[[list[nn.Parameter]], optim.Optimizer]
) -> None:
    p = _p(3)
    opt = make([p])
    p.grad = Tensor(np.array([np.nan, np.inf, 1.0], np.float32))
    opt.step()
    assert np.isnan(p.numpy()[0])
    assert not np.isfinite(p.numpy()[1])
    assert np.isfinite(p.numpy()[2])


def test_params_without_grad_are_skipped_and_zero_grad_sets_none() -> None:
    a, b = _p(2), _p(2)
    opt = optim.Adam([a, b])
    a.grad = Tensor(np.ones(2, np.float32))
    opt.step()
    assert (b.numpy() == 1).all() and (a.numpy() != 1).all()
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_grad_of_another_dtype_is_rejected() -> None:
    p = _p(3)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises((TypeError, ValueError), match=r"grad|dtype"):
        p.grad = Tensor(np.ones(3, np.float64))
    assert p.grad is None
    opt.step()
