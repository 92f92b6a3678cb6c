"""Double backward (``create_graph=True``) for the regression losses, with Tensor ops.

Attached as ``backward_graph`` on import (see gradwise.autograd.higher_order). The node
saved only d = x - t; it re-enters the graph as ``x' - t'``, tensors on the input nodes
whose values are d and 0, so that d depends on x and t exactly as it did.

Cross-entropy with class probabilities saved log_softmax(x), not x: it re-enters the graph
as the value of x (softmax and its derivatives are the same for x and for x shifted per
row), and the target p as (q - eps / C) / (1 - eps) from the smoothed q it saved.

Cross-entropy with class indices: per row, dl/dx = s p - r with p = softmax(x), s a
number and r a constant row (from the target, the class weights and label smoothing), so
its rule is g (s softmax(x) - r) with Tensor ops.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd import Tensor, clip, exp, log, log_softmax, maximum, sigmoid, softplus, where
from gradwise.autograd.higher_order import ScatterAdd
from gradwise.autograd.ops.reduce import Softmax
from gradwise.autograd.ops.shape import Permute, Reshape
from gradwise.core.dtypes import Array
from gradwise.loss.binary import _EPS, BCELoss, BCEWithLogitsLoss
from gradwise.loss.classification import (
    CrossEntropyLoss,
    NLLLoss,
    SoftCrossEntropyLoss,
    _from_rows,
)
from gradwise.loss.divergence import KLDivLoss
from gradwise.loss.regression import Regression

TGrads = tuple[Tensor | None, ...]


def _regression(n: Regression, g: Tensor) -> TGrads:
    """dx = g f'(x - t), dt = -dx, as Regression.backward."""
    d = n.s_d
    dt = n.saved_input(0, d) - n.saved_input(1, np.zeros(d.shape, d.dtype))
    if n.reduction == "mean":
        g = g * (1.0 / d.size if d.size else float("nan"))
    p = float(n.param)
    if n.kind == "mse":
        dx = g * 2.0 * dt
    elif n.kind == "l1" or (n.kind == "smooth_l1" and p == 0.0):
        dx = g * Tensor._wrap(np.sign(d))
    elif n.kind == "huber":
        dx = g * clip(dt, -p, p)
    else:
        dx = g * where(np.abs(d) < p, dt * (1.0 / p), Tensor._wrap(np.sign(d)))
    return dx, -dx


def _rows(x: Tensor) -> Tensor:
    """(C,) -> (1, C); (N, C) as is; (N, C, d1, ...) -> (N d1 ..., C), differentiable."""
    shape = x.data.shape
    if len(shape) <= 2:
        return Reshape.apply(x, shape=(-1, shape[-1]))
    order = (0, *range(2, len(shape)), 1)
    return Reshape.apply(Permute.apply(x, axes=order), shape=(-1, shape[1]))


def _unrows(x2: Tensor, shape: tuple[int, ...]) -> Tensor:
    if len(shape) <= 2:
        return Reshape.apply(x2, shape=shape)
    moved = shape[:1] + shape[2:] + shape[1:2]
    nd = len(shape)
    back = (0, nd - 1, *range(1, nd - 1))
    return Permute.apply(Reshape.apply(x2, shape=moved), axes=back)


def _cross_entropy(n: CrossEntropyLoss, g: Tensor) -> TGrads:
    """g (s softmax(x) - r) per row; s and r as in the class docstring above."""
    x2, t = n.s_x2, n.s_t
    rows, c = x2.shape
    w = np.ones(c) if n.s_w is None else n.s_w.astype(np.float64)
    keep = t != n.ignore_index
    tt = np.where(keep, t, 0)
    eps = n.smoothing
    wt = np.where(keep, w[tt], 0.0)
    s = wt * (1.0 - eps) + keep * (eps / c * w.sum())
    r = np.zeros((rows, c))
    r[np.arange(rows), tt] = wt * (1.0 - eps)
    r += keep[:, None] * (eps / c) * w[None, :]
    dt = x2.dtype
    x = n.saved_input(0, _from_rows(x2, n.shape))
    p = Softmax.apply(_rows(x), axis=-1)
    if n.reduction == "none":
        grow = Reshape.apply(g, shape=(rows, 1))
    else:
        grow = g * (1.0 / n.denom if n.denom else float("nan")) if n.reduction == "mean" else g
    d = p * Tensor._wrap(s.astype(dt)[:, None]) - Tensor._wrap(r.astype(dt))
    return (_unrows(grow * d, n.shape),)


def _soft_cross_entropy(n: SoftCrossEntropyLoss, g: Tensor) -> TGrads:
    """dx = g (softmax(x) sum_c w q - w q),  dp = -g (1 - eps) w log_softmax(x), per row."""
    ls, q, w = n.s_ls, n.s_q, n.s_w
    rows, c = ls.shape
    eps = n.smoothing
    dt = ls.dtype
    x2 = _rows(n.saved_input(0, _from_rows(ls, n.shape)))
    if n.need_dp and eps < 1.0:
        p_value = (q - eps / c) / (1.0 - eps)
        q2: Tensor = _rows(n.saved_input(1, _from_rows(p_value.astype(dt), n.shape)))
        q2 = q2 * (1.0 - eps) + eps / c if eps else q2
    else:
        q2 = Tensor._wrap(q)
    wq = q2 if w is None else q2 * Tensor._wrap(w)
    if n.reduction == "none":
        grow = Reshape.apply(g, shape=(rows, 1))
    elif n.reduction == "mean":
        grow = g * (1.0 / rows if rows else float("nan"))
    else:
        grow = g
    sm = Softmax.apply(x2, axis=-1)
    dx2 = grow * (sm * wq.sum(axis=1, keepdims=True) - wq)
    dp = None
    if n.need_dp:
        dp2 = grow * log_softmax(x2, -1) * (-(1.0 - eps))
        if w is not None:
            dp2 = dp2 * Tensor._wrap(w)
        dp = _unrows(dp2, n.shape)
    return _unrows(dx2, n.shape), dp


def _scaled(g: Tensor, reduction: str, count: int, w: Array | None) -> Tensor:
    if reduction == "mean":
        g = g * (1.0 / count if count else float("nan"))
    return g if w is None else g * Tensor._wrap(w)


def _bce(n: BCELoss, g: Tensor) -> TGrads:
    """dx = g w (x - y) / max(x (1 - x), eps),  dy = g w (log(1 - x) - log x), logs >= -100."""
    x, y = n.saved_input(0, n.s_x), n.saved_input(1, n.s_y)
    gw = _scaled(g, n.reduction, n.s_x.size, n.s_w)
    dx = gw * (x - y) / maximum(x * (1.0 - x), float(_EPS))
    dy = None
    if n.need_dy:
        with np.errstate(divide="ignore"):
            dy = gw * (clip(log(1.0 - x), -100.0, None) - clip(log(x), -100.0, None))
    return dx, dy


def _bce_logits(n: BCEWithLogitsLoss, g: Tensor) -> TGrads:
    """dx = g w ((1 + (pw - 1) y) sigmoid(x) - pw y),  dy = g w ((pw - 1) softplus(-x) - x)."""
    x, y = n.saved_input(0, n.s_x), n.saved_input(1, n.s_y)
    gw = _scaled(g, n.reduction, n.s_x.size, n.s_w)
    pw = n.s_pw
    if pw is None:
        dx = gw * (sigmoid(x) - y)
    else:
        pwt = Tensor._wrap(pw)
        dx = gw * ((1.0 + (pwt - 1.0) * y) * sigmoid(x) - pwt * y)
    dy = None
    if n.need_dy:
        dy = gw * (-x) if pw is None else gw * ((Tensor._wrap(pw) - 1.0) * softplus(-x) - x)
    return dx, dy


def _nll(n: NLLLoss, g: Tensor) -> TGrads:
    """dx = -g w[t] at each row's target (linear in g; x does not enter)."""
    m, c = n.x2_shape
    dt = g.data.dtype
    if n.reduction == "none":
        grow = Reshape.apply(g, shape=(m,))
    elif n.reduction == "mean":
        grow = g * (1.0 / n.denom if n.denom else float("nan"))
    else:
        grow = g
    v = grow * Tensor._wrap(-n.s_wt.astype(dt))
    key = (np.arange(m), n.s_idx)
    return (_unrows(ScatterAdd.apply(v, key=key, shape=(m, c), advanced=True), n.shape),)


def _kl_div(n: KLDivLoss, g: Tensor) -> TGrads:
    """dx = -g p, p = y (e^y with log_target);  dy = g (log y + 1 - x) (g e^y (y - x + 1))."""
    x, y = n.saved_input(0, n.s_x), n.saved_input(1, n.s_y)
    gs = _scaled(g, n.reduction, n.count, None)
    p = exp(y) if n.log_target else y
    dx = -(gs * p)
    dy = None
    if n.need_dy:
        if n.log_target:
            dy = gs * p * (y - x + 1.0)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                dy = gs * (log(y) + 1.0 - x)
    return dx, dy


NLLLoss.backward_graph = _nll  # type: ignore[method-assign,assignment]
KLDivLoss.backward_graph = _kl_div  # type: ignore[method-assign,assignment]
BCELoss.backward_graph = _bce  # type: ignore[method-assign,assignment]
BCEWithLogitsLoss.backward_graph = _bce_logits  # type: ignore[method-assign,assignment]
CrossEntropyLoss.backward_graph = _cross_entropy  # type: ignore[method-assign,assignment]
SoftCrossEntropyLoss.backward_graph = _soft_cross_entropy  # type: ignore[method-assign,assignment]
Regression.backward_graph = _regression  # type: ignore[method-assign,assignment]
