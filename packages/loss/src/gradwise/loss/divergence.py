"""Kullback-Leibler divergence on log-probabilities."""

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


class KLDivLoss(Op):
    """l = y (log y - x), 0 where y = 0 (log_target: l = e^y (y - x));

    dx = -grad y (-grad e^y),  dy = grad (log y + 1 - x) (log_target: grad e^y (y - x + 1)).
    """

    __slots__ = ("count", "log_target", "need_dy", "reduction", "s_x", "s_y")
    saves = (0, 1)

    def forward(
        self, x: Array, y: Array, *, reduction: str, log_target: bool, need_dy: bool
    ) -> Array:
        """The reduced divergence; saves x and y."""
        y = cast(y, x.dtype)
        if log_target:
            losses = np.exp(y) * (y - x)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
            losses = ylogy.astype(x.dtype, copy=False) - y * x
            # xlogy(y, y) is NaN for NaN y and y * log(y) NaN for y < 0, as in PyTorch
            losses = np.where(np.isnan(y) | (y < 0), np.nan, losses).astype(x.dtype, copy=False)
        if reduction == "batchmean":
            self.count = x.shape[0] if x.ndim else 1
            out = reduce(losses, "sum", x.dtype)
            out = np.asarray(out / self.count if self.count else np.nan, dtype=x.dtype)
            self.reduction = "mean"
        else:
            self.count = x.size
            out = reduce(losses, reduction, x.dtype)
            self.reduction = reduction
        self.s_x, self.s_y = x, y
        self.log_target, self.need_dy = log_target, need_dy
        return out

    def jvp(self, out: Array, tx: Array | None, ty: Array | None) -> Array | None:
        """Forward-mode tangent: dl = -p dx + (log y + 1 - x) dy (log_target: p (y - x + 1) dy)."""
        x, y = self.s_x, self.s_y
        p = np.exp(y) if self.log_target else y
        cy = None
        if ty is not None:
            if self.log_target:
                cy = p * (y - x + 1.0)
            else:
                with np.errstate(divide="ignore"):
                    cy = np.log(y) + 1.0 - x
        el = lin((tx, np.negative(p)), (None if ty is None else cast(ty, x.dtype), cy))
        if el is None:
            return None
        return reduce_tangent(el, self.reduction, self.count, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """(dx, dy) from the saved x and y."""
        x, y = self.s_x, self.s_y
        g = scale(grad, self.reduction, self.count)
        p = np.exp(y) if self.log_target else y
        dx = -(g * p)
        dy: Array | None = None
        if self.need_dy:
            if self.log_target:
                dy = g * (p * (y - x + 1.0))
            else:
                with np.errstate(divide="ignore"):
                    dy = g * (np.log(y) + 1.0 - x)
        return dx, dy


def kl_div(
    input: Tensor,
    target: ArrayLike,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """l = target (log target - input) element-wise, with ``input`` log-probabilities.

    As in PyTorch, ``'mean'`` is the mean over all elements; ``'batchmean'`` divides the
    sum by the batch size ``input.shape[0]`` (the true KL divergence per sample). Where
    the target is 0 its term is 0. With ``log_target=True`` the target is given as
    log-probabilities: l = exp(target) (target - input).

    Args:
        input: log-probabilities, float32 or float64.
        target: probabilities (or log-probabilities) of exactly ``input``'s shape.
        reduction: ``'mean'`` (default), ``'batchmean'``, ``'sum'`` or ``'none'``.
        log_target: whether ``target`` is in log space.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: mismatched shapes or an unknown ``reduction``.
        TypeError: non-float input.
    """
    op = "kl_div"
    x = float_input(input, op)
    t = float_target(target, x, op)
    check_reduction(reduction, op, ("batchmean",))
    return KLDivLoss.apply(
        x, t, reduction=reduction, log_target=bool(log_target), need_dy=t.requires_grad
    )
