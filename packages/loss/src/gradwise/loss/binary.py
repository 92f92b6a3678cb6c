"""Binary cross-entropy, on probabilities and (stably) on logits."""

from __future__ import annotations

import numpy as np

from gradwise.autograd._tangents import lin, reduce_tangent
from gradwise.autograd.function import Grads, Op
from gradwise.autograd.tensor import Tensor
from gradwise.core.dtypes import Array
from gradwise.loss._common import (
    ArrayLike,
    broadcast_weight,
    cast,
    check_reduction,
    float_input,
    float_target,
    reduce,
    scale,
)

_EPS = 1e-12  # PyTorch's floor on x (1 - x) in the BCE gradient


def _clamped_logs(x: Array) -> tuple[Array, Array]:
    """(log x, log(1 - x)), each clamped at -100 as PyTorch (so x = 0 or 1 stays finite)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(x), -100.0), np.maximum(np.log1p(-x), -100.0)


def _check_unit(a: Array, op: str, name: str) -> None:
    ok = (a >= 0) & (a <= 1)  # NaN fails too, as in PyTorch
    if not ok.all():
        i = int(np.argmax(~ok.reshape(-1)))
        raise ValueError(
            f"{op}: all elements of {name} should be between 0 and 1, got {a.reshape(-1)[i]!r} "
            f"at flat position {i}"
        )


class BCELoss(Op):
    """l = -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100));

    dx = grad w (x - y) / max(x (1 - x), 1e-12) (PyTorch's formula),
    dy = grad w (max(log(1 - x), -100) - max(log x, -100)).
    """

    __slots__ = ("need_dy", "reduction", "s_w", "s_x", "s_y")
    saves = (0, 1)

    def forward(
        self, x: Array, y: Array, *, weight: Array | None, reduction: str, need_dy: bool
    ) -> Array:
        """The reduced loss; saves x, y and the weights for backward."""
        y = cast(y, x.dtype)
        log_x, log_1mx = _clamped_logs(x)
        losses = -(y * log_x + (1.0 - y) * log_1mx)
        if weight is not None:
            losses = losses * weight
        self.s_x, self.s_y, self.s_w = x, y, weight
        self.reduction, self.need_dy = reduction, need_dy
        return reduce(losses, reduction, x.dtype)

    def jvp(self, out: Array, tx: Array | None, ty: Array | None) -> Array | None:
        """Forward-mode tangent: backward's element-wise factors times the tangents, reduced."""
        x, y, w = self.s_x, self.s_y, self.s_w
        cx = cy = None
        if tx is not None:
            cx = (x - y) / np.maximum(x * (1.0 - x), x.dtype.type(_EPS))
        if ty is not None:
            log_x, log_1mx = _clamped_logs(x)
            cy = log_1mx - log_x
        el = lin((tx, cx), (None if ty is None else cast(ty, x.dtype), cy))
        if el is None:
            return None
        if w is not None:
            el = el * w
        return reduce_tangent(el, self.reduction, x.size, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """(dx, dy) from the saved x and y."""
        x, y, w = self.s_x, self.s_y, self.s_w
        g = scale(grad, self.reduction, x.size)
        if w is not None:
            g = g * w
        dx = g * (x - y) / np.maximum(x * (1.0 - x), x.dtype.type(_EPS))
        dy: Array | None = None
        if self.need_dy:
            log_x, log_1mx = _clamped_logs(x)
            dy = g * (log_1mx - log_x)
        return dx, dy


def binary_cross_entropy(
    input: Tensor,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """l = -w (y log x + (1 - y) log(1 - x)), logs clamped at -100 as in PyTorch.

    Args:
        input: probabilities in ``[0, 1]``, float32 or float64.
        target: values in ``[0, 1]`` of exactly ``input``'s shape.
        weight: optional element weights, broadcastable to ``input``'s shape.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: mismatched shapes, an unknown ``reduction``, or ``input`` or ``target``
            values outside ``[0, 1]`` (NaN included).
        TypeError: non-float input.
    """
    op = "binary_cross_entropy"
    x = float_input(input, op)
    t = float_target(target, x, op)
    check_reduction(reduction, op)
    _check_unit(x.data, op, "input")
    _check_unit(t.data, op, "target")
    w = None if weight is None else broadcast_weight(weight, x.shape, x.dtype, op, "weight")
    return BCELoss.apply(x, t, weight=w, reduction=reduction, need_dy=t.requires_grad)


class BCEWithLogitsLoss(Op):
    """l = w ((1 - y) x + (1 + (pw - 1) y) softplus(-x)), softplus(-x) = max(-x, 0) + log1p(e^-|x|);

    dx = grad w ((1 + (pw - 1) y) sigmoid(x) - pw y),  dy = grad w ((pw - 1) softplus(-x) - x).
    Without ``pos_weight`` (pw = 1) this is the familiar max(x, 0) - x y + log1p(e^-|x|).
    """

    __slots__ = ("need_dy", "reduction", "s_e", "s_pw", "s_w", "s_x", "s_y")
    saves = (0, 1)

    def forward(
        self,
        x: Array,
        y: Array,
        *,
        weight: Array | None,
        pos_weight: Array | None,
        reduction: str,
        need_dy: bool,
    ) -> Array:
        """The reduced loss, computed without overflow; saves x, y and the weights."""
        y = cast(y, x.dtype)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows; reused for sigmoid in backward
        sp_neg = np.maximum(-x, 0.0) + np.log1p(e)
        if pos_weight is None:
            losses = (1.0 - y) * x + sp_neg
        else:
            losses = (1.0 - y) * x + (1.0 + (pos_weight - 1.0) * y) * sp_neg
        if weight is not None:
            losses = losses * weight
        self.s_x, self.s_y, self.s_w, self.s_pw, self.s_e = x, y, weight, pos_weight, e
        self.reduction, self.need_dy = reduction, need_dy
        return reduce(losses, reduction, x.dtype)

    def jvp(self, out: Array, tx: Array | None, ty: Array | None) -> Array | None:
        """Forward-mode tangent: backward's element-wise factors times the tangents, reduced."""
        x, y, w, pw, e = self.s_x, self.s_y, self.s_w, self.s_pw, self.s_e
        cx = cy = None
        if tx is not None:
            sig = np.where(x >= 0, 1.0, e) / (1.0 + e)
            cx = sig - y if pw is None else (1.0 + (pw - 1.0) * y) * sig - pw * y
        if ty is not None:
            cy = -x if pw is None else (pw - 1.0) * _softplus_neg(x) - x
        el = lin((tx, cx), (None if ty is None else cast(ty, x.dtype), cy))
        if el is None:
            return None
        if w is not None:
            el = el * w
        return reduce_tangent(el, self.reduction, x.size, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """(dx, dy) from the saved x, y and e = exp(-|x|)."""
        x, y, w, pw, e = self.s_x, self.s_y, self.s_w, self.s_pw, self.s_e
        g = scale(grad, self.reduction, x.size)
        if w is not None:
            g = g * w
        sig = np.where(x >= 0, 1.0, e) / (1.0 + e)  # sigmoid(x) without overflow
        dx = g * (sig - y) if pw is None else g * ((1.0 + (pw - 1.0) * y) * sig - pw * y)
        dy: Array | None = None
        if self.need_dy:
            dy = g * (-x) if pw is None else g * ((pw - 1.0) * _softplus_neg(x) - x)
        return dx, dy


def _softplus_neg(x: Array) -> Array:
    """softplus(-x) = log(1 + e^-x) without overflow for any x."""
    return np.maximum(-x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    reduction: str = "mean",
    pos_weight: ArrayLike | None = None,
) -> Tensor:
    """l = -w (pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), computed stably.

    Finite loss and gradient for any finite logits (|x| = 1e4 included).

    Args:
        input: logits, float32 or float64.
        target: values (usually in ``[0, 1]``) of exactly ``input``'s shape.
        weight: optional element weights, broadcastable to ``input``'s shape.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        pos_weight: optional weight of the positive term, broadcast against ``input``
            from the last (class) axis, as in PyTorch: shape ``(C,)`` for ``(N, C)``.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: mismatched shapes, a weight that does not broadcast to the input, or
            an unknown ``reduction``.
        TypeError: non-float input.
    """
    op = "binary_cross_entropy_with_logits"
    x = float_input(input, op)
    t = float_target(target, x, op)
    check_reduction(reduction, op)
    shape, dtype = x.shape, x.dtype
    w = None if weight is None else broadcast_weight(weight, shape, dtype, op, "weight")
    pw = (
        None if pos_weight is None else broadcast_weight(pos_weight, shape, dtype, op, "pos_weight")
    )
    return BCEWithLogitsLoss.apply(
        x, t, weight=w, pos_weight=pw, reduction=reduction, need_dy=t.requires_grad
    )
