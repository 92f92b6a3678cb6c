"""Double backward (``create_graph=True``) for nn's fused nodes, written with Tensor ops.

Attached as ``backward_graph`` methods on import (see gradwise.autograd.higher_order for
the built-in ops). Covered: Linear and Embedding. LayerNorm, BatchNorm1d and the other
fused nodes have no rule yet: a double backward through them raises RuntimeError naming
the node.
"""

from __future__ import annotations

from gradwise.autograd import Tensor
from gradwise.autograd.higher_order import ScatterAdd, ZeroAt
from gradwise.autograd.ops.linalg import MatMul
from gradwise.autograd.ops.reduce import Sum
from gradwise.autograd.ops.shape import Permute, Reshape
from gradwise.nn.embedding import EmbeddingFunction
from gradwise.nn.linear import LinearFunction

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


LinearFunction.backward_graph = _linear  # type: ignore[method-assign,assignment]
EmbeddingFunction.backward_graph = _embedding  # type: ignore[method-assign,assignment]
