"""``gradcheck``: analytical gradients against float64 central differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd.grad_mode import no_grad
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
