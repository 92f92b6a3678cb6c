"""``Tensor.backward``: validate the seed gradient, then run the graph (see function.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.function import run_backward
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops


def _one(dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return np.array(1, dtype=dtype)


def seed_gradient(t: Tensor, gradient: Any, op: str) -> np.ndarray[Any, Any]:
    """The gradient that starts backward from ``t``: ones for a one-element output."""
    if gradient is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"{op}: grad can be implicitly created only for one-element outputs, but the "
                f"output has shape {cops.fmt_shape(t.data.shape)}; pass gradient= (a tensor of "
                "that shape), or reduce the output first (e.g. .sum())"
            )
        return np.ones(t.data.shape, dtype=t.data.dtype) if t.data.ndim else _one(t.data.dtype)
    g = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
    if g.dtype.kind not in "biuf":
        raise TypeError(f"{op}: gradient must be numeric, got dtype {g.dtype}")
    if g.shape != t.data.shape:
        raise RuntimeError(
            f"{op}: gradient has shape {cops.fmt_shape(g.shape)} but the output has shape "
            f"{cops.fmt_shape(t.data.shape)}; they must match"
        )
    return np.asarray(g, dtype=t.data.dtype)


def backward(
    t: Tensor, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Accumulate d(t)/d(leaf), weighted by ``gradient``, into each leaf's ``.grad``."""
    if create_graph:
        raise NotImplementedError(
            "backward: create_graph=True (higher-order gradients) is not available yet in "
            "gradwise.autograd"
        )
    if not t._rg:
        raise RuntimeError(
            "backward: the tensor does not require grad and has no grad_fn; was it computed "
            "under no_grad(), detached, or from tensors that do not require grad?"
        )
    g = seed_gradient(t, gradient, "backward")
    run_backward([t], [g], retain_graph=retain_graph)
