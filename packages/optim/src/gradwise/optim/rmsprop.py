"""RMSprop, with the centered and momentum variants."""

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


class RMSprop(Optimizer):
    """v = a v + (1-a) g^2;  d = sqrt(v - gavg^2 | v) + eps;  b = m b + g/d, p -= lr b (or lr g/d).

    PyTorch's rule: ``centered`` subtracts the square of the running gradient mean
    ``gavg = lerp(gavg, g, 1 - alpha)``; with ``momentum > 0`` a buffer accumulates
    ``g / d``; ``weight_decay`` adds ``wd * p`` to the gradient.

    Args:
        params: Tensors to optimize, or dicts of parameter groups.
        lr: Learning rate.
        alpha: Smoothing constant of the squared-gradient average.
        eps: Added to the denominator for stability.
        weight_decay: L2 penalty added to the gradient.
        momentum: Momentum factor.
        centered: Normalise by an estimate of the gradient's variance.
        maximize: Maximize the objective instead of minimizing it.

    State per parameter: ``"step"`` (int), ``"square_avg"``, and ``"momentum_buffer"``
    (momentum > 0) and ``"grad_avg"`` (centered).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        name = type(self).__name__
        lr = options["lr"] = check_number(name, "lr", options["lr"])
        alpha = options["alpha"] = check_number(name, "alpha", options["alpha"])
        eps = options["eps"] = check_number(name, "eps", options["eps"])
        wd = options["weight_decay"] = check_number(name, "weight_decay", options["weight_decay"])
        m = options["momentum"] = check_number(name, "momentum", options["momentum"])
        options["centered"] = check_flag(name, "centered", options["centered"])
        options["maximize"] = check_flag(name, "maximize", options["maximize"])
        check_non_negative(name, "learning rate", lr)
        check_non_negative(name, "epsilon value", eps)
        check_non_negative(name, "momentum value", m)
        check_non_negative(name, "weight_decay value", wd)
        check_non_negative(name, "alpha value", alpha)

    def _update_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        alpha = group["alpha"]
        eps = group["eps"]
        weight_decay = group["weight_decay"]
        momentum = group["momentum"]
        centered = group["centered"]
        maximize = group["maximize"]
        state = self.state
        rmsprop_ = ops.rmsprop_
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            data = p.data
            st = state[p]
            if not st:
                st["step"] = 0
                st["square_avg"] = np.zeros(data.shape, data.dtype)
                if momentum > 0.0:
                    st["momentum_buffer"] = np.zeros(data.shape, data.dtype)
                if centered:
                    st["grad_avg"] = np.zeros(data.shape, data.dtype)
            buf = st.get("momentum_buffer")
            if momentum > 0.0 and buf is None:  # momentum switched on later (e.g. OneCycleLR)
                buf = st["momentum_buffer"] = np.zeros(data.shape, data.dtype)
            grad_avg = st.get("grad_avg")
            if centered and grad_avg is None:
                grad_avg = st["grad_avg"] = np.zeros(data.shape, data.dtype)
            st["step"] += 1
            rmsprop_(
                data,
                g.data,
                st["square_avg"],
                grad_avg,
                buf,
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
            )
            p.version_counter().value += 1
