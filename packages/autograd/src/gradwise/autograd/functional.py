"""The functional API: ``grad``, ``vjp``, ``hessian``, ``hvp`` (reverse mode).

``grad`` runs the general engine (engine.py) and returns gradients instead of writing
``.grad``; with ``create_graph=True`` they are differentiable, which is all ``hessian``
and ``hvp`` need (reverse-over-reverse). Forward mode (``jvp``) may later replace the
outer pass: :data:`HESSIAN_VECTOR` is the one place to switch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd import engine
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops


def _tensors(x: Tensor | Sequence[Tensor], what: str) -> list[Tensor]:
    items = [x] if isinstance(x, Tensor) else list(x)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: {what} {i} is a {type(t).__name__}, not a Tensor")
    return items


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) weighted by ``grad_outputs``, returned (``.grad`` is untouched).

    Args:
        outputs: a tensor or a sequence of tensors to differentiate.
        inputs: the tensors (leaves or not) to differentiate with respect to.
        grad_outputs: one weight per output, of its shape (one tensor for one output);
            None is allowed for one-element outputs (a weight of 1).
        retain_graph: keep the graph's saved arrays; defaults to ``create_graph``.
        create_graph: record the gradient computation, so the results can be
            differentiated again.
        allow_unused: return None for an input the outputs do not depend on, instead of
            raising ``RuntimeError``.

    Returns:
        One gradient per input, in order.
    """
    outs = _tensors(outputs, "output")
    ins = _tensors(inputs, "input")
    if not ins:
        raise ValueError("grad: inputs is empty")
    if grad_outputs is None:
        gos: list[Tensor | None] = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(
            f"grad: got {len(gos)} grad_outputs for {len(outs)} outputs; pass one per output"
        )
    seeds: list[Any] = []
    for i, (out, go) in enumerate(zip(outs, gos, strict=True)):
        if not out._rg:
            raise RuntimeError(
                f"grad: output {i} does not require grad and has no grad_fn; was it computed "
                "under no_grad() or from tensors that do not require grad?"
            )
        if go is None:
            seed = engine.seed_gradient(out, None, "grad")
            seeds.append(Tensor._wrap(seed) if create_graph else seed)
            continue
        if not isinstance(go, Tensor):
            go = Tensor._wrap(np.asarray(go, dtype=out.data.dtype))
        if go.data.shape != out.data.shape:
            raise RuntimeError(
                f"grad: grad_outputs[{i}] has shape {cops.fmt_shape(go.data.shape)} but "
                f"output {i} has shape {cops.fmt_shape(out.data.shape)}; they must match"
            )
        if create_graph:
            seeds.append(go)
        else:
            seeds.append(np.asarray(go.data, dtype=out.data.dtype))
    nodes = []
    for i, t in enumerate(ins):
        node = t.grad_fn or t._acc
        if node is None:
            raise RuntimeError(
                f"grad: input {i} does not require grad; call requires_grad_() on it (or pass "
                "a tensor computed from one that does)"
            )
        nodes.append(node)
    retain = create_graph if retain_graph is None else retain_graph
    found = engine.general_backward(outs, seeds, retain, create_graph, op="grad", capture=nodes)
    result: list[Tensor | None] = []
    for i, (t, node) in enumerate(zip(ins, nodes, strict=True)):
        g = found.get(node)
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {cops.fmt_shape(t.data.shape)}) was not used to "
                    "compute the outputs; pass allow_unused=True to get None for it"
                )
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g if g._rg else Tensor._wrap(np.array(g.data, copy=True)))
        else:
            result.append(Tensor._wrap(np.array(g, dtype=t.data.dtype, copy=True)))
    return tuple(result)


def vjp(
    f: Callable[..., Tensor], *primals: Tensor
) -> tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]:
    """``(f(*primals), vjp_fn)``; ``vjp_fn(v)`` gives v^T J for each primal (as torch.func.vjp).

    The primals are detached copies inside, so ``f``'s graph is private to ``vjp_fn``;
    gradients of primals ``f`` does not use are zeros.
    """
    xs = [_leaf_copy(p, "vjp") for p in primals]
    out = f(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: f must return a Tensor, got {type(out).__name__}")

    def vjp_fn(cotangent: Tensor) -> tuple[Tensor, ...]:
        if not out._rg:
            return tuple(Tensor._wrap(np.zeros_like(x.data)) for x in xs)
        gs = grad(out, xs, cotangent, retain_graph=True, allow_unused=True)
        return tuple(
            Tensor._wrap(np.zeros_like(x.data)) if g is None else g
            for x, g in zip(xs, gs, strict=True)
        )

    return out.detach(), vjp_fn


def _leaf_copy(x: Tensor, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected Tensor arguments, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: inputs must be floating tensors, got dtype {x.data.dtype}")
    t = x.detach()
    t.requires_grad_(True)
    return t


def _grad_of(f: Callable[[Tensor], Tensor], x: Tensor, op: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(x', f(x'), df/dx')`` with x' a fresh leaf and the gradient differentiable."""
    xs = _leaf_copy(x, op)
    y = f(xs)
    if not isinstance(y, Tensor) or y.data.size != 1:
        shape = cops.fmt_shape(y.data.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{op}: f must return a one-element Tensor, got {shape}")
    if not y._rg:
        return xs, y, Tensor._wrap(np.zeros_like(xs.data))
    (g,) = grad(y, xs, create_graph=True, allow_unused=True)
    return xs, y, g if g is not None else Tensor._wrap(np.zeros_like(xs.data))


def _hvp_reverse(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Reverse-over-reverse: d/dx (df/dx . v)."""
    xs, y, g = _grad_of(f, x, "hvp")
    if not g._rg:
        return y.detach(), Tensor._wrap(np.zeros_like(xs.data))
    (hv,) = grad(g, xs, v, allow_unused=True)
    return y.detach(), hv if hv is not None else Tensor._wrap(np.zeros_like(xs.data))


def _hvp_forward(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Forward-over-reverse (the tangent of the gradient, forward_ad.py); reverse-over-reverse
    when an op on the way has no forward-mode rule.
    """
    from gradwise.autograd.forward_ad import NoForwardRule, hvp_forward_over_reverse

    try:
        return hvp_forward_over_reverse(f, x, v)
    except NoForwardRule:
        return _hvp_reverse(f, x, v)


HESSIAN_VECTOR: Callable[[Callable[[Tensor], Tensor], Tensor, Tensor], tuple[Tensor, Tensor]] = (
    _hvp_forward
)
"""How ``hvp`` gets H v: forward-over-reverse (``jvp`` of the gradient), falling back to
reverse-over-reverse (:func:`_hvp_reverse`) for ops without a jvp rule."""


def hvp(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """``(f(x), H v)``: the Hessian of a scalar ``f`` at ``x`` times ``v`` (as
    ``torch.autograd.functional.hvp``), without forming H.
    """
    if not isinstance(v, Tensor) or v.data.shape != x.data.shape:
        got = cops.fmt_shape(v.data.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(
            f"hvp: v must be a Tensor of x's shape {cops.fmt_shape(x.shape)}, got {got}"
        )
    return HESSIAN_VECTOR(f, x, v)


def hessian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The Hessian of a scalar ``f`` at ``x``, of shape ``x.shape + x.shape``
    (as ``torch.autograd.functional.hessian``): forward-over-reverse, one H e_k per element
    (forward_ad.py); one gradient-of-gradient per element when an op has no jvp rule.
    """
    from gradwise.autograd.forward_ad import NoForwardRule, hessian_forward_over_reverse

    try:
        return hessian_forward_over_reverse(f, x)
    except NoForwardRule:
        pass
    xs, _, g = _grad_of(f, x, "hessian")
    n = xs.data.size
    rows = np.zeros((n, n), dtype=xs.data.dtype)
    if g._rg:
        for i in range(n):
            e = np.zeros(xs.data.shape, dtype=xs.data.dtype)
            e.reshape(-1)[i] = 1
            (row,) = grad(g, xs, Tensor._wrap(e), retain_graph=True, allow_unused=True)
            if row is not None:
                rows[i] = row.data.reshape(-1)
    return Tensor._wrap(rows.reshape(xs.data.shape + xs.data.shape))
