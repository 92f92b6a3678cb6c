"""``gradwise.nn.utils``: gradient clipping and flat parameter vectors."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from gradwise.autograd import Tensor, cat, no_grad
from gradwise.core import ops as cops


def _params(parameters: Tensor | Iterable[Tensor], op: str) -> list[Tensor]:
    items = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in items:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(p).__name__}")
    return items


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale gradients in place so that their joint norm is at most ``max_norm``.

    total = ||(||g_1||_p, ..., ||g_k||_p)||_p over the parameters with a gradient (the
    norm of all gradients as one vector; ``norm_type=inf`` takes the largest |g|). When
    ``max_norm / (total + 1e-6) < 1`` every gradient is multiplied by that factor, as in
    PyTorch.

    Args:
        parameters: A Tensor or an iterable of Tensors (e.g. ``model.parameters()``).
        max_norm: The largest allowed norm.
        norm_type: p of the p-norm (``float('inf')`` or ``'inf'`` for the max norm).
        error_if_nonfinite: Raise if the total norm is NaN or infinite.

    Returns:
        The total norm before clipping, a 0-d Tensor (of the gradients' dtype).

    Raises:
        RuntimeError: a non-finite total with ``error_if_nonfinite=True``.
    """
    p = float(norm_type)
    grads = [t.grad for t in _params(parameters, "clip_grad_norm_") if t.grad is not None]
    if not grads:
        return Tensor._wrap(np.array(0.0, dtype=np.float32))
    dt = np.result_type(*[g.data.dtype for g in grads])
    norms = []
    for g in grads:
        a = np.abs(g.data.astype(np.float64, copy=False))
        if math.isinf(p):
            norms.append(a.max(initial=0.0))
        elif p == 2.0:
            norms.append(math.sqrt(float(np.vdot(a, a))))
        else:
            norms.append(float(np.sum(a**p)) ** (1.0 / p))
    n = np.asarray(norms, dtype=np.float64)
    total64 = (
        n.max()
        if math.isinf(p)
        else (np.sum(n**p) ** (1.0 / p) if p != 2.0 else math.sqrt(float(np.vdot(n, n))))
    )
    total = np.asarray(total64, dtype=dt)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"non-finite ({float(total)}), so it cannot be clipped; pass "
            "error_if_nonfinite=False to clip anyway"
        )
    coef = dt.type(max_norm) / (total + dt.type(1e-6))
    if coef < 1:
        # an infinite total gives coef 0 and inf * 0 = NaN gradients, as in PyTorch
        with np.errstate(invalid="ignore"):
            for g in grads:
                g.data *= coef.astype(g.data.dtype)
                g.version_counter().value += 1
    return Tensor._wrap(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient to ``[-clip_value, clip_value]`` in place."""
    c = float(clip_value)
    for t in _params(parameters, "clip_grad_value_"):
        g = t.grad
        if g is not None:
            np.clip(g.data, -c, c, out=g.data)
            g.version_counter().value += 1


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D Tensor (differentiable)."""
    items = _params(parameters, "parameters_to_vector")
    if not items:
        raise ValueError("parameters_to_vector: no parameters given")
    return cat([t.reshape(-1) for t in items], axis=0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in place.

    Raises:
        TypeError: ``vec`` is not a Tensor. ValueError: its length does not match.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vec).__name__}")
    items = _params(parameters, "vector_to_parameters")
    total = sum(t.data.size for t in items)
    if vec.data.ndim != 1 or vec.data.size != total:
        raise ValueError(
            f"vector_to_parameters: vector of shape {cops.fmt_shape(vec.data.shape)} does not "
            f"match the {total} parameter elements"
        )
    start = 0
    with no_grad():
        for t in items:
            k = t.data.size
            t.data[...] = vec.data[start : start + k].reshape(t.data.shape)
            t.version_counter().value += 1
            start += k


__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
]
