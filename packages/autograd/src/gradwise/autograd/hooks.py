"""Tensor gradient hooks: ``Tensor.register_hook(fn)``.

A hook lives on the tensor's graph node (its ``grad_fn``, or a leaf's ``AccumulateGrad``),
so it fires once per backward with the tensor's whole gradient (summed over every use)
and dies with the graph. While any hook is registered, backward runs the general engine
(engine.py), which calls them; the fast engine never looks for hooks.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from gradwise.autograd import function as _fm
from gradwise.autograd.function import Node

if TYPE_CHECKING:
    from gradwise.autograd.tensor import Tensor

Hook = Callable[["Tensor"], "Tensor | None"]


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook (idempotent)."""

    __slots__ = ("_hook", "_hooks")

    def __init__(self, hooks: list[Hook], hook: Hook) -> None:
        self._hooks: weakref.ref[list[Hook]] | None = _ListRef(hooks)
        self._hook = hook

    def remove(self) -> None:
        """Unregister the hook; later backward passes no longer call it."""
        ref, self._hooks = self._hooks, None
        hooks = ref() if ref is not None else None
        if hooks is None:
            return
        for i, h in enumerate(hooks):
            if h is self._hook:
                del hooks[i]
                _fm.HOOKS.count -= 1
                return

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _HookList(list):  # type: ignore[type-arg]
    """A list that can be referenced weakly (plain lists cannot)."""

    __slots__ = ("__weakref__",)


def _ListRef(hooks: list[Hook]) -> weakref.ref[list[Hook]]:
    return weakref.ref(hooks)


def _forget(hooks: list[Hook]) -> None:
    """The node died: its hooks no longer count."""
    _fm.HOOKS.count -= len(hooks)
    hooks.clear()


def register_hook(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Call ``hook(grad)`` whenever a gradient for ``tensor`` is computed.

    The hook may return a tensor of the same shape to use instead of the gradient (for
    a leaf: before it is accumulated into ``.grad``), or None to keep it.

    Raises:
        RuntimeError: if the tensor does not require grad.
        TypeError: if ``hook`` is not callable.
    """
    if not callable(hook):
        raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
    node: Node | None = tensor.grad_fn or tensor._acc
    if node is None:
        raise RuntimeError(
            "register_hook: cannot register a hook on a tensor that does not require grad"
        )
    hooks: list[Hook] | None = getattr(node, "_hooks", None)
    if hooks is None:
        hooks = _HookList()
        node._hooks = hooks
        weakref.finalize(node, _forget, hooks)
    hooks.append(hook)
    _fm.HOOKS.count += 1
    return RemovableHandle(hooks, hook)
