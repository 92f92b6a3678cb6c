"""Anomaly mode: ``detect_anomaly()`` finds the op whose backward produced NaN or Inf.

Inside the context (per thread), every node records where it was created: the first
stack frame outside gradwise, as ``file:line in function``. A backward run in the mode
checks each gradient a node produces and raises ``RuntimeError`` at the first NaN or
Inf, naming the node (``grad_fn.name()``) and that line. Off, it costs one flag check
per op and per backward call (a module global counting the threads in the mode; the
per-thread flag is read only when it is not 0).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import gradwise
from gradwise.autograd import function as _fm
from gradwise.autograd import grad_mode
from gradwise.autograd.function import Node

F = TypeVar("F", bound=Callable[..., Any])

_LOCK = threading.Lock()
_SITES: weakref.WeakKeyDictionary[Node, str] = weakref.WeakKeyDictionary()
_ROOTS = tuple(os.path.join(os.path.abspath(p), "") for p in gradwise.__path__)


def user_frame() -> str:
    """``file:line in function`` of the innermost caller outside gradwise."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        module = frame.f_globals.get("__name__") or ""
        # generated code (the ops' apply) has no file but runs in gradwise's globals
        if not (module.startswith("gradwise.") or os.path.abspath(name).startswith(_ROOTS)):
            return f"{name}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def _record_creation(node: Node) -> None:
    _SITES[node] = user_frame()


_fm._record_creation = _record_creation


def creation_site(node: Node) -> str:
    """Where ``node`` was created (``file:line in function``), if anomaly mode was on then."""
    return _SITES.get(node, "<unknown: the op was created outside detect_anomaly()>")


def is_anomaly_enabled() -> bool:
    """Whether this thread is inside ``detect_anomaly()``."""
    return grad_mode.STATE.anomaly


class detect_anomaly:
    """Context manager and decorator: record where ops are created and raise on NaN/Inf
    produced in backward (this thread only).

    Args:
        check_nan: whether to check gradients (PyTorch's flag; False only records sites).
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(grad_mode.STATE.anomaly)
        grad_mode.STATE.anomaly = True
        with _LOCK:
            _fm._ANOMALY_ON += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        grad_mode.STATE.anomaly = self._saved.pop()
        with _LOCK:
            _fm._ANOMALY_ON -= 1

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of ``fn`` runs in anomaly mode."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
