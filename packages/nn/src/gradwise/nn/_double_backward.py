"""Double backward (``create_graph=True``) for nn's fused nodes, written with Tensor ops.

Attached as ``backward_graph`` methods on import (see gradwise.autograd.higher_order for
the built-in ops). Covered: Linear, Embedding, LayerNorm and BatchNorm (batch or running
statistics). The other fused nodes without a rule of their own raise RuntimeError naming
the node in a double backward.

The norms saved only x's normalised form and 1/std, so their rule re-enters x as x - mean
(on x's node: the norm does not change when x shifts, so neither do its derivatives),
recomputes the norm from it with Tensor ops and differentiates that with
``create_graph``. eps is recovered per row from the saved arrays (1/rstd^2 - var).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradwise.autograd import Tensor, grad
from gradwise.autograd.function import Op
from gradwise.autograd.higher_order import ScatterAdd, ZeroAt
from gradwise.autograd.ops.elementwise import PowScalar
from gradwise.autograd.ops.linalg import MatMul
from gradwise.autograd.ops.reduce import Mean, Sum
from gradwise.autograd.ops.shape import Clone, Permute, Reshape
from gradwise.core.dtypes import Array
from gradwise.nn.embedding import EmbeddingFunction
from gradwise.nn.linear import LinearFunction
from gradwise.nn.norm import BatchNormFunction, LayerNormFunction

TGrads = tuple[Tensor | None, ...]


def _linear(n: LinearFunction, g: Tensor) -> TGrads:
    """dx = g W,  dW = g^T x,  db = sum of g's rows."""
    rows, width = n.s_x2.shape
    x = n.saved_input(0, n.s_x2.reshape(n.x_shape))
    w = n.saved_input(1, n.s_w)
    g2 = Reshape.apply(g, shape=(rows, n.s_w.shape[0]))
    x2 = Reshape.apply(x, shape=(rows, width))
    dx = Reshape.apply(MatMul.apply(g2, w), shape=n.x_shape)
    dw = MatMul.apply(Permute.apply(g2, axes=(1, 0)), x2)
    if len(n.inputs) == 3:
        return dx, dw, Sum.apply(g2, axis=0, keepdims=False)
    return dx, dw


def _embedding(n: EmbeddingFunction, g: Tensor) -> TGrads:
    """dW = the rows of g added at idx (row padding_idx gets none)."""
    dim = g.data.shape[-1]
    dw = ScatterAdd.apply(g, key=(n.s_idx,), shape=(n.num, dim), advanced=True)
    if n.padding_idx is not None:
        dw = ZeroAt.apply(dw, key=n.padding_idx)
    return (dw,)


def _recompute(n: Op, g: Tensor, inputs: list[Tensor], fn: Callable[..., Tensor]) -> TGrads:
    """The gradients of ``fn(*inputs)`` (a differentiable re-statement of the node's
    forward) weighted by ``g``, as tensors in the graph.
    """
    fresh = [Clone.apply(t) if t.requires_grad else t for t in inputs]  # one node each
    y = fn(*fresh)
    wrt = [t for t in fresh if t.requires_grad]
    if not wrt or not y.requires_grad:
        return (None,) * len(inputs)
    found = iter(grad(y, wrt, g, create_graph=True, allow_unused=True))
    return tuple(next(found) if t.requires_grad else None for t in fresh)


def _const(a: Array) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(a))


def _layer_norm(n: LayerNormFunction, g: Tensor) -> TGrads:
    """LayerNorm recomputed from x - mean with Tensor ops, then differentiated."""
    xhat, rstd = n.s_xhat, n.s_rstd
    size = xhat.shape[1]
    xc = xhat / rstd
    eps = _const(1.0 / (rstd * rstd) - np.mean(xc * xc, axis=1, keepdims=True))
    inputs = [n.saved_input(0, xc.reshape(n.x_shape))]
    k = 1
    if n.has_w:
        assert n.s_w is not None
        inputs.append(n.saved_input(k, n.s_w.reshape(n.shapes[k])))
        k += 1
    if n.has_b:  # the derivatives do not depend on b's value
        inputs.append(n.saved_input(k, np.zeros(n.shapes[k], xhat.dtype)))

    def forward(x: Tensor, *params: Tensor) -> Tensor:
        x2 = Reshape.apply(x, shape=(-1, size))
        c = x2 - Mean.apply(x2, axis=1, keepdims=True)
        var = Mean.apply(c * c, axis=1, keepdims=True)
        y = c * PowScalar.apply(var + eps, p=-0.5)
        ps = list(params)
        if n.has_w:
            y = y * Reshape.apply(ps.pop(0), shape=(size,))
        if n.has_b:
            y = y + Reshape.apply(ps.pop(0), shape=(size,))
        return Reshape.apply(y, shape=n.x_shape)

    return _recompute(n, g, inputs, forward)


def _batch_norm(n: BatchNormFunction, g: Tensor) -> TGrads:
    """BatchNorm recomputed from x - mean with Tensor ops, then differentiated."""
    xhat, rstd, axes = n.s_xhat, n.s_rstd, n.axes
    bshape = rstd.shape
    xc = xhat / rstd
    rstd_t = _const(rstd)
    eps = _const(1.0 / (rstd * rstd) - np.mean(xc * xc, axis=axes, keepdims=True))
    inputs = [n.saved_input(0, xc)]
    k = 1
    if n.has_w:
        assert n.s_w is not None
        inputs.append(n.saved_input(k, n.s_w.reshape(n.shapes[k])))
        k += 1
    if n.has_b:
        inputs.append(n.saved_input(k, np.zeros(n.shapes[k], xhat.dtype)))

    def forward(x: Tensor, *params: Tensor) -> Tensor:
        if n.batch_stats:
            c = x - Mean.apply(x, axis=axes, keepdims=True)
            var = Mean.apply(c * c, axis=axes, keepdims=True)
            y = c * PowScalar.apply(var + eps, p=-0.5)
        else:  # running statistics: constants, so y is affine in x
            y = x * rstd_t
        ps = list(params)
        if n.has_w:
            y = y * Reshape.apply(ps.pop(0), shape=bshape)
        if n.has_b:
            y = y + Reshape.apply(ps.pop(0), shape=bshape)
        return y

    return _recompute(n, g, inputs, forward)


LayerNormFunction.backward_graph = _layer_norm  # type: ignore[method-assign,assignment]
BatchNormFunction.backward_graph = _batch_norm  # type: ignore[method-assign,assignment]
LinearFunction.backward_graph = _linear  # type: ignore[method-assign,assignment]
EmbeddingFunction.backward_graph = _embedding  # type: ignore[method-assign,assignment]
