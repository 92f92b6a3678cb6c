"""Graph nodes and the backward engine.

One differentiable op is one :class:`Function` subclass: ``forward`` computes the output
array from input arrays, ``backward`` maps the output's gradient to one gradient per
input, side by side. The instance *is* the graph node. It holds the nodes of its inputs
(never its output tensor, so graphs have no reference cycles and die with the last tensor
that reaches them), the arrays it saved for backward, and the version each saved tensor
had, to detect in-place changes.

There is no tape: :func:`run_backward` walks the graph from the output with an iterative
topological sort, runs each node once, sums gradients back to each input's shape
(un-broadcasting), and accumulates them into the leaves' ``.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gradwise.autograd import grad_mode
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape

if TYPE_CHECKING:
    from gradwise.autograd.tensor import Tensor

Grads = tuple[Array | None, ...]
"""What ``backward`` returns: one gradient (or None) per input, in input order."""


class Version:
    """A tensor's in-place modification counter; views share their base's counter."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Node:
    """Anything in the graph: an op's backward node or a leaf's ``AccumulateGrad``."""

    __slots__ = ("__weakref__", "dtypes", "inputs", "shapes")

    inputs: tuple[Node | None, ...]
    shapes: tuple[Shape, ...]
    dtypes: tuple[np.dtype[Any], ...]

    def name(self) -> str:
        """The op's name with a ``Backward`` suffix, as in PyTorch (``"MulBackward"``)."""
        return type(self).__name__ + "Backward"

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        """``(node or None, 0)`` for each input, as PyTorch's ``grad_fn.next_functions``."""
        return tuple((n, 0) for n in self.inputs)

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: adds incoming gradients into ``leaf.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable
        self.inputs = ()
        self.shapes = ()
        self.dtypes = ()

    def name(self) -> str:
        """``"AccumulateGrad"``, as in PyTorch."""
        return "AccumulateGrad"

    def accumulate(self, grad: Array, owned: bool) -> None:
        """``leaf.grad += grad`` (in place), or set it; ``owned`` means ``grad`` may be kept."""
        from gradwise.autograd.tensor import Tensor

        leaf = self.variable
        if grad.dtype != leaf.data.dtype:
            grad = grad.astype(leaf.data.dtype)
            owned = True
        current = leaf.grad
        if current is None:
            if not (owned and grad.flags.writeable and grad.flags.c_contiguous):
                grad = np.array(grad, copy=True, order="C")
            leaf.grad = Tensor._wrap(grad)
        else:
            np.add(current.data, grad, out=current.data)


class Function(Node):
    """Base of every differentiable op: ``forward`` and ``backward`` side by side.

    Subclasses implement ``forward(self, *arrays, **options) -> Array`` and
    ``backward(self, grad) -> Grads``, keeping in attributes only what backward needs.
    ``apply`` runs forward and, when grad mode is on and an input requires grad, links
    the node into the graph.
    """

    __slots__ = ("_saved_versions", "freed")

    differentiable: ClassVar[bool] = True
    view: ClassVar[bool] = False
    """True for ops whose output may share memory with input 0 (reshape, permute, basic
    indexing): such an output shares the input's version counter and remembers its base."""
    saves: ClassVar[tuple[int, ...]] = ()
    """Indices of inputs whose data backward reads (-1: the output); their versions are
    recorded so that an in-place change before backward is caught."""
    _saved_slots: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Attributes named s_* hold arrays saved for backward; release() drops them.
        names: list[str] = []
        for klass in cls.__mro__:
            names.extend(s for s in getattr(klass, "__slots__", ()) if s.startswith("s_"))
        cls._saved_slots = tuple(names)

    def __init__(self) -> None:
        self._saved_versions: tuple[tuple[Version, int], ...] = ()
        self.freed = False

    def forward(self, *args: Any, **kwargs: Any) -> Array:
        """Compute the output array from the input arrays."""
        raise NotImplementedError

    def backward(self, grad: Array) -> Grads:
        """Gradients of the inputs (full, broadcast shape) given the output's gradient."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the arrays saved for backward (after a backward without ``retain_graph``)."""
        for slot in self._saved_slots:
            setattr(self, slot, None)
        self.freed = True

    def check_versions(self) -> None:
        """Raise if a tensor saved for backward was modified in place since."""
        for counter, value in self._saved_versions:
            if counter.value != value:
                raise RuntimeError(
                    f"{self.name()}: a tensor this op saved for backward was modified by an "
                    f"in-place operation (its version is now {counter.value}, expected "
                    f"{value}). Use an out-of-place op (e.g. x = x + 1 instead of x += 1) "
                    "or .clone() the tensor before changing it."
                )

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run the op on tensors and record it when needed; returns the output tensor."""
        from gradwise.autograd.tensor import Tensor

        node = cls()
        out = node.forward(*[t.data for t in inputs], **kwargs)
        state = grad_mode.STATE
        if not (state.enabled and not state.inference and cls.differentiable) or not any(
            t._rg for t in inputs
        ):
            result = Tensor._wrap(out)
            if cls.view:
                _link_view(result, inputs[0])
            return result
        node.inputs = tuple(t._edge() for t in inputs)
        node.shapes = tuple(t.data.shape for t in inputs)
        node.dtypes = tuple(t.data.dtype for t in inputs)
        result = Tensor._wrap(out, node)
        if cls.view:
            _link_view(result, inputs[0])
        if cls.saves:
            versions = []
            for i in cls.saves:
                counter = result._version if i < 0 else inputs[i]._version
                versions.append((counter, counter.value))
            node._saved_versions = tuple(versions)
        return result


def _link_view(result: Tensor, source: Tensor) -> None:
    """A view shares its source's version counter and remembers the source's base."""
    if np.may_share_memory(result.data, source.data):
        result._version = source._version
        result._base = source._base if source._base is not None else source


def _edge_grad(grad: Array, shape: Shape, dtype: np.dtype[Any]) -> Array:
    """A gradient summed back to its input's shape, in the input's dtype."""
    if grad.shape != shape:
        grad = cops.unbroadcast(grad, shape)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


def run_backward(
    roots: Sequence[Tensor], grads: Sequence[Array], retain_graph: bool, op: str = "backward"
) -> dict[Node, Array]:
    """Propagate ``grads`` from ``roots`` to every leaf; returns gradients that reached
    leaves' ``AccumulateGrad`` nodes without being written when ``op != "backward"``."""
    deps: dict[Node, int] = {}
    stack: list[Node] = []
    pending: dict[Node, Array] = {}
    for root, g in zip(roots, grads, strict=True):
        node = root.grad_fn if root.grad_fn is not None else root._edge()
        if node is None:
            raise RuntimeError(
                f"{op}: element 0 of the outputs does not require grad and has no grad_fn; "
                "did you call it on a tensor computed under no_grad() or from tensors that "
                "do not require grad?"
            )
        pending[node] = g if node not in pending else pending[node] + g
        if node not in deps:
            deps[node] = 0
            stack.append(node)
    # count, for each node, the edges that reach it from the graph above (iterative DFS)
    seen = set(deps)
    while stack:
        node = stack.pop()
        for child in node.inputs:
            if child is None:
                continue
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    ready = [n for n in pending if deps[n] == 0]
    kept = {id(g) for g in grads}  # arrays the caller still holds: never stolen
    leaf_grads: dict[Node, Array] = {}
    while ready:
        node = ready.pop()
        grad = pending.pop(node)
        if isinstance(node, AccumulateGrad):
            if op == "backward":
                node.accumulate(grad, owned=id(grad) not in kept)
                kept.add(id(grad))
            else:
                leaf_grads[node] = grad
            continue
        fn = node
        assert isinstance(fn, Function)
        if fn.freed:
            raise RuntimeError(
                f"{op}: trying to backward through the graph a second time ({fn.name()}); "
                "its saved arrays were freed after the first backward. Pass "
                "retain_graph=True to the first backward() if you need to call it twice."
            )
        fn.check_versions()
        input_grads = fn.backward(grad)
        if not retain_graph:
            fn.release()
        for child, shape, dtype, ig in zip(
            fn.inputs, fn.shapes, fn.dtypes, input_grads, strict=True
        ):
            if child is None:
                continue
            if ig is not None:
                ig = _edge_grad(ig, shape, dtype)
                prev = pending.get(child)
                pending[child] = ig if prev is None else prev + ig
            deps[child] -= 1
            if deps[child] == 0 and child in pending:
                ready.append(child)
            elif deps[child] == 0:
                _skip(child, deps, ready, pending)
    return leaf_grads


def _skip(node: Node, deps: dict[Node, int], ready: list[Node], pending: dict[Node, Array]) -> None:
    """A node all of whose incoming gradients were None: release its children's counts."""
    stack = [node]
    while stack:
        n = stack.pop()
        for child in n.inputs:
            if child is None:
                continue
            deps[child] -= 1
            if deps[child] == 0:
                if child in pending:
                    ready.append(child)
                else:
                    stack.append(child)
