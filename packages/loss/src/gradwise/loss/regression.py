"""Regression losses: MSE, L1, Huber and smooth L1, each one fused graph node."""

from __future__ import annotations

import numpy as np

from gradwise.autograd._tangents import lin, reduce_tangent
from gradwise.autograd.function import Grads, Op
from gradwise.autograd.tensor import Tensor
from gradwise.core.dtypes import Array
from gradwise.loss._common import (
    ArrayLike,
    cast,
    check_reduction,
    float_input,
    float_target,
    reduce,
    scale,
)


class Regression(Op):
    """l = f(x - t) element-wise, then reduced;  dx = grad f'(x - t),  dt = -dx

    ``kind`` picks f: ``"mse"`` d^2, ``"l1"`` |d|, ``"huber"`` (parameter delta) and
    ``"smooth_l1"`` (parameter beta), with PyTorch's formulas and subgradients.
    The subclasses below only name the node (``grad_fn.name()`` is ``"MSELossBackward"``).
    """

    __slots__ = ("kind", "param", "reduction", "s_d")

    def forward(self, x: Array, t: Array, *, kind: str, param: float, reduction: str) -> Array:
        """The reduced loss; saves d = x - t."""
        d = x - cast(t, x.dtype)
        self.s_d, self.kind, self.param, self.reduction = d, kind, param, reduction
        if kind == "mse":
            losses = d * d
        elif kind == "l1":
            losses = np.abs(d)
        else:
            a = np.abs(d)
            p = x.dtype.type(param)
            if kind == "huber":
                losses = np.where(a < p, 0.5 * d * d, p * (a - 0.5 * p))
            elif param == 0.0:
                losses = a
            else:
                losses = np.where(a < p, 0.5 * d * d / p, a - 0.5 * p)
        return reduce(losses, reduction, x.dtype)

    def jvp(self, out: Array, tx: Array | None, tt: Array | None) -> Array | None:
        """Forward-mode tangent: f'(d) (dx - dt), reduced."""
        d = self.s_d
        dd = lin((tx, None), (None if tt is None else cast(tt, d.dtype), -1))
        if dd is None:
            return None
        kind = self.kind
        if kind == "mse":
            el = 2.0 * d * dd
        elif kind == "l1" or (kind == "smooth_l1" and self.param == 0.0):
            el = np.sign(d) * dd
        else:
            p = d.dtype.type(self.param)
            f = np.clip(d, -p, p) if kind == "huber" else np.where(np.abs(d) < p, d / p, np.sign(d))
            el = f * dd
        return reduce_tangent(el, self.reduction, d.size, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """(dx, dt) from the saved difference d."""
        d = self.s_d
        g = scale(grad, self.reduction, d.size)
        kind = self.kind
        if kind == "mse":
            dx = (2.0 * g) * d
        elif kind == "l1":
            dx = g * np.sign(d)
        else:
            p = d.dtype.type(self.param)
            if kind == "huber":
                dx = g * np.clip(d, -p, p)
            elif self.param == 0.0:
                dx = g * np.sign(d)
            else:
                dx = g * np.where(np.abs(d) < p, d / p, np.sign(d))
        return dx, -dx


class MSELoss(Regression):
    """The node of :func:`mse_loss`."""

    __slots__ = ()


class L1Loss(Regression):
    """The node of :func:`l1_loss`."""

    __slots__ = ()


class HuberLoss(Regression):
    """The node of :func:`huber_loss`."""

    __slots__ = ()


class SmoothL1Loss(Regression):
    """The node of :func:`smooth_l1_loss`."""

    __slots__ = ()


_NODES: dict[str, type[Regression]] = {
    "mse": MSELoss,
    "l1": L1Loss,
    "huber": HuberLoss,
    "smooth_l1": SmoothL1Loss,
}


def _run(op: str, x: object, t: object, kind: str, param: float, reduction: str) -> Tensor:
    xt = float_input(x, op)
    tt = float_target(t, xt, op)
    check_reduction(reduction, op)
    return _NODES[kind].apply(xt, tt, kind=kind, param=param, reduction=reduction)


def mse_loss(input: Tensor, target: ArrayLike, *, reduction: str = "mean") -> Tensor:
    """l = (x - t)^2, reduced;  dx = 2 (x - t) grad.

    Args:
        input: predictions, float32 or float64.
        target: values of exactly ``input``'s shape (a Tensor or a NumPy array).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
        The loss in ``input``'s dtype: 0-d, or ``input``'s shape for ``'none'``.

    Raises:
        ValueError: if the shapes differ or ``reduction`` is unknown.
        TypeError: for non-float inputs.
    """
    return _run("mse_loss", input, target, "mse", 0.0, reduction)


def l1_loss(input: Tensor, target: ArrayLike, *, reduction: str = "mean") -> Tensor:
    """l = |x - t|, reduced;  dx = sign(x - t) grad (0 where x == t, as PyTorch).

    Args:
        input: predictions, float32 or float64.
        target: values of exactly ``input``'s shape.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: if the shapes differ or ``reduction`` is unknown.
        TypeError: for non-float inputs.
    """
    return _run("l1_loss", input, target, "l1", 0.0, reduction)


def huber_loss(
    input: Tensor, target: ArrayLike, *, reduction: str = "mean", delta: float = 1.0
) -> Tensor:
    """l = d^2 / 2 if |d| < delta else delta (|d| - delta / 2), d = x - t;  dx = clip(d, ±delta).

    Args:
        input: predictions, float32 or float64.
        target: values of exactly ``input``'s shape.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        delta: where the loss turns from quadratic to linear; must be positive.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: for mismatched shapes, an unknown ``reduction`` or ``delta <= 0``.
        TypeError: for non-float inputs.
    """
    delta = float(delta)
    if not delta > 0.0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _run("huber_loss", input, target, "huber", delta, reduction)


def smooth_l1_loss(
    input: Tensor, target: ArrayLike, *, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """l = d^2 / (2 beta) if |d| < beta else |d| - beta / 2, d = x - t (beta = 0: |d|).

    Args:
        input: predictions, float32 or float64.
        target: values of exactly ``input``'s shape.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        beta: where the loss turns from quadratic to linear; must be >= 0.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: for mismatched shapes, an unknown ``reduction`` or ``beta < 0``.
        TypeError: for non-float inputs.
    """
    beta = float(beta)
    if not beta >= 0.0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    return _run("smooth_l1_loss", input, target, "smooth_l1", beta, reduction)
