"""The optimizer base class: parameter groups, per-parameter state and checkpoints.

Subclasses validate and normalise their options in ``_check_options`` (called for the
defaults and for every group, so a group's own ``lr=-1`` is caught too) and update one
group at a time in ``_update_group``, calling a fused in-place kernel from
``gradwise.core.ops`` once per parameter.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, TypeVar

import numpy as np

from gradwise.autograd import Tensor, enable_grad, no_grad
from gradwise.core.ops import fmt_shape

ParamGroup = dict[str, Any]
"""One parameter group: ``"params"`` (a list of Tensors) and the optimizer's options."""

StateDict = dict[str, Any]
"""``{"state": {index: {name: array | int}}, "param_groups": [{..., "params": [index]}]}``."""

Params = Iterable[Tensor] | Iterable[Mapping[str, Any]]
"""What optimizers accept: an iterable of Tensors, or of dicts that each hold ``"params"``."""

L = TypeVar("L")

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ParameterDtypeError(TypeError, ValueError):
    """A parameter whose dtype cannot be optimized (only float32 and float64 can).

    It is both a ``TypeError`` (the house rule for types) and a ``ValueError`` (what
    PyTorch-style validation code may catch).
    """


def check_non_negative(opt: str, what: str, value: float) -> None:
    """Raise ``ValueError("<opt>: Invalid <what>: <value>")`` unless ``value >= 0`` (NaN fails)."""
    if not value >= 0.0:
        raise ValueError(f"{opt}: Invalid {what}: {value}")


def check_number(opt: str, name: str, value: object) -> float:
    """``value`` as a Python float, or a TypeError naming the optimizer and the option.

    NumPy scalars and 0-d real arrays count as numbers (as 0-d tensors do in PyTorch).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{opt}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_flag(opt: str, name: str, value: object) -> bool:
    """``value`` as a bool, or a TypeError naming the optimizer and the option."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{opt}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _as_step(opt: str, index: int, value: object) -> int:
    """A saved ``"step"`` (int, integral float or 0-d array, as PyTorch saves it) as an int."""
    v = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise ValueError(
            f"{opt}.load_state_dict: 'step' of parameter {index} must be a number, got "
            f"{type(value).__name__}"
        )
    if not math.isfinite(float(v)) or float(v) != int(v) or int(v) < 0:
        raise ValueError(
            f"{opt}.load_state_dict: 'step' of parameter {index} must be a whole number >= 0, "
            f"got {v}"
        )
    return int(v)


class Optimizer:
    """Base class of all optimizers: parameter groups, per-parameter state, checkpoints.

    Args:
        params: An iterable of Tensors (one group), or of dicts each holding ``"params"``
            and any options that override ``defaults`` for that group.
        defaults: Every option with its default value.

    Attributes:
        defaults: The options given to the constructor.
        param_groups: A list of dicts: ``"params"`` (a list of Tensors) plus each option.
        state: Per-parameter state, keyed by the parameter Tensor (Tensors hash by
            identity): NumPy arrays in the parameter's dtype and Python ints (``"step"``).
    """

    defaults: dict[str, Any]
    param_groups: list[ParamGroup]
    state: defaultdict[Tensor, dict[str, Any]]

    def __init__(self, params: Params, defaults: Mapping[str, Any]) -> None:
        name = type(self).__name__
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = defaultdict(dict)
        if isinstance(params, Tensor | np.ndarray | Mapping | str) or not hasattr(
            params, "__iter__"
        ):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, but got "
                f"{type(params).__name__}"
            )
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- subclass hooks --------------------------------------------------------------

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        """Validate ``options`` (a group or the defaults) and normalise them in place."""

    def _init_group_state(self, group: ParamGroup) -> None:
        """Create state eagerly for a new group's parameters (most optimizers do it lazily)."""

    def _update_group(self, group: ParamGroup) -> None:
        """Update every parameter of ``group`` that has a gradient, in place."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    # ---- public API ------------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a parameter group; options it does not set take the optimizer's defaults.

        Args:
            param_group: A dict with ``"params"`` (a Tensor or an ordered iterable of
                Tensors) and optionally any of the optimizer's options.

        Raises:
            TypeError: ``param_group`` is not a dict, a parameter is not a Tensor, or a
                parameter's dtype is not float32/float64 (``ParameterDtypeError``).
            ValueError: A parameter is not a leaf, appears twice, or is already in another
                group, or an option is out of range.
        """
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise TypeError(
                f"{name}: a param group must be a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}: a param group needs a 'params' entry")
        raw = param_group["params"]
        if isinstance(raw, set | frozenset):
            raise TypeError(
                f"{name}: parameters must be given in an ordered collection (a list), not a "
                "set, whose order changes between runs"
            )
        params: list[Tensor] = [raw] if isinstance(raw, Tensor) else list(raw)
        gi = len(self.param_groups)
        seen: set[int] = set()
        for i, p in enumerate(params):
            where = f"parameter {i} of group {gi}"
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: optimizer can only optimize Tensors, but {where} is a "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                assert p.grad_fn is not None
                raise ValueError(
                    f"{name}: can't optimize a non-leaf Tensor ({where} was made by "
                    f"{p.grad_fn.name()}); optimize the leaf it came from or detach() it"
                )
            if p.data.dtype not in _FLOAT_DTYPES:
                raise ParameterDtypeError(
                    f"{name}: can only optimize float32 or float64 tensors, but {where} has "
                    f"dtype {p.data.dtype}"
                )
            flags = p.data.flags
            if not (flags.c_contiguous and flags.writeable):
                raise ValueError(
                    f"{name}: {where} must be a writeable C-contiguous tensor (it is updated "
                    "in place); pass a contiguous copy"
                )
            if id(p) in seen:
                raise ValueError(f"{name}: {where} appears more than once in the group")
            seen.add(id(p))
        for group in self.param_groups:
            if any(id(q) in seen for q in group["params"]):
                raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        new: ParamGroup = {k: v for k, v in param_group.items() if k != "params"}
        for k, v in self.defaults.items():
            new.setdefault(k, v)
        self._check_options(new)
        new["params"] = params
        self.param_groups.append(new)
        self._init_group_state(new)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient.

        Args:
            set_to_none: If True (the default, as in PyTorch) set ``.grad`` to None;
                otherwise fill the existing gradients with zeros in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g.data.fill(0)
                    g.version_counter().value += 1

    def step(self, closure: Callable[[], L] | None = None) -> L | None:
        """Update every parameter that has a gradient, in place (one fused pass each).

        Args:
            closure: Optional function that re-evaluates the model and returns the loss;
                it runs with grad mode enabled before the update.

        Returns:
            What ``closure`` returned, or None without a closure.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def state_dict(self) -> StateDict:
        """The optimizer's state in PyTorch's layout, with parameters replaced by indices.

        Returns:
            ``{"state": {index: {...}}, "param_groups": [{...options, "params": [index]}]}``;
            indices count parameters in group order from 0. State arrays are copies; the
            rest is JSON-serialisable (ints, floats, bools, None, tuples of floats).
        """
        index: dict[int, int] = {}
        groups: list[dict[str, Any]] = []
        for group in self.param_groups:
            packed: dict[str, Any] = {
                k: (list(v) if isinstance(v, list) else v)
                for k, v in group.items()
                if k != "params"
            }
            ids: list[int] = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            packed["params"] = ids
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for p, st in self.state.items():
            i = index.get(id(p))
            if i is None or not st:
                continue
            state[i] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a ``state_dict()``; the optimizer keeps its current parameters.

        State arrays are copied into new arrays in each parameter's dtype. Keys of
        ``"state"`` may be ints or their strings (as after a JSON round trip), and list
        options (``betas`` from JSON) become tuples. Everything is validated before
        anything is installed.

        Args:
            state_dict: What ``state_dict()`` returned (possibly with its non-array parts
                round-tripped through JSON).

        Raises:
            ValueError: The group count, a group's parameter count, a state index or a
                buffer's shape does not match this optimizer.
            TypeError: An entry has the wrong type.
        """
        name = type(self).__name__
        op = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{op}: expected a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, list | tuple):
            raise TypeError(
                f"{op}: 'param_groups' must be a list, got {type(saved_groups).__name__}"
            )
        if not isinstance(saved_state, Mapping):
            raise TypeError(f"{op}: 'state' must be a dict, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{op}: the loaded state dict has {len(saved_groups)} parameter groups but the "
                f"optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        new_groups: list[ParamGroup] = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"{op}: parameter group {gi} has no 'params' entry")
            ids = list(saved["params"])
            if len(ids) != len(group["params"]):
                raise ValueError(
                    f"{op}: parameter group {gi} has {len(ids)} parameters in the loaded state "
                    f"dict but {len(group['params'])} in the optimizer"
                )
            for idx, p in zip(ids, group["params"], strict=True):
                by_index[int(idx)] = p
            options: ParamGroup = {k: v for k, v in group.items() if k != "params"}
            for k, v in saved.items():
                if k != "params":
                    options[k] = tuple(v) if isinstance(v, list) else v
            self._check_options(options)
            options["params"] = group["params"]
            new_groups.append(options)
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, saved_st in saved_state.items():
            try:
                idx = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{op}: state key {key!r} is not a parameter index") from None
            p = by_index.get(idx)
            if p is None:
                raise ValueError(
                    f"{op}: the loaded state dict has state for parameter index {idx}, which "
                    "no parameter group lists"
                )
            if not isinstance(saved_st, Mapping):
                raise TypeError(
                    f"{op}: state of parameter {idx} must be a dict, got {type(saved_st).__name__}"
                )
            st: dict[str, Any] = {}
            for k, v in saved_st.items():
                if k == "step":
                    st[k] = _as_step(name, idx, v)
                elif v is None or isinstance(v, bool | int | float):
                    st[k] = v
                else:
                    arr = np.asarray(v)
                    if arr.shape != p.data.shape:
                        raise ValueError(
                            f"{op}: state '{k}' of parameter {idx} has shape "
                            f"{fmt_shape(arr.shape)} but the parameter has shape "
                            f"{fmt_shape(p.data.shape)}"
                        )
                    if arr.dtype.kind not in "fiu":
                        raise TypeError(
                            f"{op}: state '{k}' of parameter {idx} has dtype {arr.dtype}; "
                            "expected a float array"
                        )
                    st[k] = np.array(arr, dtype=p.data.dtype, order="C", copy=True)
            new_state[p] = st
        for group, options in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(options)
        self.state = new_state
