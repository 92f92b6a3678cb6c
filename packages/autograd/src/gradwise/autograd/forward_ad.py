"""Forward-mode automatic differentiation: dual tensors, ``jvp`` and ``jacobian``.

Inside a :class:`dual_level` a tensor may carry a *tangent* (an array of its own shape
and dtype, made with :func:`make_dual`). Every op that receives a tangent computes its
output's tangent right after its forward, from what forward kept and the input tangents,
with the op's ``jvp(out, *tangents)`` rule: the directional derivative is pushed along
with the values, in one pass, never by a double-backward trick.

Tangents are plain arrays in a slot of the tensor. They exist only inside a level (one
per thread, as PyTorch's ``forward_ad.dual_level``; levels do not nest) and are dropped
when the level closes. Outside any level the only cost in ``apply`` is one read of a
module global (``function._FORWARD_ON``). ``no_grad`` does not stop tangents (as in
PyTorch); ``inference_mode`` does.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np

from gradwise.autograd import function as _function
from gradwise.autograd.function import Function, Grads, Node, run_backward
from gradwise.autograd.grad_mode import STATE as _GRAD_STATE
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array

__all__ = [
    "NoForwardRule",
    "UnpackedDualTensor",
    "dual_level",
    "enter_dual_level",
    "exit_dual_level",
    "jacobian",
    "jvp",
    "make_dual",
    "unpack_dual",
]

fmt = cops.fmt_shape


class _Level:
    """One open dual level: the tensors that got a tangent in it (weakly), to clear on exit."""

    __slots__ = ("limit", "saved", "tracked")

    def __init__(self) -> None:
        self.tracked: list[weakref.ref[Tensor]] = []
        self.limit = 1024
        # per node: its inputs' tangents and its output's, for the tensors that
        # backward_graph makes of saved arrays (forward-over-reverse)
        self.saved: weakref.WeakKeyDictionary[Node, tuple[Sequence[Array | None], Array]] = (
            weakref.WeakKeyDictionary()
        )

    def track(self, t: Tensor) -> None:
        tracked = self.tracked
        tracked.append(weakref.ref(t))
        if len(tracked) > self.limit:  # drop dead entries now and then (long loops)
            tracked[:] = [r for r in tracked if r() is not None]
            self.limit = max(1024, 2 * len(tracked))

    def clear(self) -> None:
        for r in self.tracked:
            t = r()
            if t is not None:
                with contextlib.suppress(AttributeError):
                    del t._tangent
        self.tracked = []
        self.saved = weakref.WeakKeyDictionary()


class _LocalState(threading.local):
    level: _Level | None = None


_LOCAL = _LocalState()
_COUNT_LOCK = threading.Lock()


def enter_dual_level() -> int:
    """Open this thread's dual level (as ``torch.autograd.forward_ad.enter_dual_level``).

    Returns:
        The level's index (always 0: levels do not nest).

    Raises:
        RuntimeError: a level is already open in this thread.
    """
    if _LOCAL.level is not None:
        raise RuntimeError(
            "dual_level: nested forward-mode AD is not supported (a dual level is already "
            "open in this thread)"
        )
    _LOCAL.level = _Level()
    with _COUNT_LOCK:
        _function._FORWARD_ON += 1
    return 0


def exit_dual_level() -> None:
    """Close this thread's dual level; every tangent made in it is dropped.

    Raises:
        RuntimeError: no level is open.
    """
    level = _LOCAL.level
    if level is None:
        raise RuntimeError("exit_dual_level: no dual level is open in this thread")
    _LOCAL.level = None
    with _COUNT_LOCK:
        _function._FORWARD_ON -= 1
    level.clear()


class dual_level:
    """Context manager: tangents exist inside it and are dropped when it exits.

    Example::

        with forward_ad.dual_level():
            x = forward_ad.make_dual(primal, tangent)
            y = (x * x).sum()
            dy = forward_ad.unpack_dual(y).tangent   # 2 * primal . tangent
    """

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exit_dual_level()


class NoForwardRule(RuntimeError):
    """A tangent reached an op that has no forward-mode (``jvp``) rule."""


class _Alias(Function):
    """y = x (a view sharing x's memory);  dx = grad.  Carries no tangent over."""

    __slots__ = ()
    view = True

    def forward(self, x: Array) -> Array:
        return x.view()

    def backward(self, grad: Array) -> Grads:
        return (grad,)

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The identity, for ``create_graph=True``."""
        return (grad,)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """No tangent: ``make_dual`` sets the alias's own, ``unpack_dual`` wants none."""
        return None

    def name(self) -> str:
        """``"AliasBackward"``."""
        return "AliasBackward"


def _tangent_array(primal: Tensor, tangent: Any, op: str, what: str = "tangent") -> Array:
    if isinstance(tangent, Tensor):
        arr = tangent.data
    elif isinstance(tangent, np.ndarray):
        arr = tangent
    else:
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(tangent).__name__}")
    p = primal.data
    if arr.shape != p.shape:
        raise ValueError(
            f"{op}: {what} has shape {fmt(arr.shape)} but the primal has shape {fmt(p.shape)}; "
            "they must match"
        )
    if arr.dtype != p.dtype:
        raise TypeError(
            f"{op}: {what} has dtype {arr.dtype} but the primal has dtype {p.dtype}; they must "
            "match"
        )
    return arr


def _float_tensor(x: Any, op: str, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(
            f"{op}: {what} must be a float tensor (float32 or float64), got dtype {x.data.dtype}"
        )
    return x


def make_dual(tensor: Tensor, tangent: Tensor | Array) -> Tensor:
    """A tensor with ``tensor``'s values (a view, in its graph) and ``tangent`` as tangent.

    Args:
        tensor: The primal, a float tensor.
        tangent: A tensor of the same shape and dtype.

    Returns:
        The dual tensor; ops on it push tangents while the level is open.

    Raises:
        RuntimeError: outside a ``dual_level``.
        ValueError: shapes differ. TypeError: dtypes differ, or non-float / non-Tensor args.
    """
    level = _LOCAL.level
    if level is None:
        raise RuntimeError(
            "make_dual: no dual level is open; use `with forward_ad.dual_level():` first"
        )
    _float_tensor(tensor, "make_dual", "tensor")
    arr = _tangent_array(tensor, tangent, "make_dual")
    dual = _Alias.apply(tensor)
    dual._tangent = arr
    level.track(dual)
    return dual


class UnpackedDualTensor(NamedTuple):
    """What :func:`unpack_dual` returns: the primal and its tangent (or None)."""

    primal: Tensor
    tangent: Tensor | None


def unpack_dual(tensor: Tensor) -> UnpackedDualTensor:
    """``(primal, tangent)`` of a tensor; tangent is None if it has none (or no level is open).

    The primal is a view of ``tensor`` (in its graph) without the tangent.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    t = _tangent_of(tensor)
    return UnpackedDualTensor(_Alias.apply(tensor), None if t is None else Tensor._wrap(t))


def _tangent_of(tensor: Tensor) -> Array | None:
    if _LOCAL.level is None:
        return None
    t: Array | None = getattr(tensor, "_tangent", None)
    return t


def _push(node: Function, out: Tensor, inputs: Sequence[Tensor]) -> None:
    """Give ``out`` the tangent of ``node``'s op when an input has one (called by ``apply``)."""
    level = _LOCAL.level
    if level is None or _GRAD_STATE.inference:
        return
    tangents = [getattr(t, "_tangent", None) for t in inputs]
    if all(t is None for t in tangents) or not type(node).differentiable:
        return
    data = out.data
    if data.dtype.kind != "f":
        return
    rule: Callable[..., Array | None] | None = getattr(node, "jvp", None)
    if rule is None:
        raise NoForwardRule(
            f"{type(node).__name__}: this op has no forward-mode (jvp) rule, but a tangent "
            "reached it inside forward_ad.dual_level (jvp/jacobian in forward mode); use "
            "reverse mode (vjp, grad, jacobian(..., strategy='reverse-mode')) instead"
        )
    t = rule(data, *tangents)
    if t is None:
        return
    if t.shape != data.shape:
        t = np.broadcast_to(t, data.shape).copy()
    if t.dtype != data.dtype:
        t = t.astype(data.dtype)
    out._tangent = t
    level.track(out)
    level.saved[node] = (tangents, t)


def _attach_saved(node: Node, i: int, saved: Tensor) -> None:
    """Give a tensor made of a saved array (``saved_input``/``saved_output``, in
    ``backward_graph``) the tangent its value had in forward, so that a gradient computed
    with ``create_graph=True`` inside a dual level carries its own tangent (H v).
    """
    level = _LOCAL.level
    if level is None:
        return
    record = level.saved.get(node)
    if record is None:
        return
    tangent = record[1] if i < 0 else record[0][i]
    if tangent is None:
        return
    shape = saved.data.shape
    if tangent.shape != shape:
        if tangent.size != saved.data.size:
            return
        tangent = tangent.reshape(shape)
    saved._tangent = tangent
    level.track(saved)


_function._forward_tangent = _push
_function._forward_saved = _attach_saved


def set_tangent(t: Tensor, tangent: Array | None) -> None:
    """Give ``t`` this tangent (None removes it); used by in-place ops that move results."""
    level = _LOCAL.level
    if level is None:
        return
    if tangent is None:
        with contextlib.suppress(AttributeError):
            del t._tangent
        return
    t._tangent = tangent
    level.track(t)


# ---- jvp --------------------------------------------------------------------------------


def _outputs(out: Any, op: str) -> tuple[tuple[Tensor, ...], bool]:
    if isinstance(out, Tensor):
        return (out,), False
    if isinstance(out, tuple | list) and all(isinstance(o, Tensor) for o in out):
        return tuple(out), True
    raise TypeError(
        f"{op}: the function must return a Tensor or a tuple of Tensors, got {type(out).__name__}"
    )


def jvp(
    func: Callable[..., Any], primals: Sequence[Tensor], tangents: Sequence[Tensor]
) -> tuple[Any, Any]:
    """``(func(*primals), J v)``: the Jacobian-vector product by forward mode.

    As ``torch.func.jvp``: ``primals`` and ``tangents`` are tuples of tensors of matching
    shapes and dtypes; for a function returning a tuple, both results are tuples. One
    forward pass computes values and tangents together. Outputs that do not depend on
    the primals get zero tangents.

    Args:
        func: Maps the primals (as positional arguments) to a Tensor or tuple of Tensors.
        primals: The point, a tuple of float tensors.
        tangents: The direction, one tensor per primal.

    Returns:
        ``(outputs, tangent_outputs)``, each a Tensor or a tuple like ``func``'s result.

    Raises:
        TypeError: non-tuple arguments, non-Tensor or non-float entries, dtypes that differ.
        ValueError: counts or shapes that differ.
        RuntimeError: a dual level is already open, or an op without a jvp rule is reached.
    """
    op = "jvp"
    for name, seq in (("primals", primals), ("tangents", tangents)):
        if not isinstance(seq, tuple | list):
            raise TypeError(
                f"{op}: {name} must be a tuple of Tensors, got {type(seq).__name__} (wrap a "
                "single tensor as (x,))"
            )
    if len(primals) != len(tangents):
        raise ValueError(
            f"{op}: got {len(primals)} primals but {len(tangents)} tangents; give one tangent "
            "per primal"
        )
    ps = [_float_tensor(p, op, f"primals[{i}]") for i, p in enumerate(primals)]
    ts = [
        _tangent_array(p, t, op, f"tangents[{i}]")
        for i, (p, t) in enumerate(zip(ps, tangents, strict=True))
    ]
    with dual_level():
        duals = [make_dual(p, t) for p, t in zip(ps, ts, strict=True)]
        outs, is_tuple = _outputs(func(*duals), op)
        values: list[Tensor] = []
        tans: list[Tensor] = []
        for o in outs:
            t = _tangent_of(o)
            values.append(_Alias.apply(o))
            if t is None:
                t = np.zeros(o.data.shape, dtype=o.data.dtype)
            tans.append(Tensor._wrap(t))
    if is_tuple:
        return tuple(values), tuple(tans)
    return values[0], tans[0]


# ---- jacobian -----------------------------------------------------------------------------


def jacobian(
    func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], *, strategy: str = "auto"
) -> Any:
    """The Jacobian of ``func`` at ``inputs``, shaped ``out.shape + x.shape`` per pair.

    As ``torch.autograd.functional.jacobian``: ``inputs`` is a Tensor or a tuple of
    Tensors (passed to ``func`` as positional arguments); for tuple inputs and/or tuple
    outputs the result nests as ``J[i][j]`` = d output i / d input j (a tuple over the
    inputs, over the outputs, or of tuples). Entries have the input's dtype.

    ``strategy='auto'`` (the default) picks forward mode, one ``jvp`` per input element,
    when the inputs have fewer elements in all than the outputs, and reverse mode, one
    backward (graph retained) per output element, otherwise. ``'forward-mode'`` and
    ``'reverse-mode'`` force one. Finding the output shapes costs one extra forward pass
    in forward mode.

    Raises:
        TypeError: non-Tensor or non-float inputs, a function not returning tensors.
        ValueError: an unknown strategy.
    """
    op = "jacobian"
    if strategy not in ("auto", "forward-mode", "reverse-mode"):
        raise ValueError(
            f"{op}: strategy must be 'auto', 'forward-mode' or 'reverse-mode', got {strategy!r}"
        )
    in_tuple = isinstance(inputs, tuple | list)
    xs = [
        _float_tensor(x, op, f"inputs[{i}]" if in_tuple else "inputs")
        for i, x in enumerate(inputs if isinstance(inputs, tuple | list) else (inputs,))
    ]
    leaves = [x.detach().requires_grad_(True) for x in xs]
    outs, out_tuple = _outputs(func(*leaves), op)
    n_in = sum(x.data.size for x in xs)
    n_out = sum(o.data.size for o in outs)
    forward = strategy == "forward-mode" or (strategy == "auto" and n_in < n_out)
    jac = [[np.zeros(o.data.shape + x.data.shape, dtype=x.data.dtype) for x in xs] for o in outs]
    if forward:
        del outs
        _forward_columns(func, xs, jac)
    else:
        _reverse_rows(outs, leaves, jac)
    rows = [tuple(Tensor._wrap(j) for j in row) for row in jac]
    if not out_tuple:
        return rows[0] if in_tuple else rows[0][0]
    return tuple(row if in_tuple else row[0] for row in rows)


def _reverse_rows(outs: Sequence[Tensor], leaves: Sequence[Tensor], jac: list[list[Array]]) -> None:
    """Fill ``jac`` one output element at a time (one backward each, graph retained)."""
    nodes = [leaf._acc for leaf in leaves]
    for i, o in enumerate(outs):
        if not o._rg or o.data.size == 0:
            continue  # a constant output: its rows stay zero
        flats = [j.reshape(o.data.size, x.data.size) for j, x in zip(jac[i], leaves, strict=True)]
        for k in range(o.data.size):
            seed = np.zeros(o.data.shape, dtype=o.data.dtype)
            seed.reshape(-1)[k] = 1
            grads = run_backward([o], [seed], retain_graph=True, op="jacobian")
            for j, node in enumerate(nodes):
                g = grads.get(node) if node is not None else None
                if g is not None:
                    flats[j][k] = g.reshape(-1)


def _forward_columns(
    func: Callable[..., Any], xs: Sequence[Tensor], jac: list[list[Array]]
) -> None:
    """Fill ``jac`` one input element at a time (one forward pass with tangents each)."""
    primals = [x.detach() for x in xs]
    with no_grad(), dual_level():
        for j, x in enumerate(primals):
            n = x.data.size
            for k in range(n):
                tangent = np.zeros(x.data.shape, dtype=x.data.dtype)
                tangent.reshape(-1)[k] = 1
                args = [
                    make_dual(p, Tensor._wrap(tangent)) if i == j else p
                    for i, p in enumerate(primals)
                ]
                outs, _ = _outputs(func(*args), "jacobian")
                for i, o in enumerate(outs):
                    t = _tangent_of(o)
                    if t is not None and o.data.size:
                        jac[i][j].reshape(o.data.size, n)[:, k] = t.reshape(-1)
                del args, outs


# ---- forward-over-reverse: H v as the jvp of the gradient --------------------------------


def _scalar_output(f: Callable[[Tensor], Tensor], x: Tensor, op: str) -> Tensor:
    y = f(x)
    if not isinstance(y, Tensor) or y.data.size != 1:
        shape = fmt(y.data.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{op}: f must return a one-element Tensor, got {shape}")
    return y


def hvp_forward_over_reverse(
    f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    """``(f(x), H v)`` as the tangent of the gradient: one forward pass with tangent v, one
    backward with ``create_graph=True`` whose ops push tangents too.

    Raises:
        NoForwardRule: an op on the way has no jvp rule (``hvp`` then falls back to
            reverse-over-reverse).
        ValueError: ``f`` does not return a one-element tensor.
    """
    from gradwise.autograd.functional import grad

    leaf = _float_tensor(x, "hvp", "x").detach().requires_grad_(True)
    tangent = _tangent_array(leaf, v, "hvp", "v")
    with dual_level():
        d = make_dual(leaf, tangent)
        y = _scalar_output(f, d, "hvp")
        value = y.detach()
        hv = None
        if y._rg:
            (g,) = grad(y, d, create_graph=True, allow_unused=True)
            hv = None if g is None else _tangent_of(g)
    if hv is None:
        hv = np.zeros(leaf.data.shape, dtype=leaf.data.dtype)
    return value, Tensor._wrap(np.asarray(hv, dtype=leaf.data.dtype))


def hessian_forward_over_reverse(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The Hessian of a scalar ``f`` at ``x`` (shape ``x.shape + x.shape``), one
    forward-over-reverse H e_k per element of x.
    """
    n = x.data.size
    h = np.zeros((n, n), dtype=x.data.dtype)
    for k in range(n):
        e = np.zeros(x.data.shape, dtype=x.data.dtype)
        e.reshape(-1)[k] = 1
        _, column = hvp_forward_over_reverse(f, x, Tensor._wrap(e))
        h[:, k] = column.data.reshape(-1)
    return Tensor._wrap(h.reshape(x.data.shape + x.data.shape))


# ---- custom Functions ----------------------------------------------------------------------


def custom_function_tangents(cls: type, ctx: Any, args: Sequence[Any], raw: Any, out: Any) -> None:
    """Tangents for the outputs of a custom ``Function`` (called by its ``apply``).

    With a ``jvp(ctx, *tangents)`` staticmethod (as PyTorch's), its results are the
    outputs' tangents (one per output; tangents come in one per argument, None for
    arguments without one). Without one, the tangents that the gradwise ops inside
    ``forward`` pushed are kept; a float output that got none (forward left gradwise, e.g.
    through NumPy) raises :class:`NoForwardRule` naming the Function.
    """
    if _LOCAL.level is None or _GRAD_STATE.inference:
        return
    tangents = [_tangent_of(a) if isinstance(a, Tensor) else None for a in args]
    if all(t is None for t in tangents):
        return
    outs = out if isinstance(out, tuple) else (out,)
    raws = raw if isinstance(raw, tuple) else (raw,)
    rule = getattr(cls, "jvp", None)
    if rule is not None:
        res = rule(ctx, *[None if t is None else Tensor._wrap(t) for t in tangents])
        given = res if isinstance(res, tuple) else (res,)
        if len(given) != len(outs):
            raise RuntimeError(
                f"{cls.__name__}.jvp: returned {len(given)} tangents for {len(outs)} outputs"
            )
        for o, t in zip(outs, given, strict=True):
            if isinstance(o, Tensor) and t is not None:
                arr = t.data if isinstance(t, Tensor) else np.asarray(t)
                set_tangent(
                    o,
                    _tangent_array(o, arr.astype(o.data.dtype, copy=False), f"{cls.__name__}.jvp"),
                )
        return
    for r, o in zip(raws, outs, strict=True):
        if not isinstance(o, Tensor) or o.data.dtype.kind != "f":
            continue
        t = _tangent_of(r) if isinstance(r, Tensor) else None
        if t is None:
            raise NoForwardRule(
                f"{cls.__name__}: a tangent reached this custom Function, which has no jvp "
                "staticmethod, and its forward's output carries no tangent (forward left "
                "gradwise ops, e.g. through NumPy); define jvp(ctx, *tangents) returning one "
                "tangent per output"
            )
        if o is not r:
            set_tangent(o, t)
