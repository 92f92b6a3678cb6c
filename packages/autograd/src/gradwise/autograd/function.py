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

import weakref
from collections.abc import Sequence
from heapq import heappop, heappush
from itertools import count
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

    __slots__ = ("__weakref__", "dtypes", "inputs", "seq", "shapes")
    is_accumulator: ClassVar[bool] = False

    inputs: tuple[Node | None, ...]
    shapes: tuple[Shape, ...]
    seq: int
    """Creation order: a node is always created after the nodes of its inputs."""
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
    """The node of a leaf that requires grad: adds incoming gradients into ``leaf.grad``.

    The leaf holds its AccumulateGrad; the node refers back to the leaf weakly, so the
    pair forms no reference cycle.
    """

    __slots__ = ("_variable",)
    is_accumulator = True

    def __init__(self, variable: Tensor) -> None:
        self._variable = weakref.ref(variable)
        self.seq = next(SEQUENCE)
        self.inputs = ()
        self.shapes = ()
        self.dtypes = ()

    def name(self) -> str:
        """``"AccumulateGrad"``, as in PyTorch."""
        return "AccumulateGrad"

    @property
    def variable(self) -> Tensor | None:
        """The leaf tensor (None once it has been garbage collected)."""
        return self._variable()


class Function(Node):
    """Base of every differentiable op: ``forward`` and ``backward`` side by side.

    Subclasses implement ``forward(self, *arrays, **options) -> Array`` and
    ``backward(self, grad) -> Grads``, keeping in attributes only what backward needs.
    ``apply`` runs forward and, when grad mode is on and an input requires grad, links
    the node into the graph.
    """

    __slots__ = ("_saved_versions",)

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
        if names and "release" not in cls.__dict__:
            cls.release = _make_release(tuple(names))  # type: ignore[method-assign]

    def forward(self, *args: Any, **kwargs: Any) -> Array:
        """Compute the output array from the input arrays."""
        raise NotImplementedError

    def backward(self, grad: Array) -> Grads:
        """Gradients of the inputs (full, broadcast shape) given the output's gradient."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the arrays saved for backward (after a backward without ``retain_graph``);
        a node that saved nothing stays usable, as in PyTorch.
        """
        if self._saved_slots:
            for slot in self._saved_slots:
                setattr(self, slot, None)
            self._saved_versions = None

    @property
    def freed(self) -> bool:
        """Whether the arrays saved for backward were released."""
        return self._saved_versions is None

    _saved_versions: tuple[tuple[Version, int], ...] | None

    def check_versions(self) -> None:
        """Raise if a tensor saved for backward was modified in place since."""
        for counter, value in self._saved_versions or ():
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
        node = _new(cls)
        n = len(inputs)
        if n == 2:
            a, b = inputs
            out = node.forward(a.data, b.data, **kwargs)
            rg = a._rg or b._rg
        elif n == 1:
            a = inputs[0]
            out = node.forward(a.data, **kwargs)
            rg = a._rg
        else:
            out = node.forward(*[t.data for t in inputs], **kwargs)
            rg = any(t._rg for t in inputs)
        result = _new(_TENSOR[0])
        result.data = out
        result._grad = None
        result._version = None
        result._acc = None
        result._base = None
        state = _STATE
        if rg and state.enabled and not state.inference and cls.differentiable:
            if n == 2:
                node.inputs = (a.grad_fn or a._acc, b.grad_fn or b._acc)
                ad, bd = a.data, b.data
                node.shapes = (ad.shape, bd.shape)
                node.dtypes = (ad.dtype, bd.dtype)
            elif n == 1:
                node.inputs = (a.grad_fn or a._acc,)
                node.shapes = (a.data.shape,)
                node.dtypes = (a.data.dtype,)
            else:
                node.inputs = tuple([t.grad_fn or t._acc for t in inputs])
                node.shapes = tuple([t.data.shape for t in inputs])
                node.dtypes = tuple([t.data.dtype for t in inputs])
            node.seq = next(SEQUENCE)
            result.grad_fn = node
            result._rg = True
            if cls.view:
                _link_view(result, inputs[0])
            saves = cls.saves
            if saves:
                versions = []
                for i in saves:
                    t = result if i < 0 else inputs[i]
                    counter = t._version
                    if counter is None:
                        counter = t._version = Version()
                    versions.append((counter, counter.value))
                node._saved_versions = tuple(versions)
            else:
                node._saved_versions = ()
            return result
        result.grad_fn = None
        result._rg = False
        if cls.view:
            _link_view(result, inputs[0])
        return result


def _make_release(names: tuple[str, ...]) -> Any:
    """A release() that clears exactly these slots (no loop, no setattr: it runs per node)."""
    body = "".join(f"    self.{n} = None\n" for n in names)
    scope: dict[str, Any] = {}
    exec(f"def release(self):\n{body}    self._saved_versions = None\n", scope)
    release = scope["release"]
    release.__doc__ = Function.release.__doc__
    return release


_new = object.__new__
SEQUENCE = count()  # next() on itertools.count is atomic under the GIL
_STATE = grad_mode.STATE
_TENSOR: list[type[Tensor]] = []  # filled by tensor.py (which imports this module)


def _link_view(result: Tensor, source: Tensor) -> None:
    """A view shares its source's version counter and remembers the source's base."""
    if np.may_share_memory(result.data, source.data):
        result._version = source.version_counter()
        result._base = source._base if source._base is not None else source


def run_backward(
    roots: Sequence[Tensor], grads: Sequence[Array], retain_graph: bool, op: str = "backward"
) -> dict[Node, Array]:
    """Propagate ``grads`` from ``roots`` through the graph.

    Every node has a sequence number from its creation, and is always created after the
    nodes of its inputs; so running pending nodes in decreasing sequence order (a heap)
    is a topological order, and a node runs once, after all its gradients arrived.

    With ``op == "backward"`` leaves' gradients are accumulated into their ``.grad``;
    otherwise they are returned by node, untouched (for ``grad()``).
    """
    pending: dict[Node, Array] = {}
    heap: list[tuple[int, Node]] = []
    for root, g in zip(roots, grads, strict=True):
        node = root.grad_fn or root._acc
        if node is None:
            raise RuntimeError(
                f"{op}: an output does not require grad and has no grad_fn; was it computed "
                "under no_grad() or only from tensors that do not require grad?"
            )
        prev = pending.get(node)
        if prev is None:
            pending[node] = g
            heap.append((-node.seq, node))
        else:
            pending[node] = prev + g
    if len(heap) > 1:
        heap.sort()
    keep = {id(g) for g in grads}  # arrays the caller may still hold: copy, never keep
    leaf_grads: dict[Node, Array] = {}
    accumulate = op == "backward"
    wrap = _TENSOR[0]._wrap
    while heap:
        node = heappop(heap)[1]
        grad = pending.pop(node)
        if node.is_accumulator:
            if not accumulate:
                leaf_grads[node] = grad
                continue
            # AccumulateGrad.accumulate, inlined: this runs once per leaf per backward
            leaf = node._variable()  # type: ignore[attr-defined]
            if leaf is None:
                continue
            dtype = leaf.data.dtype
            owned = id(grad) not in keep
            if grad.dtype is not dtype and grad.dtype != dtype:
                grad = grad.astype(dtype)
                owned = True
            current = leaf._grad
            if current is None:
                flags = grad.flags
                if not (owned and flags.writeable and flags.c_contiguous):
                    grad = np.array(grad, copy=True, order="C")
                leaf._grad = wrap(grad)
                keep.add(id(grad))
            else:
                np.add(current.data, grad, out=current.data)
            continue
        fn: Function = node  # type: ignore[assignment]
        saved = fn._saved_versions
        if saved is None:
            raise RuntimeError(
                f"{op}: trying to backward through the graph a second time ({fn.name()}); "
                "its saved arrays were freed after the first backward. Pass "
                "retain_graph=True to the first backward() if you need to call it twice."
            )
        for counter, value in saved:
            if counter.value != value:
                fn.check_versions()
        input_grads = fn.backward(grad)
        if not retain_graph:
            fn.release()
        inputs = fn.inputs
        for i in range(len(inputs)):
            child = inputs[i]
            if child is None:
                continue
            ig = input_grads[i]
            if ig is None:
                continue
            if ig.shape != fn.shapes[i]:
                ig = cops.unbroadcast(ig, fn.shapes[i])
            dt = fn.dtypes[i]
            if ig.dtype is not dt and ig.dtype != dt:
                ig = ig.astype(dt)
            prev = pending.get(child)
            if prev is None:
                pending[child] = ig
                heappush(heap, (-child.seq, child))
            else:
                pending[child] = prev + ig
    return leaf_grads
