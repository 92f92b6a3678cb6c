"""Multi-class losses: cross-entropy (class indices or class probabilities) and NLL.

Inputs are ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)`` with the classes on axis 1, as in
PyTorch; each node moves that axis last and flattens the rest into rows itself, so a loss
is one graph node whatever the layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.function import Grads, Op
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape
from gradwise.core.ops import fmt_shape
from gradwise.loss._common import (
    ArrayLike,
    as_target,
    cast,
    check_reduction,
    class_weight,
    float_input,
)

_add_reduce: Any = np.add.reduce  # np.sum without its Python-level dispatch (same sums)
_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)

# ---- layout: classes on axis 1 <-> rows of (M, C) -----------------------------------------


def _layout(shape: Shape, op: str) -> tuple[int, Shape]:
    """(C, the shape of a class-index target) for an input of ``shape``."""
    if len(shape) == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension, got shape ()")
    if len(shape) == 1:
        return shape[0], ()
    return shape[1], shape[:1] + shape[2:]


def _to_rows(x: Array) -> Array:
    """(C,) -> (1, C); (N, C) as is; (N, C, d1, ...) -> (N d1 ..., C)."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    c = x.shape[1]
    return np.moveaxis(x, 1, -1).reshape(-1, c)


def _from_rows(x2: Array, shape: Shape) -> Array:
    """The inverse of :func:`_to_rows` for an input of ``shape``."""
    if len(shape) <= 2:
        return x2.reshape(shape)
    moved = shape[:1] + shape[2:] + shape[1:2]
    return np.moveaxis(x2.reshape(moved), -1, 1)


def _check_label_smoothing(eps: object, op: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise TypeError(f"{op}: label_smoothing must be a real number, got {type(eps).__name__}")
    value = float(eps)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {value}")
    return value


def _class_target(target: Tensor, x_shape: Shape, expected: Shape, op: str) -> Array:
    """The integer target array, checked against the input's shape."""
    t = target.data
    if t.dtype.kind == "f" and t.shape != expected:
        raise ValueError(
            f"{op}: target shape {fmt_shape(t.shape)} does not match input shape "
            f"{fmt_shape(x_shape)}; expected {fmt_shape(x_shape)} for class probabilities "
            f"or {fmt_shape(expected)} for class indices"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: class-index targets must be integers, got dtype {t.dtype} (for class "
            f"probabilities pass a float target of the input's shape {fmt_shape(x_shape)})"
        )
    if t.shape != expected:
        raise ValueError(
            f"{op}: target shape {fmt_shape(t.shape)} does not match input shape "
            f"{fmt_shape(x_shape)}; expected target shape {fmt_shape(expected)}"
        )
    return t


def _rename(exc: IndexError, op: str) -> IndexError:
    """The kernel's IndexError, re-worded to name the public op."""
    msg = str(exc)
    _, sep, rest = msg.partition(": ")
    return IndexError(f"{op}: {rest}" if sep else f"{op}: {msg}")


def _row_grad(grad: Array, reduction: str, rows: int, denom: float) -> Array:
    """Per-row upstream gradient (float64) of the reduced output."""
    if reduction == "none":
        return np.ascontiguousarray(grad, dtype=np.float64).reshape(rows)
    g = float(grad)
    if reduction == "mean":
        g = g / denom if denom else float("nan")
    return np.full(rows, g)


def _reduce_rows(
    losses: Array, reduction: str, denom: float, shape: Shape, dtype: np.dtype[Any]
) -> Array:
    """Per-row losses reduced: reshaped to ``shape``, summed, or summed over ``denom``."""
    if reduction == "none":
        return cast(losses, dtype).reshape(shape)
    # float64 first: add.reduce's own cast to float64 costs ~1 us of buffering setup
    total = float(_add_reduce(losses.astype(np.float64, copy=False)))
    if reduction == "mean":
        total = total / denom if denom else float("nan")
    return np.asarray(total, dtype=dtype)


# ---- cross-entropy with class indices: the fused kernel --------------------------------


class CrossEntropyLoss(Op):
    """l_i = (1 - eps) w[t_i] (lse_i - x_i[t_i]) + eps / C sum_c w_c (lse_i - x_ic);

    dx_i = g_i ((1 - eps) w[t_i] (p_i - onehot) + eps / C (W p_i - w)), p = softmax(x_i).
    Ignored rows contribute 0 to the loss and to the mean's denominator, sum_i w[t_i].
    Forward and backward are one pass each of ``gradwise.core.ops.softmax_cross_entropy``.
    """

    __slots__ = (
        "denom",
        "ignore_index",
        "reduction",
        "s_lse",
        "s_t",
        "s_w",
        "s_x2",
        "shape",
        "smoothing",
    )
    saves = (0,)

    def forward(
        self,
        x: Array,
        *,
        target: Array,
        weight: Array | None,
        ignore_index: int,
        label_smoothing: float,
        reduction: str,
    ) -> Array:
        """Per-row losses from the fused kernel, reduced; saves the rows and their logsumexp."""
        x2 = _to_rows(x)
        t = target.reshape(-1)
        try:
            losses, lse, tw = cops.softmax_cross_entropy(
                x2, t, weight, ignore_index, label_smoothing
            )
        except IndexError as exc:
            raise _rename(exc, "cross_entropy") from None
        self.denom = float(_add_reduce(tw)) if reduction == "mean" else 1.0
        self.s_x2, self.s_t, self.s_w, self.s_lse = x2, t, weight, lse
        self.shape, self.reduction = x.shape, reduction
        self.ignore_index, self.smoothing = ignore_index, label_smoothing
        return _reduce_rows(losses, reduction, self.denom, target.shape, x.dtype)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: per row, the fused backward's dl/dx (g = 1) dotted with tx."""
        if tx is None:
            return None
        x2 = self.s_x2
        ones = np.ones(x2.shape[0])
        d = cops.softmax_cross_entropy_backward(
            x2, self.s_t, self.s_lse, ones, self.s_w, self.ignore_index, self.smoothing
        )
        rows = np.einsum("ij,ij->i", d, _to_rows(tx), dtype=np.float64)
        return _reduce_rows(rows, self.reduction, self.denom, out.shape, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """dx from the fused backward kernel, back in the input's layout."""
        x2 = self.s_x2
        g = _row_grad(grad, self.reduction, x2.shape[0], self.denom)
        dx2 = cops.softmax_cross_entropy_backward(
            x2, self.s_t, self.s_lse, g, self.s_w, self.ignore_index, self.smoothing
        )
        return (_from_rows(dx2, self.shape),)


# ---- cross-entropy with class probabilities --------------------------------------------


class SoftCrossEntropyLoss(Op):
    """l_i = -sum_c w_c q_ic log_softmax(x_i)_c, q = (1 - eps) p + eps / C;

    dx_i = g_i (softmax(x_i) sum_c w_c q_ic - w q_i),  dp_i = -g_i (1 - eps) w log_softmax(x_i).
    The mean divides by the number of rows (input.size / C), as PyTorch.
    """

    __slots__ = (
        "need_dp",
        "reduction",
        "rows",
        "s_ls",
        "s_q",
        "s_w",
        "s_wq",
        "shape",
        "smoothing",
    )

    def forward(
        self,
        x: Array,
        p: Array,
        *,
        weight: Array | None,
        label_smoothing: float,
        reduction: str,
        out_shape: Shape,
        need_dp: bool,
    ) -> Array:
        """Per-row losses from log_softmax, reduced; saves log_softmax and w q."""
        x2 = _to_rows(x)
        c = x2.shape[1]
        q = _to_rows(cast(p, x.dtype))
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / c
        w = None if weight is None else weight.astype(x.dtype)
        wq = q if w is None else q * w
        ls = cops.log_softmax(np.ascontiguousarray(x2), -1)
        losses = -np.einsum("ij,ij->i", wq, ls, dtype=np.float64)
        self.s_ls, self.s_wq, self.s_w, self.s_q = ls, wq, w, q
        self.shape, self.reduction, self.rows = x.shape, reduction, x2.shape[0]
        self.smoothing, self.need_dp = label_smoothing, need_dp
        return _reduce_rows(losses, reduction, float(self.rows), out_shape, x.dtype)

    def jvp(self, out: Array, tx: Array | None, tp: Array | None) -> Array | None:
        """Forward-mode tangent: dl_i = -sum_c (w q)_ic dls_ic - (1 - eps) sum_c w_c dp_ic ls_ic,
        dls = dx - sum(softmax(x) dx).
        """
        ls, wq, w = self.s_ls, self.s_wq, self.s_w
        rows = np.zeros(self.rows)
        if tx is not None:
            t2 = _to_rows(tx)
            dls = t2 - np.sum(np.exp(ls) * t2, axis=1, keepdims=True)
            rows -= np.einsum("ij,ij->i", wq, dls, dtype=np.float64)
        if tp is not None:
            dq = _to_rows(cast(tp, ls.dtype)) * (1.0 - self.smoothing)
            if w is not None:
                dq = dq * w
            rows -= np.einsum("ij,ij->i", dq, ls, dtype=np.float64)
        return _reduce_rows(rows, self.reduction, float(self.rows), out.shape, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """(dx, dp) from the saved log_softmax and w q."""
        ls, wq, w = self.s_ls, self.s_wq, self.s_w
        g = _row_grad(grad, self.reduction, self.rows, float(self.rows)).astype(ls.dtype)
        g = g[:, None]
        total = wq.sum(axis=1, keepdims=True)
        dx2 = g * (np.exp(ls) * total - wq)
        dp: Array | None = None
        if self.need_dp:
            dp2 = (-(1.0 - self.smoothing) * g) * ls
            if w is not None:
                dp2 = dp2 * w
            dp = _from_rows(dp2, self.shape)
        return _from_rows(dx2, self.shape), dp


def cross_entropy(
    input: Tensor,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """l = -sum_c w_c y_c log softmax(x)_c over the class axis 1, reduced.

    ``target`` holds class indices (an integer tensor or array of the input's shape without
    axis 1) or class probabilities (a float tensor of the input's shape). With indices the
    loss and its gradient are one fused kernel pass each; ``'mean'`` divides by the sum of
    ``weight[target]`` over rows not equal to ``ignore_index`` (NaN if there are none).
    With probabilities ``'mean'`` divides by the number of rows. ``label_smoothing`` mixes
    the target with the uniform distribution: ``(1 - eps) y + eps / C``.

    Args:
        input: logits, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``, float32 or float64.
        target: class indices ``()``, ``(N,)`` or ``(N, d1, ...)``, or probabilities
            of ``input``'s shape.
        weight: optional per-class weights ``(C,)``.
        ignore_index: a class index whose rows are skipped (index targets only).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        label_smoothing: in ``[0, 1]``.

    Returns:
        The loss in ``input``'s dtype: 0-d, or the target's (class-index) shape for
        ``'none'``.

    Raises:
        ValueError: mismatched shapes, an unknown ``reduction``, ``label_smoothing`` out
            of range.
        TypeError: non-float input, float targets of the class-index shape.
        IndexError: a class index outside ``[0, C)`` that is not ``ignore_index``.
    """
    if (
        type(input) is Tensor
        and type(target) is Tensor
        and weight is None
        and type(reduction) is str
        and (reduction == "mean" or reduction == "sum")
        and (type(label_smoothing) is float or type(label_smoothing) is int)
        and label_smoothing == 0
    ):
        # the common case (a training step's loss) in a few reads, without the checks'
        # calls: float logits (N, C) against int64 class indices (N,)
        xd, td = input.data, target.data
        dt = xd.dtype
        if (
            (dt is _F32 or dt is _F64)
            and xd.ndim == 2
            and td.dtype is _I64
            and td.shape == xd.shape[:1]
        ):
            return CrossEntropyLoss.apply(
                input,
                target=td,
                weight=None,
                ignore_index=int(ignore_index),
                label_smoothing=0.0,
                reduction=reduction,
            )
    op = "cross_entropy"
    x = float_input(input, op)
    check_reduction(reduction, op)
    eps = _check_label_smoothing(label_smoothing, op)
    c, expected = _layout(x.data.shape, op)
    t = as_target(target, op)
    w = class_weight(weight, c, op)
    if t.data.dtype.kind == "f" and t.data.shape == x.data.shape:
        return SoftCrossEntropyLoss.apply(
            x,
            t,
            weight=w,
            label_smoothing=eps,
            reduction=reduction,
            out_shape=expected,
            need_dp=t.requires_grad,
        )
    ti = _class_target(t, x.data.shape, expected, op)
    return CrossEntropyLoss.apply(
        x,
        target=ti,
        weight=w,
        ignore_index=int(ignore_index),
        label_smoothing=eps,
        reduction=reduction,
    )


# ---- negative log-likelihood on log-probabilities --------------------------------------


class NLLLoss(Op):
    """l_i = -w[t_i] x_i[t_i] (0 where t_i == ignore_index);  dx_i[t_i] = -g_i w[t_i]

    ``'mean'`` divides by sum_i w[t_i] over the rows not ignored.
    """

    __slots__ = ("denom", "reduction", "s_idx", "s_wt", "shape", "x2_shape")

    def forward(
        self,
        x: Array,
        *,
        target: Array,
        weight: Array | None,
        ignore_index: int,
        reduction: str,
    ) -> Array:
        """Gathered losses, reduced; saves the target indices and their weights."""
        x2 = _to_rows(x)
        m, c = x2.shape
        t = target.reshape(-1).astype(np.int64, copy=False)
        keep = t != ignore_index
        bad = keep & ((t < 0) | (t >= c))
        if bad.any():
            i = int(np.argmax(bad))
            raise IndexError(
                f"nll_loss: target {int(t[i])} at position {i} is out of range for {c} "
                f"classes (valid: 0 to {c - 1}, or ignore_index={ignore_index})"
            )
        idx = np.where(keep, t, 0)
        wt = keep.astype(np.float64) if weight is None else np.where(keep, weight[idx], 0.0)
        picked = x2[np.arange(m), idx] if c else np.zeros(m, dtype=x.dtype)
        losses = -wt * picked
        self.denom = float(wt.sum()) if reduction == "mean" else 1.0
        self.s_idx, self.s_wt = idx, wt
        self.shape, self.x2_shape, self.reduction = x.shape, x2.shape, reduction
        return _reduce_rows(losses, reduction, self.denom, target.shape, x.dtype)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: dl_i = -w[t_i] dx_i[t_i]."""
        if tx is None:
            return None
        m, c = self.x2_shape
        picked = _to_rows(tx)[np.arange(m), self.s_idx] if c else np.zeros(m, tx.dtype)
        return _reduce_rows(-self.s_wt * picked, self.reduction, self.denom, out.shape, out.dtype)

    def backward(self, grad: Array) -> Grads:
        """dx: the scaled weights scattered into the target positions."""
        m, c = self.x2_shape
        g = _row_grad(grad, self.reduction, m, self.denom)
        dtype = grad.dtype
        dx2 = np.zeros((m, c), dtype=dtype)
        if c:
            with np.errstate(invalid="ignore"):  # NaN mean (nothing counted) times 0
                dx2[np.arange(m), self.s_idx] = -(g * self.s_wt)
        return (_from_rows(dx2, self.shape),)


def nll_loss(
    input: Tensor,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """l = -w[t] x[t] on log-probabilities ``input`` (classes on axis 1), reduced.

    Args:
        input: log-probabilities, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target: class indices ``()``, ``(N,)`` or ``(N, d1, ...)`` (integers).
        weight: optional per-class weights ``(C,)``.
        ignore_index: a class index whose rows are skipped.
        reduction: ``'mean'`` (sum divided by the weight of the rows counted; NaN when
            none are), ``'sum'`` or ``'none'``.

    Returns:
        The loss in ``input``'s dtype.

    Raises:
        ValueError: mismatched shapes or an unknown ``reduction``.
        TypeError: non-float input or non-integer targets.
        IndexError: a class index outside ``[0, C)`` that is not ``ignore_index``.
    """
    op = "nll_loss"
    x = float_input(input, op)
    check_reduction(reduction, op)
    c, expected = _layout(x.data.shape, op)
    t = as_target(target, op)
    w = class_weight(weight, c, op)
    ti = _class_target(t, x.data.shape, expected, op)
    return NLLLoss.apply(
        x, target=ti, weight=w, ignore_index=int(ignore_index), reduction=reduction
    )
