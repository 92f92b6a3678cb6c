"""Adam and AdamW (decoupled weight decay), with AMSGrad."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
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


class Adam(Optimizer):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr/(1-b1^t) m / (sqrt(v/(1-b2^t)) + eps).

    PyTorch's rule. ``weight_decay`` adds ``wd * p`` to the gradient (L2), unless
    ``decoupled_weight_decay`` (AdamW) multiplies ``p`` by ``1 - lr * wd`` first; with
    ``amsgrad`` the running maximum of ``v`` replaces ``v`` in the denominator.

    Args:
        params: Tensors to optimize, or dicts of parameter groups.
        lr: Learning rate.
        betas: Decay rates ``(beta1, beta2)`` of the first and second moment averages.
        eps: Added to the denominator for stability.
        weight_decay: Weight decay (L2 penalty, or decoupled for AdamW).
        amsgrad: Use the AMSGrad variant.
        maximize: Maximize the objective instead of minimizing it.
        decoupled_weight_decay: Decay the weights directly (AdamW) instead of adding an
            L2 term to the gradient.

    State per parameter: ``"step"`` (int), ``"exp_avg"``, ``"exp_avg_sq"`` and, with
    amsgrad, ``"max_exp_avg_sq"``.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        name = type(self).__name__
        lr = options["lr"] = check_number(name, "lr", options["lr"])
        eps = options["eps"] = check_number(name, "eps", options["eps"])
        wd = options["weight_decay"] = check_number(name, "weight_decay", options["weight_decay"])
        options["amsgrad"] = check_flag(name, "amsgrad", options["amsgrad"])
        options["maximize"] = check_flag(name, "maximize", options["maximize"])
        options["decoupled_weight_decay"] = check_flag(
            name, "decoupled_weight_decay", options["decoupled_weight_decay"]
        )
        betas = options["betas"]
        if isinstance(betas, str) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair of floats, got {betas!r}")
        b1 = check_number(name, "betas[0]", betas[0])
        b2 = check_number(name, "betas[1]", betas[1])
        options["betas"] = (b1, b2)
        check_non_negative(name, "learning rate", lr)
        check_non_negative(name, "epsilon value", eps)
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"{name}: Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ValueError(f"{name}: Invalid beta parameter at index 1: {b2}")
        check_non_negative(name, "weight_decay value", wd)

    def _update_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        weight_decay = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        state = self.state
        adam_ = ops.adam_
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            data = p.data
            st = state[p]
            if not st:
                st["step"] = 0
                st["exp_avg"] = np.zeros(data.shape, data.dtype)
                st["exp_avg_sq"] = np.zeros(data.shape, data.dtype)
                if amsgrad:
                    st["max_exp_avg_sq"] = np.zeros(data.shape, data.dtype)
            vmax = st.get("max_exp_avg_sq")
            if amsgrad and vmax is None:  # amsgrad switched on after the state was made
                vmax = st["max_exp_avg_sq"] = np.zeros(data.shape, data.dtype)
            step = st["step"] + 1
            st["step"] = step
            adam_(
                data,
                g.data,
                st["exp_avg"],
                st["exp_avg_sq"],
                vmax,
                step=step,
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                decoupled_weight_decay=decoupled,
            )
            p.version_counter().value += 1


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr wd, then the Adam step (PyTorch's rule).

    Args:
        params: Tensors to optimize, or dicts of parameter groups.
        lr: Learning rate.
        betas: Decay rates ``(beta1, beta2)`` of the moment averages.
        eps: Added to the denominator for stability.
        weight_decay: Decoupled weight decay coefficient (default 1e-2).
        amsgrad: Use the AMSGrad variant.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize,
            decoupled_weight_decay=True,
        )

    def _check_options(self, options: MutableMapping[str, Any]) -> None:
        options["decoupled_weight_decay"] = True  # always, as PyTorch's AdamW
        super()._check_options(options)
