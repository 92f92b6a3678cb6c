"""Adagrad, with learning-rate decay and an initial accumulator value."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from gradwise.core import ops
from gradwise.optim.optimizer import (
    Optimizer,
    ParamGroup,
    Params,
    check_flag,
    check_non_negative,
    check_number,
)


class Adagrad(Optimizer):
    """s += g^2;  p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(s) + eps).

    PyTorch's rule; ``weight_decay`` adds ``wd * p`` to the gradient. As in PyTorch the
    state (``"step"`` and ``"sum"``, filled with ``initial_accumulator_value``) is made
    when a parameter joins the optimizer, not at its first step.

    Args:
        params: Tensors to optimize, or dicts of parameter groups.
        lr: Learning rate.
        lr_decay: Learning-rate decay per step.
        weight_decay: L2 penalty added to the gradient.
        initial_accumulator_value: Starting value of the squared-gradient sum.
        eps: Added to the denominator for stability.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "maximize": maximize,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        name = type(self).__name__
        lr = options["lr"] = check_number(name, "lr", options["lr"])
        decay = options["lr_decay"] = check_number(name, "lr_decay", options["lr_decay"])
        wd = options["weight_decay"] = check_number(name, "weight_decay", options["weight_decay"])
        init = options["initial_accumulator_value"] = check_number(
            name, "initial_accumulator_value", options["initial_accumulator_value"]
        )
        eps = options["eps"] = check_number(name, "eps", options["eps"])
        options["maximize"] = check_flag(name, "maximize", options["maximize"])
        check_non_negative(name, "learning rate", lr)
        check_non_negative(name, "lr_decay value", decay)
        check_non_negative(name, "weight_decay value", wd)
        check_non_negative(name, "initial_accumulator_value value", init)
        check_non_negative(name, "epsilon value", eps)

    def _init_group_state(self, group: ParamGroup) -> None:
        init = group["initial_accumulator_value"]
        for p in group["params"]:
            st = self.state[p]
            st["step"] = 0
            st["sum"] = np.full(p.data.shape, init, p.data.dtype)

    def _update_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        lr_decay = group["lr_decay"]
        weight_decay = group["weight_decay"]
        eps = group["eps"]
        maximize = group["maximize"]
        state = self.state
        adagrad_ = ops.adagrad_
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            st = state[p]
            if not st:  # state dropped by a load_state_dict without it
                data = p.data
                st["step"] = 0
                st["sum"] = np.full(data.shape, group["initial_accumulator_value"], data.dtype)
            step = st["step"] + 1
            st["step"] = step
            adagrad_(
                p.data,
                g.data,
                st["sum"],
                step=step,
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                eps=eps,
                maximize=maximize,
            )
            p.version_counter().value += 1
