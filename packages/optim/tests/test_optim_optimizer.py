"""The Optimizer base: dtypes, groups, zero_grad, closures, checkpoints, versions, validation."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.autograd import Tensor, is_grad_enabled, no_grad, tensor, zeros
from gradwise.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Optimizer,
    ParameterDtypeError,
    RMSprop,
    lr_scheduler,
)

Arr = np.ndarray[Any, Any]

# every optimizer with options that create every kind of state buffer
FULL: list[tuple[type[Optimizer], dict[str, Any]]] = [
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05}),
    (Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    (AdamW, {"lr": 0.05, "amsgrad": True}),
    (RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
]
IDS = [f"{c.__name__}-{i}" for i, (c, _) in enumerate(FULL)]


def grad_at(t: int, shape: tuple[int, ...], dtype: Any) -> Tensor:
    n = int(np.prod(shape))
    return Tensor(np.cos(0.37 * t + 0.91 * np.arange(n)).reshape(shape).astype(dtype))


def make_params(dtype: Any = np.float64) -> list[Tensor]:
    return [
        Tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4).astype(dtype), requires_grad=True),
        Tensor(np.array([0.5, -0.25, 2.0], dtype=dtype), requires_grad=True),
    ]


def run(opt: Optimizer, params: list[Tensor], start: int, stop: int) -> None:
    for t in range(start, stop):
        for p in params:
            p.grad = grad_at(t, p.shape, p.dtype)
        opt.step()


# ---- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "kw"), FULL, ids=IDS)
def test_float32_params_and_state_stay_float32(cls: type[Optimizer], kw: dict[str, Any]) -> None:
    params = make_params(np.float32)
    opt = cls(params, **kw)
    run(opt, params, 1, 4)
    for p in params:
        assert p.data.dtype == np.float32
        for name, v in opt.state[p].items():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32, name
                assert v.shape == p.shape, name
            else:
                assert name == "step" and type(v) is int and v == 3


@pytest.mark.parametrize(("cls", "kw"), FULL, ids=IDS)
def test_float32_tracks_float64(cls: type[Optimizer], kw: dict[str, Any]) -> None:
    p32, p64 = make_params(np.float32), make_params(np.float64)
    o32, o64 = cls(p32, **kw), cls(p64, **kw)
    run(o32, p32, 1, 6)
    run(o64, p64, 1, 6)
    for a, b in zip(p32, p64, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-5)


def test_float64_params_update_in_place() -> None:
    p = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    data = p.data
    opt = SGD([p], lr=0.5)
    p.grad = Tensor(np.array([1.0, -1.0]))
    opt.step()
    assert p.data is data
    np.testing.assert_array_equal(data, [0.5, 2.5])


# ---- groups --------------------------------------------------------------------------------


def test_param_groups_layout_and_defaults() -> None:
    a, b = make_params()
    groups: list[dict[str, Any]] = [{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}]
    opt = SGD(groups, lr=0.1)
    assert len(opt.param_groups) == 2
    g0, g1 = opt.param_groups
    assert g0["params"][0] is a and len(g0["params"]) == 1
    assert g1["params"][0] is b and len(g1["params"]) == 1
    assert g0["lr"] == 0.1 and g0["momentum"] == 0.0
    assert g1["lr"] == 0.5 and g1["momentum"] == 0.9
    assert opt.defaults["lr"] == 0.1
    assert set(g0) == {
        "params",
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "maximize",
    }


def test_per_group_options_act_like_separate_optimizers() -> None:
    a, b = make_params()
    a2, b2 = make_params()
    groups: list[dict[str, Any]] = [{"params": [a], "lr": 0.2, "amsgrad": True}, {"params": [b]}]
    opt = Adam(groups, lr=0.05)
    oa = Adam([a2], lr=0.2, amsgrad=True)
    ob = Adam([b2], lr=0.05)
    for t in range(1, 6):
        for p, q in ((a, a2), (b, b2)):
            p.grad = grad_at(t, p.shape, p.dtype)
            q.grad = grad_at(t, q.shape, q.dtype)
        opt.step()
        oa.step()
        ob.step()
    np.testing.assert_array_equal(a.data, a2.data)
    np.testing.assert_array_equal(b.data, b2.data)


def test_add_param_group_fills_defaults_and_updates_the_new_group() -> None:
    a, b = make_params()
    opt = RMSprop([a], lr=0.01, momentum=0.5)
    opt.add_param_group({"params": [b], "lr": 0.1})
    g = opt.param_groups[1]
    assert g["lr"] == 0.1 and g["momentum"] == 0.5 and g["alpha"] == 0.99
    before = b.data.copy()
    b.grad = grad_at(1, b.shape, b.dtype)
    opt.step()
    assert not np.array_equal(b.data, before)


def test_add_param_group_rejects_a_parameter_already_in_a_group() -> None:
    a, b = make_params()
    opt = SGD([a, b], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [b]})
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    assert len(opt.param_groups) == 1


def test_add_param_group_validates_group_options() -> None:
    a, b = make_params()
    opt = Adam([a])
    with pytest.raises(ValueError, match=r"Adam: Invalid learning rate: -1\.0"):
        opt.add_param_group({"params": [b], "lr": -1.0})
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        opt.add_param_group({"params": [b], "betas": (0.9, 1.0)})
    with pytest.raises(ValueError, match="'params'"):
        opt.add_param_group({"lr": 0.1})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([b])  # type: ignore[arg-type]
    assert len(opt.param_groups) == 1


def test_adagrad_makes_state_for_added_groups_eagerly() -> None:
    a, b = make_params()
    opt = Adagrad([a], initial_accumulator_value=0.25)
    opt.add_param_group({"params": [b], "initial_accumulator_value": 0.5})
    assert opt.state[a]["step"] == 0 and np.all(opt.state[a]["sum"] == 0.25)
    assert np.all(opt.state[b]["sum"] == 0.5)


# ---- zero_grad, skipping, closure ----------------------------------------------------------


def test_zero_grad_sets_none_by_default() -> None:
    params = make_params()
    opt = SGD(params, lr=0.1)
    (params[0].sum() + params[1].sum()).backward()
    assert all(p.grad is not None for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_zero_grad_without_set_to_none_zeroes_in_place() -> None:
    params = make_params()
    opt = SGD(params, lr=0.1)
    (params[0] * 3.0).sum().backward()
    g = params[0].grad
    assert g is not None
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is g
    np.testing.assert_array_equal(g.data, np.zeros((3, 4)))
    assert params[1].grad is None


@pytest.mark.parametrize(("cls", "kw"), FULL, ids=IDS)
def test_params_without_grad_are_skipped(cls: type[Optimizer], kw: dict[str, Any]) -> None:
    a, b = make_params()
    opt = cls([a, b], **kw)
    before = b.data.copy()
    version = b.version_counter().value
    a.grad = grad_at(1, a.shape, a.dtype)
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert b.version_counter().value == version
    if cls is not Adagrad:  # Adagrad makes its state at construction, as PyTorch
        assert b not in opt.state or not opt.state[b]


def test_step_with_closure_returns_its_loss_and_runs_with_grad_enabled() -> None:
    p = Tensor(np.array([3.0, -4.0]), requires_grad=True)
    opt = SGD([p], lr=0.25)
    seen: list[bool] = []

    def closure() -> Tensor:
        seen.append(is_grad_enabled())
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with no_grad():
        loss = opt.step(closure)
    assert seen == [True]
    assert isinstance(loss, Tensor) and loss.item() == 25.0
    np.testing.assert_array_equal(p.data, [1.5, -2.0])  # p - 0.25 * 2p
    assert opt.step() is None


def test_step_runs_under_no_grad_and_bumps_versions() -> None:
    p = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    opt = Adam([p], lr=0.1)
    y = (p * p).sum()  # saves p for backward
    p.grad = Tensor(np.array([1.0, 1.0]))
    v = p.version_counter().value
    opt.step()
    assert p.version_counter().value == v + 1
    assert p.grad_fn is None and p.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()


# ---- state_dict ------------------------------------------------------------------------------


def test_state_dict_layout() -> None:
    a, b = make_params()
    c = Tensor(np.zeros(2), requires_grad=True)
    groups: list[dict[str, Any]] = [{"params": [a, b]}, {"params": [c], "lr": 0.5}]
    opt = Adam(groups, lr=0.1, betas=(0.8, 0.9))
    a.grad = grad_at(1, a.shape, a.dtype)
    c.grad = grad_at(1, c.shape, c.dtype)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][0]["betas"] == (0.8, 0.9)
    assert sd["param_groups"][1]["lr"] == 0.5
    assert set(sd["state"]) == {0, 2}  # b had no gradient
    st0 = sd["state"][0]
    assert set(st0) == {"step", "exp_avg", "exp_avg_sq"} and st0["step"] == 1
    # copies: changing the saved arrays leaves the optimizer alone
    st0["exp_avg"][...] = 123.0
    assert not np.any(opt.state[a]["exp_avg"] == 123.0)
    json.dumps(sd["param_groups"])


def split_arrays(sd: dict[str, Any]) -> tuple[str, dict[str, Arr]]:
    """The non-array part as JSON text, the arrays by "index/name" (as a checkpoint would)."""
    arrays: dict[str, Arr] = {}
    state: dict[str, dict[str, Any]] = {}
    for idx, st_ in sd["state"].items():
        state[str(idx)] = {}
        for k, v in st_.items():
            if isinstance(v, np.ndarray):
                arrays[f"{idx}/{k}"] = v
            else:
                state[str(idx)][k] = v
    return json.dumps({"state": state, "param_groups": sd["param_groups"]}), arrays


def join_arrays(text: str, arrays: dict[str, Arr]) -> dict[str, Any]:
    sd: dict[str, Any] = json.loads(text)
    for key, arr in arrays.items():
        idx, name = key.split("/")
        sd["state"][idx][name] = arr
    return sd


@pytest.mark.parametrize("via_json", [False, True])
@pytest.mark.parametrize(("cls", "kw"), FULL, ids=IDS)
def test_state_dict_round_trip_is_bit_identical(
    cls: type[Optimizer], kw: dict[str, Any], via_json: bool
) -> None:
    ref_params = make_params()
    ref = cls(ref_params, **kw)
    run(ref, ref_params, 1, 31)

    params = make_params()
    opt = cls(params, **kw)
    run(opt, params, 1, 11)
    sd = opt.state_dict()
    if via_json:
        sd = join_arrays(*split_arrays(sd))
    saved_values = [p.data.copy() for p in params]

    fresh = make_params()
    for p, v in zip(fresh, saved_values, strict=True):
        p.data[...] = v
    opt2 = cls(fresh, **kw)
    opt2.load_state_dict(sd)
    assert all(g["params"][i] is p for g in opt2.param_groups for i, p in enumerate(fresh))
    run(opt2, fresh, 11, 31)
    for a, b in zip(fresh, ref_params, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_copies_into_each_params_dtype_and_restores_options() -> None:
    p64 = make_params(np.float64)
    opt64 = Adam(p64, lr=0.3, betas=(0.7, 0.8), amsgrad=True)
    run(opt64, p64, 1, 3)
    sd = opt64.state_dict()
    p32 = make_params(np.float32)
    opt32 = Adam(p32)
    opt32.load_state_dict(sd)
    st32 = opt32.state[p32[0]]
    assert st32["exp_avg"].dtype == np.float32 and st32["step"] == 2
    assert st32["exp_avg"] is not sd["state"][0]["exp_avg"]
    g = opt32.param_groups[0]
    assert g["lr"] == 0.3 and g["betas"] == (0.7, 0.8) and g["amsgrad"] is True
    assert g["params"][0] is p32[0]
    run(opt32, p32, 3, 4)
    assert p32[0].data.dtype == np.float32


def test_betas_from_json_list_still_work() -> None:
    params = make_params()
    opt = Adam(params, betas=[0.8, 0.9])
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)
    opt.param_groups[0]["betas"] = [0.5, 0.6]  # as a user or a loader might set it
    run(opt, params, 1, 3)
    text, arrays = split_arrays(opt.state_dict())
    opt.load_state_dict(join_arrays(text, arrays))
    assert opt.param_groups[0]["betas"] == (0.5, 0.6)


def test_adamw_stays_decoupled_after_loading() -> None:
    params = make_params()
    opt = AdamW(params)
    sd = opt.state_dict()
    sd["param_groups"][0]["decoupled_weight_decay"] = False
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_load_state_dict_validates_and_installs_nothing_on_error() -> None:
    params = make_params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    run(opt, params, 1, 3)
    good = opt.state_dict()
    buf = opt.state[params[0]]["momentum_buffer"].copy()

    other = SGD([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.1)
    with pytest.raises(ValueError, match="has 1 parameter groups but the optimizer has 2"):
        other.load_state_dict(good)
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = [0]
    with pytest.raises(ValueError, match=r"parameter group 0 has 1 parameters .* but 2"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][1]["momentum_buffer"] = np.zeros(4)
    with pytest.raises(
        ValueError, match=r"'momentum_buffer' of parameter 1 has shape \(4,\) .*\(3,\)"
    ):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][7] = bad["state"].pop(1)
    with pytest.raises(ValueError, match="parameter index 7"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -0.5
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    assert opt.param_groups[0]["lr"] == 0.1
    np.testing.assert_array_equal(opt.state[params[0]]["momentum_buffer"], buf)


def test_state_dict_with_scheduler_state_in_groups_round_trips() -> None:
    params = make_params()
    opt = SGD(params, lr=0.1)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    run(opt, params, 1, 2)
    sched.step()
    text, arrays = split_arrays(opt.state_dict())
    opt2 = SGD(make_params(), lr=0.1)
    opt2.load_state_dict(join_arrays(text, arrays))
    g = opt2.param_groups[0]
    assert g["max_lr"] == 1.0 and g["momentum"] == opt.param_groups[0]["momentum"]
    # OneCycleLR switched momentum on, so SGD kept a momentum buffer
    assert "momentum_buffer" in opt2.state[opt2.param_groups[0]["params"][0]]


# ---- validation --------------------------------------------------------------------------


def test_constructor_rejects_bad_params() -> None:
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="SGD: optimizer got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, but parameter 1 of group 0"):
        SGD([p, np.ones(2)], lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf Tensor .*MulBackward"):
        Adam([p * 2.0])
    with pytest.raises(ValueError, match="parameter 1 of group 0 appears more than once"):
        Adam([p, p])
    with pytest.raises(ParameterDtypeError, match=r"float32 or float64 .* dtype int64"):
        SGD([tensor([1, 2])], lr=0.1)
    with pytest.raises(TypeError, match="dtype int64"):  # it is also a TypeError ...
        Adam([tensor([1, 2])])
    with pytest.raises(ValueError, match="dtype int64"):  # ... and a ValueError
        Adam([tensor([1, 2])])
    with pytest.raises(ValueError, match="C-contiguous"):
        SGD([Tensor(np.ones((3, 2))).T.detach()], lr=0.1)


def test_params_that_do_not_require_grad_are_accepted() -> None:
    p = zeros(3)  # a leaf; it never gets a gradient, so steps leave it alone
    opt = SGD([p], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(p.data, np.zeros(3))


P = [Tensor(np.ones(2), requires_grad=True)]
BAD_OPTIONS: list[tuple[type[Optimizer], dict[str, Any], str]] = [
    (SGD, {"lr": -0.1}, "SGD: Invalid learning rate: -0.1"),
    (SGD, {"momentum": -0.5}, "SGD: Invalid momentum value: -0.5"),
    (SGD, {"weight_decay": -1.0}, "SGD: Invalid weight_decay value: -1.0"),
    (SGD, {"nesterov": True}, "SGD: Nesterov momentum requires a momentum and zero dampening"),
    (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "Nesterov momentum requires"),
    (SGD, {"lr": "fast"}, "SGD: lr must be a real number, got str"),
    (SGD, {"nesterov": 1}, "SGD: nesterov must be a bool"),
    (Adam, {"lr": -1e-3}, "Adam: Invalid learning rate: -0.001"),
    (Adam, {"eps": -1e-8}, "Adam: Invalid epsilon value: -1e-08"),
    (Adam, {"betas": (1.0, 0.999)}, "Adam: Invalid beta parameter at index 0: 1.0"),
    (Adam, {"betas": (0.9, -0.1)}, "Adam: Invalid beta parameter at index 1: -0.1"),
    (Adam, {"betas": (0.9,)}, "Adam: betas must be a pair"),
    (Adam, {"weight_decay": -0.1}, "Adam: Invalid weight_decay value: -0.1"),
    (AdamW, {"lr": -1.0}, "AdamW: Invalid learning rate: -1.0"),
    (AdamW, {"betas": (0.9, 1.5)}, "AdamW: Invalid beta parameter at index 1: 1.5"),
    (RMSprop, {"lr": -0.01}, "RMSprop: Invalid learning rate: -0.01"),
    (RMSprop, {"eps": -1.0}, "RMSprop: Invalid epsilon value: -1.0"),
    (RMSprop, {"momentum": -0.1}, "RMSprop: Invalid momentum value: -0.1"),
    (RMSprop, {"weight_decay": -0.1}, "RMSprop: Invalid weight_decay value: -0.1"),
    (RMSprop, {"alpha": -0.5}, "RMSprop: Invalid alpha value: -0.5"),
    (Adagrad, {"lr": -0.01}, "Adagrad: Invalid learning rate: -0.01"),
    (Adagrad, {"lr_decay": -0.1}, "Adagrad: Invalid lr_decay value: -0.1"),
    (Adagrad, {"weight_decay": -0.1}, "Adagrad: Invalid weight_decay value: -0.1"),
    (Adagrad, {"initial_accumulator_value": -1.0}, "Invalid initial_accumulator_value value"),
    (Adagrad, {"eps": -1e-10}, "Adagrad: Invalid epsilon value: -1e-10"),
]


@pytest.mark.parametrize(("cls", "kw", "message"), BAD_OPTIONS, ids=lambda x: str(x))
def test_invalid_options_raise(cls: type[Optimizer], kw: dict[str, Any], message: str) -> None:
    kind = TypeError if "must be" in message else ValueError
    with pytest.raises(kind, match=re.escape(message)):
        cls(P, **kw)


def test_options_are_validated_before_params() -> None:
    with pytest.raises(ValueError, match="Invalid learning rate"):
        SGD([], lr=-1.0)


def test_repr_lists_groups() -> None:
    text = repr(SGD(make_params(), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


# ---- properties ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(
    shapes=st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3), min_size=1, max_size=3),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_sgd_one_step_matches_formula_for_any_shapes(
    shapes: list[list[int]], momentum: float, dtype: Any
) -> None:
    params = [
        Tensor(np.linspace(-1, 1, int(np.prod(s))).reshape(s).astype(dtype), requires_grad=True)
        for s in shapes
    ]
    opt = SGD(params, lr=0.1, momentum=momentum, weight_decay=0.1)
    for t in (1, 2):
        expected = []
        for p in params:
            g = grad_at(t, p.shape, dtype)
            p.grad = g
            d = g.data + np.asarray(0.1, dtype) * p.data
            buf = d if t == 1 or momentum == 0 else momentum * opt.state[p]["momentum_buffer"] + d
            expected.append(p.data - np.asarray(0.1, dtype) * buf)
        opt.step()
        for p, e in zip(params, expected, strict=True):
            assert p.data.dtype == dtype and p.data.shape == e.shape
            np.testing.assert_allclose(p.data, e, rtol=1e-6, atol=1e-6)
