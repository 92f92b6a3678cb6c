"""Learning-rate schedulers, with PyTorch's exact sequences.

As in PyTorch, constructing a scheduler records each group's ``initial_lr`` and applies
the epoch-0 learning rate; ``step()`` (called after ``optimizer.step()``) advances
``last_epoch`` and writes the new rates into the optimizer's groups. Several schedulers
use PyTorch's recursive ("chainable") form, which updates the current ``group["lr"]``
rather than recomputing it from ``base_lrs``; the numbers then match PyTorch's to the
last few ulps. ``state_dict()`` holds only JSON-serialisable values and no optimizer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from gradwise.optim.optimizer import Optimizer, check_number

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "StepLR",
]


def _positive_int(op: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{op}: expected a positive integer {name}, but got {value!r}")
    return value


def _real(op: str, name: str, value: object) -> float:
    return check_number(op, name, value)


class LRScheduler:
    """Base class of the learning-rate schedulers.

    Subclasses implement ``get_lr()``, the rates for the current ``last_epoch``.

    Args:
        optimizer: The optimizer whose groups' ``"lr"`` this scheduler sets.
        last_epoch: Index of the last epoch seen; -1 (the default) starts afresh. Other
            values resume and need ``"initial_lr"`` in every group.

    Attributes:
        optimizer: The optimizer.
        base_lrs: Each group's ``initial_lr``.
        last_epoch: Number of ``step()`` calls since epoch 0 (0 right after construction).
    """

    optimizer: Optimizer
    base_lrs: list[float]
    last_epoch: int
    _step_count: int
    _last_lr: list[float]
    _is_initial: bool = False
    _unsaved: ClassVar[frozenset[str]] = frozenset({"optimizer", "_is_initial"})

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{i}] "
                        "when resuming with last_epoch >= 0; load the optimizer's state first"
                    )
        self.base_lrs = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of each group at ``last_epoch`` (called by ``step()``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def step(self) -> None:
        """Advance one epoch (or batch) and set each group's ``"lr"`` (after optimizer.step())."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        groups = self.optimizer.param_groups
        for group, lr in zip(groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()`` (or by construction)."""
        return list(self._last_lr)

    def _lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: JSON-serialisable values, no reference to the optimizer."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k not in type(self)._unsaved}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()`` (possibly after a JSON round trip).

        Raises:
            ValueError: ``state_dict`` has keys this scheduler does not know, or lacks
                ``last_epoch``.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}"
            )
        known = set(self.state_dict())
        unknown = sorted(set(state_dict) - known)
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unexpected keys {unknown}")
        if "last_epoch" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: missing key 'last_epoch'")
        for k, v in state_dict.items():
            setattr(self, k, copy.deepcopy(v))


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch).

    Args:
        optimizer: The optimizer.
        lr_lambda: A function of the epoch index, or one per parameter group.
        last_epoch: Index of the last epoch (-1 starts afresh).

    The functions are not part of ``state_dict()``.
    """

    _unsaved: ClassVar[frozenset[str]] = frozenset({"optimizer", "_is_initial", "lr_lambdas"})

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        n = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        if callable(lr_lambda):
            self.lr_lambdas: list[Callable[[int], float]] = [lr_lambda] * n
        else:
            lambdas = list(lr_lambda)
            if len(lambdas) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas, but got {len(lambdas)}")
            self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``base_lr * lr_lambda(last_epoch)`` for each group."""
        return [
            base * fn(self.last_epoch)
            for fn, base in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size) (PyTorch's recursive form).

    Args:
        optimizer: The optimizer.
        step_size: Epochs between decays.
        gamma: Multiplicative decay factor.
        last_epoch: Index of the last epoch (-1 starts afresh).
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _real("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma`` when the epoch is a nonzero multiple of step_size."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch) (PyTorch's recursive form).

    Args:
        optimizer: The optimizer.
        milestones: Epoch indices at which to decay (a repeated milestone decays twice).
        gamma: Multiplicative decay factor.
        last_epoch: Index of the last epoch (-1 starts afresh).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        ms = list(milestones)
        for m in ms:
            if isinstance(m, bool) or not isinstance(m, int):
                raise TypeError(f"MultiStepLR: milestones must be ints, got {m!r}")
        self.milestones = sorted(ms)
        self.gamma = _real("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma ** n`` at an epoch listed ``n`` times."""
        n = self.milestones.count(self.last_epoch)
        if n == 0:
            return self._lrs()
        return [lr * self.gamma**n for lr in self._lrs()]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch (PyTorch's recursive form).

    Args:
        optimizer: The optimizer.
        gamma: Multiplicative decay factor per epoch.
        last_epoch: Index of the last epoch (-1 starts afresh).
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _real("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times ``gamma`` (unchanged at construction)."""
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2.

    PyTorch's recursive form, which past ``T_max`` keeps following the cosine up and
    down (period ``2 T_max``) rather than restarting.

    Args:
        optimizer: The optimizer.
        T_max: Half-period, in epochs.
        eta_min: Minimum learning rate.
        last_epoch: Index of the last epoch (-1 starts afresh).
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _real("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The next rate on the cosine, from the current one (PyTorch's recurrence)."""
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if self._step_count == 1 and t > 0:
            return [
                lo + (base - lo) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs
            ]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                for base, lr in zip(self.base_lrs, self._lrs(), strict=True)
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - lo) + lo for lr in self._lrs()]


class LinearLR(LRScheduler):
    """lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters).

    PyTorch's recursive form: each step multiplies the current rate by the ratio of
    consecutive factors.

    Args:
        optimizer: The optimizer.
        start_factor: Factor at epoch 0, in (0, 1].
        end_factor: Factor from ``total_iters`` on, in [0, 1].
        total_iters: Epochs over which the factor changes.
        last_epoch: Index of the last epoch (-1 starts afresh).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        start = _real("LinearLR", "start_factor", start_factor)
        end = _real("LinearLR", "end_factor", end_factor)
        if not 0.0 < start <= 1.0:
            raise ValueError(
                "LinearLR: Starting multiplicative factor expected to be greater than 0 and "
                f"less or equal to 1, got {start}"
            )
        if not 0.0 <= end <= 1.0:
            raise ValueError(
                f"LinearLR: Ending multiplicative factor expected to be between 0 and 1, got {end}"
            )
        self.start_factor = start
        self.end_factor = end
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times the ratio of this epoch's factor to the previous one."""
        t, n, s, e = self.last_epoch, self.total_iters, self.start_factor, self.end_factor
        if t == 0:
            return [lr * s for lr in self._lrs()]
        if self._is_initial or t > n:
            return self._lrs()
        ratio = 1.0 + (e - s) / (n * s + (t - 1) * (e - s))
        return [lr * ratio for lr in self._lrs()]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: lr warms up from max_lr/div_factor to max_lr, then anneals down.

    Momentum (``momentum``, or ``betas[0]`` for Adam-style optimizers) cycles the other
    way between ``max_momentum`` and ``base_momentum``. Stepping past ``total_steps``
    raises ``ValueError``, as in PyTorch.

    Args:
        optimizer: The optimizer.
        max_lr: Peak learning rate, one value or one per group.
        total_steps: Number of steps in the cycle (or give ``epochs`` and
            ``steps_per_epoch``).
        epochs: Number of epochs, with ``steps_per_epoch``.
        steps_per_epoch: Steps per epoch, with ``epochs``.
        pct_start: Fraction of the cycle spent increasing the learning rate.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: Cycle the momentum inversely to the learning rate.
        base_momentum: Lower momentum bound, one value or one per group.
        max_momentum: Upper momentum bound, one value or one per group.
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: Use a third phase that anneals to ``min_lr`` after a symmetric
            warm-up and cool-down.
        last_epoch: Index of the last step (-1 starts afresh).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        op = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{op}: {type(optimizer).__name__} is not an Optimizer")
        if total_steps is not None:
            self.total_steps = _positive_int(op, "total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            e = _positive_int(op, "epochs", epochs)
            self.total_steps = e * _positive_int(op, "steps_per_epoch", steps_per_epoch)
        else:
            raise ValueError(
                f"{op}: You must define either total_steps OR (epochs AND steps_per_epoch)"
            )
        pct = _real(op, "pct_start", pct_start)
        if not 0.0 <= pct <= 1.0:
            raise ValueError(f"{op}: Expected float between 0 and 1 pct_start, but got {pct}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"{op}: anneal_strategy must be one of 'cos' or 'linear', instead got "
                f"{anneal_strategy!r}"
            )
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        up, down = "max_momentum", "base_momentum"
        if three_phase:
            self._schedule_phases: list[dict[str, Any]] = [
                self._phase(pct * n - 1, "initial_lr", "max_lr", up, down),
                self._phase(
                    2 * pct * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"
                ),
                self._phase(n - 1, "initial_lr", "min_lr", up, up),
            ]
        else:
            self._schedule_phases = [
                self._phase(pct * n - 1, "initial_lr", "max_lr", up, down),
                self._phase(n - 1, "max_lr", "min_lr", down, up),
            ]
        groups = optimizer.param_groups
        max_lrs = self._per_group("max_lr", max_lr, len(groups))
        div = _real(op, "div_factor", div_factor)
        final_div = _real(op, "final_div_factor", final_div_factor)
        if last_epoch == -1:
            for group, top in zip(groups, max_lrs, strict=True):
                group["initial_lr"] = top / div
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = False
        if self.cycle_momentum:
            defaults = optimizer.defaults
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError(
                    f"{op}: optimizer must support momentum or beta1 with `cycle_momentum` "
                    f"option enabled ({type(optimizer).__name__} has neither)"
                )
            self.use_beta1 = "betas" in defaults
            highs = self._per_group("max_momentum", max_momentum, len(groups))
            lows = self._per_group("base_momentum", base_momentum, len(groups))
            if last_epoch == -1:
                for group, hi, lo in zip(groups, highs, lows, strict=True):
                    if self.use_beta1:
                        group["betas"] = (hi, *group["betas"][1:])
                    else:
                        group["momentum"] = hi
                    group["max_momentum"] = hi
                    group["base_momentum"] = lo
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _phase(end: float, lr0: str, lr1: str, m0: str, m1: str) -> dict[str, Any]:
        return {
            "end_step": float(end),
            "start_lr": lr0,
            "end_lr": lr1,
            "start_momentum": m0,
            "end_momentum": m1,
        }

    @staticmethod
    def _per_group(name: str, value: float | Sequence[float], n: int) -> list[float]:
        if isinstance(value, list | tuple):
            if len(value) != n:
                raise ValueError(
                    f"OneCycleLR: expected {n} values for {name} (one per param group), got "
                    f"{len(value)}"
                )
            return [_real("OneCycleLR", name, v) for v in value]
        return [_real("OneCycleLR", name, value)] * n

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        """The rate (and, with cycle_momentum, the momentum it sets) at this step."""
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(
                f"OneCycleLR: Tried to step {t} times. The specified number of total steps is "
                f"{self.total_steps}"
            )
        lrs: list[float] = []
        phases = self._schedule_phases
        last = len(phases) - 1
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(phases):
                end = phase["end_step"]
                if t <= end or i == last:
                    pct = (t - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        m = self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                        if self.use_beta1:
                            group["betas"] = (m, *group["betas"][1:])
                        else:
                            group["momentum"] = m
                    break
                start = end
        return lrs
