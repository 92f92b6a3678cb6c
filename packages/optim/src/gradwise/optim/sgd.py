"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

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


class SGD(Optimizer):
    """d = +-g + wd p;  b = d (first step) or m b + (1 - damp) d;  p -= lr (d + m b | b).

    PyTorch's rule: the momentum buffer ``b`` starts as the first (decayed) gradient;
    with ``nesterov`` the step is ``d + momentum * b``, otherwise ``b``.

    Args:
        params: Tensors to optimize, or dicts of parameter groups.
        lr: Learning rate.
        momentum: Momentum factor (0 disables the buffer).
        dampening: Dampening of the gradient's share in the buffer.
        weight_decay: L2 penalty added to the gradient.
        nesterov: Use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: Maximize the objective instead of minimizing it.

    State per parameter: ``"momentum_buffer"`` (only with momentum).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        name = type(self).__name__
        lr = options["lr"] = check_number(name, "lr", options["lr"])
        m = options["momentum"] = check_number(name, "momentum", options["momentum"])
        damp = options["dampening"] = check_number(name, "dampening", options["dampening"])
        wd = options["weight_decay"] = check_number(name, "weight_decay", options["weight_decay"])
        nesterov = options["nesterov"] = check_flag(name, "nesterov", options["nesterov"])
        options["maximize"] = check_flag(name, "maximize", options["maximize"])
        check_non_negative(name, "learning rate", lr)
        check_non_negative(name, "momentum value", m)
        check_non_negative(name, "weight_decay value", wd)
        if nesterov and (m <= 0.0 or damp != 0.0):
            raise ValueError(
                f"{name}: Nesterov momentum requires a momentum and zero dampening "
                f"(got momentum={m}, dampening={damp})"
            )

    def _update_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        weight_decay = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        state = self.state
        sgd_ = ops.sgd_
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            data = p.data
            if momentum != 0.0:
                st = state[p]
                buf = st.get("momentum_buffer")
                first = buf is None
                if first:
                    # the kernel writes the first (decayed) gradient into it
                    buf = st["momentum_buffer"] = np.empty(data.shape, data.dtype)
                sgd_(
                    data,
                    g.data,
                    buf,
                    lr=lr,
                    momentum=momentum,
                    dampening=dampening,
                    weight_decay=weight_decay,
                    nesterov=nesterov,
                    maximize=maximize,
                    first_step=first,
                )
            else:
                sgd_(data, g.data, None, lr=lr, weight_decay=weight_decay, maximize=maximize)
            p.version_counter().value += 1
