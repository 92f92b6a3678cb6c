"""Graph nodes and the backward engine.

One differentiable op is one :class:`Op` subclass: ``forward`` computes the output
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

import inspect
import weakref
from collections.abc import Sequence
from heapq import heappop, heappush
from itertools import count
from sys import getrefcount
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

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

    __slots__ = ("__weakref__", "_hooks", "dtypes", "inputs", "seq", "shapes")
    is_accumulator: ClassVar[bool] = False
    _hooks: list[Any]
    """Gradient hooks of the tensor this node produces (set only by ``register_hook``)."""

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


class Op(Node):
    """Base of every built-in differentiable op: ``forward`` and ``backward`` side by side.

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
    _releases: ClassVar[bool] = False
    """Whether ``release`` has anything to drop (saved slots or an overriding method)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Attributes named s_* hold arrays saved for backward; release() drops them.
        names: list[str] = []
        for klass in cls.__mro__:
            names.extend(s for s in getattr(klass, "__slots__", ()) if s.startswith("s_"))
        cls._saved_slots = tuple(names)
        if names and "release" not in cls.__dict__:
            cls.release = _make_release(tuple(names))  # type: ignore[method-assign]
        cls._releases = bool(names) or cls.release is not Op.release
        inherited = getattr(cls.apply, "__func__", None)
        if "apply" not in cls.__dict__ and getattr(inherited, "_generic", False):
            # specialised on first use: writing out ~120 ops' apply at import took 25-55 ms
            cls.apply = classmethod(_lazy_apply(cls))  # type: ignore[method-assign,assignment]

    def forward(self, *args: Any, **kwargs: Any) -> Array:
        """Compute the output array from the input arrays."""
        raise NotImplementedError

    def backward(self, grad: Array) -> Grads:
        """Gradients of the inputs (full, broadcast shape) given the output's gradient."""
        raise NotImplementedError

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """``backward`` written with differentiable Tensor ops (for ``create_graph=True``).

        Saved arrays enter as tensors connected to the graph (:meth:`saved_input`,
        :meth:`saved_output`), so the returned gradients can be differentiated again.
        """
        raise RuntimeError(
            f"{self.name()}: double backward (create_graph=True) is not supported by this op"
        )

    def saved_input(self, i: int, data: Array) -> Tensor:
        """``data`` (input ``i``'s value, saved by forward) as a tensor on input ``i``'s node."""
        t = _Tensor._wrap(data)
        node = self.inputs[i]
        if node is not None:
            t._rg = True
            if node.is_accumulator:
                t._acc = node  # type: ignore[assignment]
            else:
                t.grad_fn = node
        if _FORWARD_ON:
            _forward_saved(self, i, t)
        return t

    def saved_output(self, data: Array) -> Tensor:
        """``data`` (this op's output, saved by forward) as a tensor produced by this node."""
        t = _Tensor._wrap(data, self)
        if _FORWARD_ON:
            _forward_saved(self, -1, t)
        return t

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
        """Run the op on tensors and record it when needed; returns the output tensor.

        Most subclasses get a copy of this method specialised to their ``forward``'s
        signature when the class is created (see :func:`_specialised_apply`); this generic
        one serves the rest (``forward(self, *arrays)``, defaults on array parameters).
        """
        node = _new(cls)
        n = len(inputs)
        if n == 2:
            a, b = inputs
            ad, bd = a.data, b.data
            out = node.forward(ad, bd, **kwargs) if kwargs else node.forward(ad, bd)
            rg = a._rg or b._rg
        elif n == 1:
            a = inputs[0]
            out = node.forward(a.data, **kwargs) if kwargs else node.forward(a.data)
            rg = a._rg
        else:
            out = node.forward(*[t.data for t in inputs], **kwargs)
            rg = any(t._rg for t in inputs)
        if out.__class__ is not _ndarray:  # NumPy gives scalars for 0-d operands
            out = _asarray(out)
        result = _new(_Tensor)
        result.data = out
        result._grad = None
        result._version = None
        result._acc = None
        result._base = None
        if _FORWARD_ON:
            _forward_tangent(node, result, inputs)
        state = _STATE
        if rg and state.record and cls.differentiable:
            if n == 2:
                node.inputs = (a.grad_fn or a._acc, b.grad_fn or b._acc)
                ad, bd = a.data, b.data
                node.shapes = (ad.shape, bd.shape)
                node.dtypes = (ad.dtype, bd.dtype)
            elif n == 1:
                ad = a.data
                node.inputs = (a.grad_fn or a._acc,)
                node.shapes = (ad.shape,)
                node.dtypes = (ad.dtype,)
            else:
                node.inputs = tuple([t.grad_fn or t._acc for t in inputs])
                node.shapes = tuple([t.data.shape for t in inputs])
                node.dtypes = tuple([t.data.dtype for t in inputs])
            node.seq = _next_seq()
            if _ANOMALY_ON and state.anomaly:
                _record_creation(node)
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
        if rg:
            _mark_unrecorded(node, result, inputs)
        result.grad_fn = None
        result._rg = False
        if cls.view:
            _link_view(result, inputs[0])
        return result


Function = Op
"""The old name of :class:`Op`, kept for code that still imports it from here (the public,
PyTorch-style ``Function`` is :class:`gradwise.autograd.Function`)."""


def _record_creation(node: Node) -> None:
    """Anomaly mode: remember where ``node`` was created (replaced by anomaly.py)."""


Cut = tuple[int, str, str, Shape, np.dtype[Any], str | None]
"""Why a tensor that requires grad was used without a node, for ``explain()``: (sequence
number, kind, op name, the result's shape and dtype, the user's line in anomaly mode)."""


def _mark_unrecorded(node: Op, result: Tensor, inputs: Sequence[Tensor]) -> None:
    """Note on each input that requires grad that ``node``'s op used it without recording
    (grad mode off, or an op without gradient): ``explain()`` reads it to tell such a cut
    from a parameter that was never used. Runs only off the recording path.
    """
    if not type(node).differentiable:
        kind = "no_gradient_op"
    elif _STATE.inference:
        kind = "inference_mode"
    else:
        kind = "no_grad"
    site = None
    if _ANOMALY_ON and _STATE.anomaly:
        from gradwise.autograd import anomaly

        site = anomaly.user_frame()
    out = result.data
    mark: Cut = (_next_seq(), kind, type(node).__name__, out.shape, out.dtype, site)
    for t in inputs:
        if t._rg:
            t._cut = mark


def _make_release(names: tuple[str, ...]) -> Any:
    """A release() that clears exactly these slots (no loop, no setattr: it runs per node)."""
    body = "".join(f"    self.{n} = None\n" for n in names)
    scope: dict[str, Any] = {}
    exec(f"def release(self):\n{body}    self._saved_versions = None\n", scope)
    release = scope["release"]
    release.__doc__ = Op.release.__doc__
    return release


Op.apply.__func__._generic = True  # type: ignore[attr-defined]


def _lazy_apply(owner: type[Op]) -> Any:
    """A stand-in ``apply`` for ``owner`` that, on its first call, puts the specialised
    one (or the generic one, where ``forward``'s signature does not fit) in its place.
    Subclasses of ``owner`` treat it as generic, so they get their own.
    """
    generic = Op.apply.__func__  # type: ignore[attr-defined]

    def apply(cls: type[Op], *inputs: Any, **kwargs: Any) -> Tensor:
        current = owner.__dict__["apply"]
        if current.__func__ is apply:  # the first call (another thread may race: harmless)
            fast = _specialised_apply(owner)
            current = classmethod(fast if fast is not None else generic)
            owner.apply = current  # type: ignore[method-assign,assignment]
        # cls, not owner: a subclass's own apply may reach this through super()
        return current.__func__(cls, *inputs, **kwargs)  # type: ignore[no-any-return]

    apply._generic = True  # type: ignore[attr-defined]
    apply.__doc__ = generic.__doc__
    return apply


_RESERVED = frozenset({"cls"})
"""Keyword names a specialised apply cannot take (names starting with ``_`` are refused too,
as the generated code's own names all start with one)."""


def _specialised_apply(cls: type[Op], fused: _Fused | None = None) -> Any:
    """``apply`` written out for ``cls``: its inputs and options named as in its ``forward``,
    and its ``saves``, ``view`` and ``differentiable`` (read now, at class creation) folded
    in. Spares the generic path's argument packing, loops and branches, about a third of
    the per-op overhead. None if ``forward``'s signature does not fit (then the generic
    ``apply`` runs); the generated function does exactly what the generic one does.
    """
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - forward is always a function here
        return None
    n = 0
    options: list[inspect.Parameter] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and not options:
            if p.default is not p.empty:
                return None
            n += 1
        elif p.kind is p.KEYWORD_ONLY and not (p.name.startswith("_") or p.name in _RESERVED):
            options.append(p)
        else:
            return None
    saves = tuple(cls.saves)
    if n == 0 or any(not -1 <= i < n for i in saves):
        return None
    xs = [f"_x{i}" for i in range(n)]
    defaults: dict[str, Any] = {}
    sig = ["cls", *xs]
    if options:
        sig.append("*")
    for p in options:
        if p.default is p.empty:
            sig.append(p.name)
        else:
            defaults[f"_default_{p.name}"] = p.default
            sig.append(f"{p.name}=_default_{p.name}")
    call = ", ".join([f"{x}.data" for x in xs] + [f"{p.name}={p.name}" for p in options])
    view = f"        _link_view(_r, {xs[0]})\n" if cls.view else ""
    if fused is None:
        lines = [
            f"def apply({', '.join(sig)}):",
            "    _node = _new(cls)",
            f"    _out = _node.forward({call})",
        ]
    else:  # the operator itself: dispatch, then forward written out (see fused_operator)
        if n != 2 or options:
            raise TypeError(f"fused_operator: {cls.__name__}.forward must take two arrays")
        defaults.update(cls=cls, _ufunc=fused.ufunc, _fallback=fused.fallback)
        defaults.update(_op=fused.name, _broadcast_error=fused.broadcast_error)
        lines = [
            "def apply(_x0, _x1):",
            "    if not _isinstance(_x1, _Tensor) or _x1.data.dtype is not _x0.data.dtype:",
            "        return _fallback(_x0, _x1)",
            "    _node = _new(cls)",
            "    _d0 = _x0.data",  # read once: the recording lines below use them too
            "    _d1 = _x1.data",
            *[f"    _node.{slot} = _d{i}" for i, slot in enumerate(fused.saved_slots)],
            "    try:",
            "        _out = _ufunc(_d0, _d1)",
            "    except ValueError:",
            "        raise _broadcast_error(_op, _d0, _d1) from None",
        ]
    lines += [
        "    if _out.__class__ is not _ndarray:",  # NumPy gives scalars for 0-d operands
        "        _out = _asarray(_out)",
        "    _r = _new(_Tensor)",
        "    _r.data = _out",
        "    _r._grad = None",
        "    _r._version = None",
        "    _r._acc = None",
        "    _r._base = None",
        "    if _FORWARD_ON:",
        f"        _forward_tangent(_node, _r, ({', '.join(xs)},))",
    ]
    rg = " or ".join(f"{x}._rg" for x in xs)
    one = "," if n == 1 else ""
    if cls.differentiable:
        lines += [
            f"    if {rg}:",
            "        if _STATE.record:",
            f"            _node.inputs = ({', '.join(f'{x}.grad_fn or {x}._acc' for x in xs)}"
            f"{one})",
            *([] if fused else [f"            _d{i} = {x}.data" for i, x in enumerate(xs)]),
            f"            _node.shapes = ({', '.join(f'_d{i}.shape' for i in range(n))}{one})",
            f"            _node.dtypes = ({', '.join(f'_d{i}.dtype' for i in range(n))}{one})",
            "            _node.seq = _next_seq()",
            "            if _ANOMALY_ON and _STATE.anomaly:",
            "                _record_creation(_node)",
            "            _r.grad_fn = _node",
            "            _r._rg = True",
        ]
        if view:
            lines.append("    " + view.rstrip("\n"))
        for j, i in enumerate(saves):
            t = "_r" if i < 0 else xs[i]
            lines += [
                f"            _v{j} = {t}._version",
                f"            if _v{j} is None:",
                f"                _v{j} = {t}._version = Version()",
            ]
        pairs = "".join(f"(_v{j}, _v{j}.value), " for j in range(len(saves)))
        lines += [f"            _node._saved_versions = ({pairs})", "            return _r"]
    else:
        lines.append(f"    if {rg}:")
    # an input that requires grad, and no node: say why, for explain()
    lines.append(f"        _mark_unrecorded(_node, _r, ({', '.join(xs)}{one}))")
    lines += ["    _r.grad_fn = None", "    _r._rg = False"]
    if view:
        lines.append(view.rstrip("\n").replace("        ", "    ", 1))
    lines.append("    return _r")
    # a factory, so that the options' defaults are its parameters and the generated code
    # reads this module's globals (not a copy)
    source = "\n".join([f"def _factory({', '.join(defaults)}):", *["    " + ln for ln in lines]])
    scope: dict[str, Any] = {}
    exec(source + "\n    return apply\n", globals(), scope)
    fn = scope["_factory"](**defaults)
    fn.__doc__ = Op.apply.__doc__
    fn.__qualname__ = f"{cls.__qualname__}.apply"
    fn.__source__ = source
    return fn


class _Fused(NamedTuple):
    """What :func:`fused_operator` writes out in place of an op's ``forward`` call."""

    ufunc: Any
    name: str
    fallback: Any
    broadcast_error: Any
    saved_slots: tuple[str, ...]


def fused_operator(
    cls: type[Op],
    ufunc: Any,
    name: str,
    fallback: Any,
    broadcast_error: Any,
    saved_slots: tuple[str, ...] = (),
) -> Any:
    """A Tensor operator (``__add__``) that is ``cls.apply`` with ``cls.forward`` written in.

    For an op whose forward is ``ufunc(a, b)`` (keeping ``a`` and ``b`` in
    ``saved_slots``, raising ``broadcast_error(name, a, b)`` for shapes that do not
    broadcast): when the other operand is a tensor of the same dtype, the operator does
    what ``cls.apply(self, other)`` does, without the operator's, ``apply``'s and
    ``forward``'s three Python calls in a row (a tenth of a small op's cost); anything else
    goes to ``fallback(self, other)``.
    """
    fn = _specialised_apply(cls, _Fused(ufunc, name, fallback, broadcast_error, saved_slots))
    fn.__doc__ = f"self {name} other, as ``{cls.__name__}.apply`` (see fused_operator)."
    fn.__qualname__ = f"Tensor.{name}"
    return fn


_isinstance = isinstance
_new = object.__new__
_ndarray = np.ndarray
_asarray = np.asarray
_add = np.add
SEQUENCE = count()  # next() on itertools.count is atomic under the GIL
_next_seq = SEQUENCE.__next__
_STATE = grad_mode.STATE
_ANOMALY_ON = 0
"""How many threads are inside ``detect_anomaly()`` (anomaly.py keeps it): a global is
read faster than the thread-local flag, which is read only when this is not 0."""
_FORWARD_ON = 0
"""How many forward-AD levels are open in any thread (forward_ad.py keeps it); while it is 0
the only cost of forward mode in ``apply`` is reading it."""
_forward_tangent: Any = None  # forward_ad.py installs its tangent push here
_forward_saved: Any = None  # and here what gives saved tensors their tangents (double backward)
_TENSOR: list[type[Tensor]] = []  # filled by tensor.py (which imports this module)
# set by tensor.py too (a plain global is the fastest lookup); None only while importing
_Tensor: type[Tensor] = None  # type: ignore[assignment]


def _link_view(result: Tensor, source: Tensor) -> None:
    """A view shares its source's version counter and remembers the source's base."""
    if np.may_share_memory(result.data, source.data):
        result._version = source.version_counter()
        result._base = source._base if source._base is not None else source


def _sole_reference_counts() -> tuple[int, int]:
    """What ``getrefcount`` reports, in :func:`_accumulate`'s pattern, for an array that
    nothing else references, and for the base of a view that nothing else references.

    Measured rather than assumed: interpreters differ (3.14 borrows stack references).
    """
    pending: dict[int, Array] = {0: np.empty(2)}
    _, grad = pending.popitem()
    sole = getrefcount(grad)
    pending = {0: np.empty(2).reshape(2, 1)}
    _, grad = pending.popitem()
    return sole, getrefcount(grad.base)


_SOLE, _SOLE_BASE = _sole_reference_counts()


class _HookCount:
    """How many gradient hooks are registered; while any are, backward takes the general
    engine (engine.py), which runs them. The fast engine stays free of per-node checks.
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


HOOKS = _HookCount()


def general_backward(
    roots: Sequence[Tensor],
    grads: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    op: str = "backward",
) -> dict[Node, Any]:
    """The general engine (hooks, anomaly mode, create_graph); installed by engine.py."""
    raise NotImplementedError  # pragma: no cover - replaced when engine.py is imported


def run_backward(
    roots: Sequence[Tensor], grads: Sequence[Array], retain_graph: bool, op: str = "backward"
) -> dict[Node, Array]:
    """Propagate ``grads`` from ``roots`` through the graph.

    Every node has a sequence number from its creation, and is always created after the
    nodes of its inputs; so running pending nodes in decreasing sequence order (a heap)
    is a topological order, and a node runs once, after all its gradients arrived.
    Leaves' nodes never enter the heap: their gradients are summed on the side (in the
    order they arrive, as the heap would) and handed over once the graph is done.

    With ``op == "backward"`` leaves' gradients are accumulated into their ``.grad``;
    otherwise they are returned by node, untouched (for ``grad()``).
    """
    if HOOKS.count or _ANOMALY_ON:
        return general_backward(roots, grads, retain_graph, False, op=op)
    pending: dict[Node, Array] = {}
    leaves: dict[Node, Array] = {}
    heap: list[tuple[int, Node]] = []
    for root, g in zip(roots, grads, strict=True):
        node = root.grad_fn or root._acc
        if node is None:
            raise RuntimeError(
                f"{op}: an output does not require grad and has no grad_fn; was it computed "
                "under no_grad() or only from tensors that do not require grad?"
            )
        if node.is_accumulator:
            prev = leaves.get(node)
            leaves[node] = g if prev is None else prev + g
            continue
        prev = pending.get(node)
        if prev is None:
            pending[node] = g
            heap.append((-node.seq, node))
        else:
            pending[node] = prev + g
    if not heap:
        return _finish(leaves, op)
    if len(heap) > 1:
        heap.sort()
    fn: Op = heappop(heap)[1]  # type: ignore[assignment]
    return _drain(fn, pending.pop(fn), heap, pending, leaves, retain_graph, op)


def _drain(
    fn: Op,
    grad: Array,
    heap: list[tuple[int, Node]],
    pending: dict[Node, Array],
    leaves: dict[Node, Array],
    retain_graph: bool,
    op: str,
) -> dict[Node, Array]:
    """Run ``fn`` with ``grad``, then every node in the heap; then hand leaves their grads."""
    release = not retain_graph
    ig = prev = None
    while True:
        saved = fn._saved_versions
        if saved:
            for counter, value in saved:
                if counter.value != value:
                    fn.check_versions()
        elif saved is None:
            raise RuntimeError(
                f"{op}: trying to backward through the graph a second time ({fn.name()}); "
                "its saved arrays were freed after the first backward. Pass "
                "retain_graph=True to the first backward() if you need to call it twice."
            )
        input_grads = fn.backward(grad)
        if release and fn._releases:
            fn.release()
        # A chain: when the heap is empty, the first node that gets a gradient here is the
        # only pending node, so it runs next without passing through the heap (unless a
        # second node gets one too). From here on ``grad`` is that node's gradient.
        nxt: Node | None = None
        for child, ig, shape, dt in zip(fn.inputs, input_grads, fn.shapes, fn.dtypes, strict=True):
            if child is None or ig is None:
                continue
            if ig.shape != shape:
                ig = cops.unbroadcast(ig, shape)
            if ig.dtype is not dt and ig.dtype != dt:
                ig = ig.astype(dt)
            if child.is_accumulator:
                prev = leaves.get(child)
                leaves[child] = ig if prev is None else prev + ig
            elif child is nxt:
                grad = grad + ig
            else:
                prev = pending.get(child)
                if prev is not None:
                    pending[child] = prev + ig
                elif nxt is None and not heap:
                    nxt = child
                    grad = ig
                else:
                    pending[child] = ig
                    heappush(heap, (-child.seq, child))
        if nxt is not None:
            if not heap:
                fn = nxt  # type: ignore[assignment]
                continue
            pending[nxt] = grad
            heappush(heap, (-nxt.seq, nxt))
        if not heap:
            break
        fn = heappop(heap)[1]  # type: ignore[assignment]
        grad = pending.pop(fn)
    # drop this frame's references to gradients, so that _accumulate can tell by reference
    # count which ones nothing else holds
    grad = ig = prev = input_grads = None  # type: ignore[assignment]
    if op != "backward":
        return leaves
    _accumulate(leaves)
    return {}


def _finish(leaves: dict[Node, Array], op: str) -> dict[Node, Array]:
    if op != "backward":
        return leaves
    _accumulate(leaves)
    return {}


def _accumulate(leaves: dict[Node, Array]) -> None:
    """Add each leaf's gradient into its ``.grad`` (the AccumulateGrad step).

    A first gradient is adopted without a copy when nothing else can reach its memory:
    the caller's seed, an array handed to two leaves, a view of an array that lives on,
    or an array an op still holds are copied.
    """
    wrap = _Tensor._wrap
    while leaves:
        node, grad = leaves.popitem()
        leaf = node._variable()  # type: ignore[attr-defined]
        if leaf is None:
            continue
        dtype = leaf.data.dtype
        current = leaf._grad
        if grad.dtype is not dtype and grad.dtype != dtype:
            grad = grad.astype(dtype)
            if current is None:
                leaf._grad = wrap(np.ascontiguousarray(grad))
                continue
        if current is None:
            # reference counts first: grad.flags and a local for grad.base would add one
            if not (
                getrefcount(grad) == _SOLE
                and (grad.base is None or getrefcount(grad.base) == _SOLE_BASE)
                and grad.flags.writeable
                and grad.flags.c_contiguous
            ):
                grad = np.array(grad, copy=True, order="C")
            leaf._grad = wrap(grad)
        elif current._rg:  # a gradient from create_graph: stays in its graph
            leaf._grad = current + wrap(np.asarray(grad, dtype=dtype))
        else:
            data = current.data
            if data.size == 1:
                # on one element, NumPy scalar arithmetic (the same IEEE add in the same
                # dtype) costs a quarter of an in-place ufunc call
                at = (0,) * data.ndim
                data[at] = data[at] + grad[at]
            else:
                _add(data, grad, data)  # out= by keyword costs 0.2 us more
