"""Custom differentiable ops, PyTorch style: subclass :class:`Function`.

::

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

    y = Cube.apply(x)

``forward`` runs under ``no_grad`` on the tensors themselves; ``apply`` links one graph
node (:class:`BackwardFunction`, which is also the ``ctx``) to the inputs that require
grad. ``backward`` gets one gradient per output and returns one per ``forward`` argument
(None for non-tensors and for inputs needing none). In a plain backward it runs under
``no_grad``; with ``create_graph=True`` under grad mode, on tensors connected to the
graph, so a ``backward`` written with gradwise ops is itself differentiable.

Saved tensors are kept as arrays plus the node they came from (never the tensors), so a
custom op adds no reference cycle, like the built-in ones.
"""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gradwise.autograd import function as _fm
from gradwise.autograd import grad_mode
from gradwise.autograd.function import Grads, Node, Op, Version
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, result_dtype

_IN, _OUT, _OTHER = 0, 1, 2


class BackwardFunction(Op):
    """The graph node of one :meth:`Function.apply` call, and its ``ctx``.

    Besides the documented members below, ``forward`` may set any attribute on it for
    ``backward`` to read.
    """

    needs_input_grad: tuple[bool, ...]
    """One flag per ``forward`` argument: whether it is a tensor that requires grad."""

    _function: type[Function]
    _to_save: tuple[Tensor, ...] | None
    s_saved: list[tuple[int, Any, Array]] | None
    _arg_slots: list[int | None]
    _outputs: list[tuple[tuple[int, ...], np.dtype[Any], bool]]
    _slots: list[weakref.ref[Node]] | None
    _non_diff: set[int]
    _materialize: bool

    def __init__(self, function: type[Function]) -> None:
        self._function = function
        self._to_save = None
        self.s_saved = None
        self._non_diff = set()
        self._materialize = True
        self._slots = None
        self._saved_versions = ()

    def name(self) -> str:
        """The Function's class name with a ``Backward`` suffix (``"CubeBackward"``)."""
        return self._function.__name__ + "Backward"

    # ---- the ctx API ---------------------------------------------------------------------

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep these tensors (inputs, outputs or others; None allowed) for ``backward``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"{self._function.__name__}.save_for_backward: argument {i} is a "
                    f"{type(t).__name__}; only Tensors (or None) can be saved (set other "
                    "values as attributes of ctx)"
                )
        self._to_save = tuple(tensors)  # type: ignore[arg-type]

    @property
    def saved_tensors(self) -> tuple[Tensor | None, ...]:
        """What ``save_for_backward`` stored (in backward: tensors connected to the graph).

        Raises:
            RuntimeError: after a backward freed the graph (no ``retain_graph``).
        """
        if self._to_save is not None:  # still inside forward
            return self._to_save
        if self.s_saved is None:
            raise RuntimeError(
                f"{self.name()}: the saved tensors were freed after a backward; pass "
                "retain_graph=True to the first backward() to use them again"
            )
        out: list[Tensor | None] = []
        for kind, where, data in self.s_saved:
            if kind == _IN:
                out.append(self.saved_input(where, data))
            elif kind == _OUT:
                node = self._output_node(where)
                out.append(Tensor._wrap(data, node))
            else:
                out.append(None if data is None else Tensor._wrap(data))
        return tuple(out)

    def mark_non_differentiable(self, *outputs: Tensor) -> None:
        """Declare outputs that get no gradient (indices, masks): they do not require grad."""
        self._non_diff.update(id(t) for t in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether outputs that got no gradient reach ``backward`` as zeros (default) or None."""
        self._materialize = value

    # ---- the node ------------------------------------------------------------------------

    def _output_node(self, j: int) -> Node | None:
        if self._slots is None:
            return self
        return self._slots[j]()

    def release(self) -> None:
        """Drop the saved tensors (after a backward without ``retain_graph``)."""
        self.s_saved = None
        self._saved_versions = None

    def _split(self, grad: Any, graph: bool) -> list[Any]:
        """The gradient of each output: one array (or tensor) or a flat one to cut up."""
        pieces: list[Any] = []
        if self._slots is None:
            pieces = [grad]
        else:
            from gradwise.autograd.ops.shape import GetItem, Reshape

            lo = 0
            for shape, _, diff in self._outputs:
                if not diff:
                    continue
                size = int(np.prod(shape))
                if graph:
                    part = GetItem.apply(grad, key=(slice(lo, lo + size),), advanced=False)
                    pieces.append(Reshape.apply(part, shape=shape))
                else:
                    pieces.append(grad[lo : lo + size].reshape(shape))
                lo += size
        it = iter(pieces)
        out: list[Any] = []
        for shape, dtype, diff in self._outputs:
            if diff:
                out.append(next(it))
            elif self._materialize:
                z = np.zeros(shape, dtype)
                out.append(Tensor._wrap(z) if graph else z)
            else:
                out.append(None)
        return out

    def _call_backward(self, grads: list[Any], graph: bool) -> tuple[Any, ...]:
        fname = self._function.__name__
        args = [g if (g is None or isinstance(g, Tensor)) else Tensor._wrap(g) for g in grads]
        if graph:
            result = self._function.backward(self, *args)
        else:
            with grad_mode.no_grad():
                result = self._function.backward(self, *args)
        res = result if isinstance(result, tuple) else (result,)
        n = len(self._arg_slots)
        if len(res) != n:
            raise RuntimeError(
                f"{fname}.backward returned {len(res)} gradient(s), but forward took {n} "
                "argument(s); return one per argument (None where there is none)"
            )
        out: list[Any] = [None] * len(self.inputs)
        for p, (r, slot) in enumerate(zip(res, self._arg_slots, strict=True)):
            if r is None:
                continue
            if slot is None:
                raise RuntimeError(
                    f"{fname}.backward returned a gradient for argument {p}, which is not a "
                    "Tensor; return None there"
                )
            if not isinstance(r, Tensor):
                raise TypeError(
                    f"{fname}.backward: the gradient for argument {p} is a "
                    f"{type(r).__name__}, not a Tensor"
                )
            shape = self.shapes[slot]
            try:
                ok = np.broadcast_shapes(shape, r.data.shape) == r.data.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"{fname}.backward returned a gradient of shape "
                    f"{cops.fmt_shape(r.data.shape)} for argument {p}, of shape "
                    f"{cops.fmt_shape(shape)}"
                )
            out[slot] = r if graph else r.data
        return tuple(out)

    def backward(self, grad: Array) -> Grads:
        """Run the Function's ``backward`` under ``no_grad`` and check what it returns."""
        return self._call_backward(self._split(grad, False), False)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """Run the Function's ``backward`` under grad mode (``create_graph=True``)."""
        return self._call_backward(self._split(grad, True), True)


class _OutputSlot(Op):
    """Output ``j`` of a multi-output Function: its gradient goes into a flat buffer of all
    the outputs, which is what the Function's node receives (so gradients simply add).
    """

    __slots__ = ("lo", "size", "total")
    lo: int
    size: int
    total: int

    def backward(self, grad: Array) -> Grads:
        flat = np.zeros(self.total, dtype=grad.dtype)
        flat[self.lo : self.lo + self.size] = grad.reshape(-1)
        return (flat,)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The same placement with differentiable ops."""
        from gradwise.autograd.higher_order import ScatterAdd
        from gradwise.autograd.ops.shape import Reshape

        flat = Reshape.apply(grad, shape=(self.size,))
        key = (slice(self.lo, self.lo + self.size),)
        return (ScatterAdd.apply(flat, key=key, shape=(self.total,), advanced=False),)


if TYPE_CHECKING:

    class _FunctionBase:
        """What type checkers see: the public Function is not an Op (its forward and
        backward are static methods with their own signatures).
        """

else:
    _FunctionBase = Op


class Function(_FunctionBase):
    """Base class of custom differentiable ops (PyTorch's ``torch.autograd.Function``).

    Subclasses define ``@staticmethod forward(ctx, *args)`` and ``@staticmethod
    backward(ctx, *grads)`` and are used as ``MyOp.apply(*args)``; ``ctx`` is a
    :class:`BackwardFunction`.

    Transition: a subclass whose ``forward`` is a plain method (the internal op style,
    ``forward(self, *arrays)`` / ``backward(self, grad)``) is treated as a subclass of
    :class:`gradwise.autograd.function.Op`, as before the public API existed; new code
    should subclass ``Op`` for that.
    """

    __slots__ = ()
    _legacy: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._legacy = not isinstance(inspect.getattr_static(cls, "forward"), staticmethod)
        if cls._legacy and "apply" not in cls.__dict__:
            fast = _fm._specialised_apply(cls)  # type: ignore[arg-type]
            generic = Op.__dict__["apply"]
            cls.apply = classmethod(fast) if fast is not None else generic  # type: ignore[method-assign]

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """Compute the output(s) from the arguments (tensors and anything else)."""
        raise NotImplementedError("Function.forward must be overridden (a @staticmethod)")

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        """One gradient per ``forward`` argument, given one per output."""
        raise NotImplementedError("Function.backward must be overridden (a @staticmethod)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` and, when grad mode is on and a tensor argument requires grad,
        record one node for ``backward``. Returns what ``forward`` returned.
        """
        node = BackwardFunction(cls)
        node.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        state = grad_mode.STATE
        record = any(node.needs_input_grad) and state.record
        with grad_mode.no_grad():
            result = cls.forward(node, *args, **kwargs)
        to_save = node._to_save or ()
        node._to_save = None
        if not record:
            if _fm._FORWARD_ON:
                _forward_tangents(cls, node, args, result, result)
            return result
        single = not isinstance(result, tuple)
        outs = (result,) if single else result
        tensor_args = [(p, a) for p, a in enumerate(args) if isinstance(a, Tensor)]
        node._arg_slots = [None] * len(args)
        for k, (p, _) in enumerate(tensor_args):
            node._arg_slots[p] = k
        node.inputs = tuple(a.grad_fn or a._acc for _, a in tensor_args)
        node.shapes = tuple(a.data.shape for _, a in tensor_args)
        node.dtypes = tuple(a.data.dtype for _, a in tensor_args)
        node.seq = _fm._next_seq()
        if state.anomaly:
            _fm._record_creation(node)
        diff = [
            isinstance(o, Tensor) and o.data.dtype.kind == "f" and id(o) not in node._non_diff
            for o in outs
        ]
        node._outputs = [
            (o.data.shape, o.data.dtype, d) if isinstance(o, Tensor) else ((), np.dtype("f8"), d)
            for o, d in zip(outs, diff, strict=True)
        ]
        new_outs: list[Any] = []
        slots: list[weakref.ref[Node]] = []
        diff_outs = [o for o, d in zip(outs, diff, strict=True) if d]
        multi = len(diff_outs) > 1 or (diff_outs and len(outs) > 1)
        total = sum(o.data.size for o in diff_outs)
        flat_dtype = result_dtype(*[o.data.dtype for o in diff_outs]) if diff_outs else None
        lo = 0
        out_nodes: dict[int, Node] = {}
        for o, d in zip(outs, diff, strict=True):
            if not isinstance(o, Tensor):
                new_outs.append(o)
                continue
            if not d:
                new_outs.append(Tensor._wrap(o.data))
                continue
            if multi:
                slot = _OutputSlot.__new__(_OutputSlot)
                slot.inputs = (node,)
                slot.shapes = ((total,),)
                slot.dtypes = (flat_dtype,)  # type: ignore[assignment]
                slot.seq = _fm._next_seq()
                slot.lo, slot.size, slot.total = lo, o.data.size, total
                slot._saved_versions = ()
                lo += o.data.size
                t = Tensor._wrap(o.data, slot)
                slots.append(weakref.ref(slot))
                out_nodes[id(o)] = slot
            else:
                t = Tensor._wrap(o.data, node)
                out_nodes[id(o)] = node
            new_outs.append(t)
        node._slots = slots if multi else None
        # what was saved: inputs by position, outputs by index, anything else by value
        arg_pos = {id(a): k for k, (_, a) in enumerate(tensor_args)}
        out_pos = {id(o): j for j, o in enumerate(diff_outs)}
        saved: list[tuple[int, Any, Any]] = []
        versions: list[tuple[Version, int]] = []
        for t in to_save:
            if t is None:
                saved.append((_OTHER, None, None))
            elif id(t) in out_pos:
                saved.append((_OUT, out_pos[id(t)], t.data))
            elif id(t) in arg_pos:
                saved.append((_IN, arg_pos[id(t)], t.data))
                c = t.version_counter()
                versions.append((c, c.value))
            else:
                saved.append((_OTHER, None, t.data))
        node.s_saved = saved
        node._saved_versions = tuple(versions)
        returned = new_outs[0] if single else tuple(new_outs)
        if _fm._FORWARD_ON:
            _forward_tangents(cls, node, args, result, returned)
        return returned


def _forward_tangents(cls: type, ctx: Any, args: Any, raw: Any, out: Any) -> None:
    from gradwise.autograd.forward_ad import custom_function_tangents

    custom_function_tangents(cls, ctx, args, raw, out)


BackwardFunction._saved_slots = ("s_saved",)  # what the memory report (inspect.py) counts

FunctionCtx = BackwardFunction
"""The type of ``ctx`` (PyTorch's name for it)."""
