"""Double backward (``create_graph=True``) for the regression losses, with Tensor ops.

Attached as ``backward_graph`` on import (see gradwise.autograd.higher_order). The node
saved only d = x - t; it re-enters the graph as ``x' - t'``, tensors on the input nodes
whose values are d and 0, so that d depends on x and t exactly as it did. The other
fused losses (cross-entropy, NLL, BCE, KL) have no rule yet: a double backward through
them raises RuntimeError naming the node.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd import Tensor, clip, where
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


Regression.backward_graph = _regression  # type: ignore[method-assign,assignment]
