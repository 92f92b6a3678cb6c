"""``Tensor.backward``: validate the seed gradient, then run the graph; and the general
engine (hooks, anomaly mode, ``create_graph``, ``grad()``) beside function.py's fast one.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from gradwise.autograd import function as _function_module
from gradwise.autograd import grad_mode
from gradwise.autograd.function import Node, Op, run_backward
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape


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
    if not t._rg:
        raise RuntimeError(
            "backward: the tensor does not require grad and has no grad_fn; was it computed "
            "under no_grad(), detached, or from tensors that do not require grad?"
        )
    g = seed_gradient(t, gradient, "backward")
    if create_graph:
        seed = gradient if isinstance(gradient, Tensor) and gradient.dtype == g.dtype else None
        general_backward([t], [seed if seed is not None else Tensor._wrap(g)], True, True)
        return
    run_backward([t], [g], retain_graph=retain_graph)


# ---- the general engine: hooks, anomaly mode, create_graph, grad() --------------------


def _reaching(starts: list[Node], targets: set[Node]) -> set[Node]:
    """The nodes (from ``starts`` down) from which some node in ``targets`` is reachable."""
    memo: dict[Node, bool] = {}
    stack: list[tuple[Node, bool]] = [(n, False) for n in starts]
    while stack:
        node, done = stack.pop()
        if done:
            memo[node] = node in targets or any(
                memo.get(c, False) for c in node.inputs if c is not None
            )
            continue
        if node in memo:
            continue
        memo[node] = False  # provisional; a graph is acyclic, so never read before set
        stack.append((node, True))
        stack.extend((c, False) for c in node.inputs if c is not None and c not in memo)
    return {n for n, ok in memo.items() if ok}


def sum_to(t: Tensor, shape: Shape) -> Tensor:
    """``t`` summed back to ``shape`` (un-broadcasting) with differentiable ops."""
    if t.data.shape == shape:
        return t
    from gradwise.autograd.ops.reduce import Sum
    from gradwise.autograd.ops.shape import Reshape

    lead = t.data.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and t.data.shape[lead + i] != 1
    )
    r = Sum.apply(t, axis=axes, keepdims=True) if axes else t
    return Reshape.apply(r, shape=tuple(shape))


def _as_tensor_grad(g: Any) -> Tensor:
    return g if isinstance(g, Tensor) else Tensor._wrap(g)


def _run_hooks(hooks: list[Any], g: Any, create_graph: bool, name: str) -> Any:
    for hook in list(hooks):
        gt = _as_tensor_grad(g)
        out = hook(gt)
        if out is None:
            continue
        if not isinstance(out, Tensor):
            raise TypeError(
                f"hook on {name}: a hook must return a Tensor or None, got {type(out).__name__}"
            )
        if out.data.shape != gt.data.shape:
            raise ValueError(
                f"hook on {name}: the hook returned a gradient of shape "
                f"{cops.fmt_shape(out.data.shape)} for a tensor of shape "
                f"{cops.fmt_shape(gt.data.shape)}"
            )
        g = out if create_graph else out.data
    return g


def _check_finite(node: Op, grads: tuple[Any, ...]) -> None:
    for i, g in enumerate(grads):
        if g is None:
            continue
        arr = g.data if isinstance(g, Tensor) else g
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            what = "NaN" if np.isnan(arr).any() else "Inf"
            from gradwise.autograd import anomaly

            raise RuntimeError(
                f"detect_anomaly: {node.name()} produced {what} in the gradient of its input "
                f"{i}; the op was created at {anomaly.creation_site(node)}"
            )


def _leaf_accumulate(node: Node, g: Any) -> None:
    leaf = node.variable  # type: ignore[attr-defined]
    if leaf is None:
        return
    dtype = leaf.data.dtype
    current = leaf._grad
    if isinstance(g, Tensor):  # create_graph: gradients stay in the graph, summed out of place
        if g.data.dtype != dtype:
            from gradwise.autograd.tensor import Cast

            g = Cast.apply(g, dtype=dtype)
        if not g._rg:
            g = Tensor._wrap(np.array(g.data, copy=True, order="C"))
        leaf._grad = g if current is None else current + g
        return
    if current is None:
        leaf._grad = Tensor._wrap(np.array(g, dtype=dtype, copy=True, order="C"))
    elif current._rg:
        leaf._grad = current + Tensor._wrap(np.asarray(g, dtype=dtype))
    else:
        np.add(current.data, g, out=current.data, casting="same_kind")


def general_backward(
    roots: Sequence[Tensor],
    grads: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    op: str = "backward",
    capture: Sequence[Node] | None = None,
) -> dict[Node, Any]:
    """The engine with everything the fast one (function.py) leaves out.

    Runs tensor hooks, checks gradients for NaN/Inf in anomaly mode, and with
    ``create_graph`` calls each node's ``backward_graph`` under grad mode, so that the
    gradients are tensors in a graph of their own (higher-order derivatives). With
    ``capture`` (``grad()``), returns the gradient arriving at each of those nodes and
    writes no ``.grad``; otherwise leaves' gradients accumulate into ``.grad`` when ``op``
    is ``"backward"`` and are returned by node when it is not (as :func:`run_backward`).
    Same order as the fast engine: nodes run in decreasing creation order.
    """
    from gradwise.autograd.tensor import Cast

    anomaly = grad_mode.STATE.anomaly
    pending: dict[Node, Any] = {}
    heap: list[tuple[int, Node]] = []
    targets = set(capture) if capture is not None else None
    needed: set[Node] | None = None
    starts: list[Node] = []
    for root in roots:
        node = root.grad_fn or root._acc
        if node is None:
            raise RuntimeError(
                f"{op}: an output does not require grad and has no grad_fn; was it computed "
                "under no_grad() or only from tensors that do not require grad?"
            )
        starts.append(node)
    if targets is not None:
        needed = _reaching(starts, targets)
    for node, g in zip(starts, grads, strict=True):
        if needed is not None and node not in needed:
            continue
        prev = pending.get(node)
        if prev is None:
            pending[node] = g
            heappush(heap, (-node.seq, node))
        else:
            pending[node] = prev + g
    captured: dict[Node, Any] = {}
    leaves: dict[Node, Array] = {}
    while heap:
        node = heappop(heap)[1]
        g = pending.pop(node)
        hooks = getattr(node, "_hooks", None)
        if hooks:
            g = _run_hooks(hooks, g, create_graph, node.name())
        if targets is not None and node in targets:
            captured[node] = g
        if node.is_accumulator:
            if targets is None and op != "backward":
                leaves[node] = g  # returned by node, untouched (as run_backward does)
            elif targets is None:
                if isinstance(g, Tensor):
                    _leaf_accumulate(node, g)
                else:
                    leaves[node] = g  # accumulated at the end, as the fast engine does
            continue
        fn: Op = node  # type: ignore[assignment]
        if fn._saved_versions is None:
            raise RuntimeError(
                f"{op}: trying to backward through the graph a second time ({fn.name()}); "
                "its saved arrays were freed after the first backward. Pass "
                "retain_graph=True to the first backward() if you need to call it twice."
            )
        fn.check_versions()
        if create_graph:
            with grad_mode.enable_grad():
                input_grads: tuple[Any, ...] = fn.backward_graph(_as_tensor_grad(g))
        else:
            input_grads = fn.backward(g.data if isinstance(g, Tensor) else g)
        if anomaly:
            _check_finite(fn, input_grads)
        if not retain_graph and fn._releases:
            fn.release()
        for i, child in enumerate(fn.inputs):
            if child is None or (needed is not None and child not in needed):
                continue
            ig = input_grads[i]
            if ig is None:
                continue
            shape, dt = fn.shapes[i], fn.dtypes[i]
            if isinstance(ig, Tensor):
                if ig.data.shape != shape:
                    ig = sum_to(ig, shape)
                if ig.data.dtype != dt:
                    ig = Cast.apply(ig, dtype=dt)
            else:
                if ig.shape != shape:
                    ig = cops.unbroadcast(ig, shape)
                if ig.dtype != dt:
                    ig = ig.astype(dt)
            prev = pending.get(child)
            if prev is None:
                pending[child] = ig
                heappush(heap, (-child.seq, child))
            else:
                pending[child] = prev + ig
    if targets is None and op != "backward":
        return leaves
    if leaves:
        # drop this frame's references, so that _accumulate can adopt sole-owned arrays
        g = ig = prev = input_grads = None  # type: ignore[assignment]
        _function_module._accumulate(leaves)
    return captured


_function_module.general_backward = general_backward
