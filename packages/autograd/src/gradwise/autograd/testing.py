"""``gradcheck``: analytical gradients against float64 central differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd.grad_mode import enable_grad, no_grad
from gradwise.autograd.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` with the worst element and both derivatives."""


def _outputs(result: Any) -> list[Tensor]:
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, tuple | list) and all(isinstance(r, Tensor) for r in result):
        return list(result)
    raise TypeError(
        f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {type(result).__name__}"
    )


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check ``fn``'s gradients for every float64 input that requires grad.

    Builds the full Jacobian both ways: one backward per output element (analytical) and
    central differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` per input element
    (numerical). Returns True, or raises :class:`GradcheckError` naming the input, the
    worst element and both values.
    """
    args = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if args[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {args[i].dtype}; use float64 inputs (float32 "
                "central differences are too coarse)"
            )
    outs = _outputs(fn(*args))
    for k, out in enumerate(outs):
        if out.dtype.kind != "f":
            continue
        analytical = {i: np.zeros((out.size, args[i].size)) for i in checked}
        for j in range(out.size):
            for i in checked:
                args[i].grad = None
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.reshape(-1)[j] = 1.0
            fresh = _outputs(fn(*args))[k]
            if fresh.requires_grad:
                fresh.backward(seed)
            for i in checked:
                g = args[i].grad
                if g is not None:
                    analytical[i][j] = g.numpy().reshape(-1)
        for i in checked:
            numerical = np.zeros_like(analytical[i])
            flat = args[i].data.reshape(-1)
            with no_grad():
                for e in range(flat.size):
                    old = flat[e]
                    flat[e] = old + eps
                    hi = _outputs(fn(*args))[k].numpy().reshape(-1).astype(np.float64)
                    flat[e] = old - eps
                    lo = _outputs(fn(*args))[k].numpy().reshape(-1).astype(np.float64)
                    flat[e] = old
                    numerical[:, e] = (hi - lo) / (2 * eps)
            a, n = analytical[i], numerical
            bad = ~np.isclose(a, n, rtol=rtol, atol=atol, equal_nan=True)
            if bad.any():
                err = np.where(bad, np.abs(a - n), -1.0)
                j, e = (int(v) for v in np.unravel_index(int(np.argmax(err)), err.shape))
                raise GradcheckError(
                    f"gradcheck: wrong gradient for input {i}, element {e} (of output {k}, "
                    f"element {j}): analytical {a[j, e]!r}, numerical {n[j, e]!r} "
                    f"({int(bad.sum())} of {bad.size} Jacobian entries differ beyond "
                    f"atol={atol}, rtol={rtol})"
                )
    for i in checked:
        args[i].grad = None
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    grad_outputs: Tensor | Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s second derivatives: :func:`gradcheck` of its first derivatives.

    The first derivatives ``v^T J`` (for random ``v`` of each output's shape, or the
    given ``grad_outputs``) are computed with ``grad(..., create_graph=True)``; their
    gradients with respect to the inputs and to ``v`` are compared against central
    differences. float64 inputs; returns True or raises :class:`GradcheckError`.
    """
    from gradwise.autograd.functional import grad
    from gradwise.core.random import Generator

    args = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    outs = [o for o in _outputs(fn(*args)) if o.dtype.kind == "f"]
    if grad_outputs is None:
        gen = Generator(seed)
        vs = [Tensor(gen.normal(o.shape, dtype=np.float64), requires_grad=True) for o in outs]
    else:
        vs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    n = len(args)

    def first(*a: Any) -> tuple[Tensor, ...]:
        xs, v = list(a[:n]), list(a[n:])
        with enable_grad():  # gradcheck's numerical pass runs under no_grad
            ys = [o for o in _outputs(fn(*xs)) if o.dtype.kind == "f"]
        pairs = [(y, w) for y, w in zip(ys, v, strict=True) if y.requires_grad]
        wrt = [xs[i] for i in checked]
        if not pairs:
            return tuple(Tensor(np.zeros(t.shape)) for t in wrt)
        with enable_grad():
            gs = grad(
                [p[0] for p in pairs],
                wrt,
                [p[1] for p in pairs],
                create_graph=True,
                allow_unused=True,
            )
        return tuple(
            Tensor(np.zeros(t.shape)) if g is None else g for t, g in zip(wrt, gs, strict=True)
        )

    return gradcheck(first, [*args, *vs], eps=eps, atol=atol, rtol=rtol)
