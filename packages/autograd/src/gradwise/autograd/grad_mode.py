"""Grad modes, per thread: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

Each is a context manager and a decorator. The state lives in a ``threading.local``, so a
``no_grad`` block in one thread never affects another.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled: bool = True
    inference: bool = False
    anomaly: bool = False  # detect_anomaly() (gradwise.autograd.anomaly)
    record: bool = True
    """``enabled and not inference``, kept in step by ``__setattr__``: every op reads it, and
    one thread-local read costs as much as the rest of the check."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "enabled" or name == "inference":
            super().__setattr__("record", self.enabled and not self.inference)


STATE = _State()


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are recorded (this thread)."""
    return STATE.record


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()``."""
    return STATE.inference


class _Mode:
    """A grad-mode switch: computes the new state on enter, restores the old one on exit."""

    def __init__(self) -> None:
        self._saved: list[tuple[bool, bool]] = []

    def _new_state(self) -> tuple[bool, bool]:
        raise NotImplementedError

    def __enter__(self) -> None:
        self._saved.append((STATE.enabled, STATE.inference))
        STATE.enabled, STATE.inference = self._new_state()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        STATE.enabled, STATE.inference = self._saved.pop()

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of ``fn`` runs inside this mode."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mode = copy.copy(self)
            mode._saved = []
            with mode:
                return fn(*args, **kwargs)

        return cast(F, wrapper)


class no_grad(_Mode):
    """Context manager and decorator: operations inside are not recorded for backward."""

    def _new_state(self) -> tuple[bool, bool]:
        return False, STATE.inference


class enable_grad(_Mode):
    """Context manager and decorator: turn recording back on inside ``no_grad``."""

    def _new_state(self) -> tuple[bool, bool]:
        return True, STATE.inference


class set_grad_enabled(_Mode):
    """Switch recording on or off: as a call it sets the mode; as a context it restores it."""

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled: mode must be a bool, got {type(mode).__name__}")
        super().__init__()
        self.mode = mode
        self._previous = (STATE.enabled, STATE.inference)
        STATE.enabled = mode

    def __enter__(self) -> None:
        self._saved.append(self._previous)
        STATE.enabled = self.mode

    def _new_state(self) -> tuple[bool, bool]:
        return self.mode, STATE.inference

    def __call__(self, fn: F) -> F:
        """Use as a decorator (the call that made this object already switched the mode)."""
        STATE.enabled, STATE.inference = self._previous

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            saved = (STATE.enabled, STATE.inference)
            STATE.enabled = self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.enabled, STATE.inference = saved

        return cast(F, wrapper)


class inference_mode(_Mode):
    """Like ``no_grad`` and stronger: ``is_grad_enabled()`` is False inside, even under
    ``enable_grad``.
    """

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self.mode = mode

    def _new_state(self) -> tuple[bool, bool]:
        return (STATE.enabled, True) if self.mode else (STATE.enabled, False)
