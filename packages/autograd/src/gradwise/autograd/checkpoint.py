"""Activation checkpointing: ``checkpoint(fn, *args)`` trades compute for memory.

``fn`` runs under ``no_grad``, so none of its intermediates are kept; the graph holds one
node saving only ``fn``'s tensor arguments (and the RNG state). In backward that node runs
``fn`` again with grad on, from the same RNG state (so dropout draws the same mask), and
backpropagates through the recomputed graph: the gradients are the same as without
checkpointing, parameters used inside ``fn`` included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd import function as _fm
from gradwise.autograd.custom_function import Function
from gradwise.autograd.grad_mode import enable_grad, is_grad_enabled
from gradwise.autograd.tensor import Tensor
from gradwise.core import random as _random


class Checkpoint(Function):
    """The node of one :func:`checkpoint` call."""

    @staticmethod
    def forward(ctx: Any, fn: Callable[..., Any], preserve: bool, *args: Any) -> Any:
        """Run ``fn`` without recording; save its tensor arguments and the RNG state."""
        ctx.fn = fn
        ctx.rng = _random.get_rng_state() if preserve else None
        ctx.args = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        return fn(*args)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        """Recompute ``fn`` with grad on and backpropagate through it."""
        if is_grad_enabled():  # only create_graph runs a backward under grad mode
            raise RuntimeError(
                "CheckpointBackward: double backward (create_graph=True) through "
                "checkpoint() is not supported; call fn directly to differentiate twice"
            )
        saved = iter(ctx.saved_tensors)
        inputs: list[Any] = []
        fresh: list[Tensor | None] = []
        for a in ctx.args:
            if a is None:
                t = next(saved).detach()
                if t.data.dtype.kind == "f" and ctx.needs_input_grad[2 + len(inputs)]:
                    t.requires_grad_(True)
                inputs.append(t)
                fresh.append(t)
            else:
                inputs.append(a)
                fresh.append(None)
        current = _random.get_rng_state() if ctx.rng is not None else None
        if ctx.rng is not None:
            _random.set_rng_state(ctx.rng)
        try:
            with enable_grad():
                out = ctx.fn(*inputs)
        finally:
            if current is not None:
                _random.set_rng_state(current)
        outs = out if isinstance(out, tuple) else (out,)
        roots, seeds = [], []
        for o, g in zip(outs, grads, strict=False):
            if isinstance(o, Tensor) and o.requires_grad and g is not None:
                roots.append(o)
                seeds.append(np.asarray(g.data, dtype=o.data.dtype))
        if roots:
            _fm.run_backward(roots, seeds, retain_graph=False)
        return (None, None, *[None if t is None else t.grad for t in fresh])


def checkpoint(fn: Callable[..., Any], *args: Any, preserve_rng_state: bool = True) -> Any:
    """``fn(*args)``, keeping only ``args`` for backward and recomputing ``fn`` there.

    Args:
        fn: the function to checkpoint (tensors in, a tensor or a tuple of tensors out);
            it must compute the same thing when run again.
        *args: its arguments; tensors among them are saved, other values passed through.
        preserve_rng_state: restore gradwise's RNG state for the recomputation, so that
            random ops (dropout) repeat their draws.

    Returns:
        What ``fn`` returns.
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable, got {type(fn).__name__}")
    return Checkpoint.apply(fn, preserve_rng_state, *args)
