"""``Module``: the base of every layer; registers parameters, buffers and sub-modules.

Attributes stay plain instance attributes (``self.weight`` is read without any
``__getattr__``, so type checkers see its type). ``__setattr__`` additionally records
parameters, buffers and children, in registration order, in ``_parameters``,
``_buffers`` and ``_modules``, which drive ``named_parameters``, ``state_dict`` and the
other walks exactly as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

import numpy as np

from gradwise.autograd import Tensor, no_grad
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, as_dtype
from gradwise.nn.parameter import Parameter

M = TypeVar("M", bound="Module")
_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta")


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: ``(missing_keys, unexpected_keys)``."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError, ValueError):
    """A state dict does not fit a module (missing/unexpected keys or a shape mismatch).

    It is a ``RuntimeError`` as in PyTorch and a ``ValueError`` as gradwise's shape errors,
    so either ``except`` clause catches it.
    """


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


class Module:
    """Base class of all layers: subclass it, call ``super().__init__()``, define ``forward``.

    Assigning a :class:`Parameter`, a ``Module`` or (after :meth:`register_buffer`) a
    buffer Tensor to an attribute registers it. ``module(x)`` calls ``forward(x)``.

    Example:
        >>> class Net(Module):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.fc = Linear(4, 2)
        ...     def forward(self, x: Tensor) -> Tensor:
        ...         return self.fc(x).relu()
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})

    # ---- calling -------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; every subclass defines it."""
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the "forward" method')

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run :meth:`forward`."""
        return self.forward(*args, **kwargs)

    # ---- registration ----------------------------------------------------------------------

    def _registry(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what} before Module.__init__() call (call super().__init__() "
                f"first in {type(self).__name__}.__init__)"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params: dict[str, Parameter | None] | None = d.get("_parameters")
        if isinstance(value, Parameter):
            self._registry("parameters")
            assert params is not None
            if name not in params:  # re-assigning keeps the registration order
                self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._registry("module")
            if name not in self._modules:
                self._forget(name)
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} of "
                    f"{type(self).__name__} (gradwise.nn.Parameter or None expected)"
                )
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} of "
                    f"{type(self).__name__} (gradwise.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} of "
                    f"{type(self).__name__} (gradwise.autograd.Tensor or None expected)"
                )
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if "_parameters" in self.__dict__:
            self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self._modules.pop(name, None)

    def _check_name(self, name: object, what: str) -> str:
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a str, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{what} name must be non-empty and contain no dot, got {name!r}")
        if name in self.__dict__ and not (
            name in self._parameters or name in self._buffers or name in self._modules
        ):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")
        return name

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or ``None``, a declared but absent parameter) as ``name``."""
        self._registry("parameters")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: cannot assign {type(param).__name__} as parameter "
                f"{name!r} (gradwise.nn.Parameter or None expected)"
            )
        self._forget(name)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a non-parameter state tensor (e.g. BatchNorm's running mean).

        Persistent buffers are part of :meth:`state_dict`; all buffers follow
        :meth:`to`.
        """
        self._registry("buffers")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: cannot assign {type(tensor).__name__} as buffer {name!r} "
                "(gradwise.autograd.Tensor or None expected)"
            )
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` (or ``None``) as the child ``name``."""
        self._registry("module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        self._forget(name)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``""`` is self)."""
        mod: Module = self
        if target == "":
            return mod
        for part in target.split("."):
            child = mod._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r}")
            mod = child
        return mod

    # ---- walking ---------------------------------------------------------------------------

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for self and every descendant, depth first; each once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """Self and every descendant module, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for the direct children, each once."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, child in self.named_children():
            yield child

    def _named_members(
        self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for mod_prefix, mod in mods:
            store: dict[str, Any] = mod._parameters if kind == "p" else mod._buffers
            for name, value in store.items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)``: own parameters first, then each child's, in order.

        A parameter shared by several modules is yielded once (under its first name).
        """
        yield from self._named_members("p", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, each once, in :meth:`named_parameters` order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` for every buffer, persistent or not."""
        yield from self._named_members("b", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer, each once."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self: M, fn: Callable[[Module], object]) -> M:
        """Call ``fn`` on every descendant (children first) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ------------------------------------------------------------------

    def train(self: M, mode: bool = True) -> M:
        """Set training mode (``mode=False``: evaluation) on self and descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be a bool, got {mode!r}")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self: M) -> M:
        """Evaluation mode (``train(False)``): dropout off, BatchNorm uses running stats."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to ``None``, or zero it in place)."""
        for p in self.parameters():
            g = p.grad
            if g is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                g.data.fill(0)
                g.version_counter().value += 1

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        """Set ``requires_grad`` of every parameter (e.g. ``False`` to freeze); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- state dict ---------------------------------------------------------------------------

    def _own_state(self) -> Iterator[tuple[str, Tensor]]:
        for name, p in self._parameters.items():
            if p is not None:
                yield name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                yield name, b

    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        # PyTorch's order: each module's parameters, then its persistent buffers, then its
        # children's, depth first (a shared module contributes under every name).
        for prefix, mod in self.named_modules(remove_duplicate=False):
            lead = prefix + "." if prefix else ""
            for name, t in mod._own_state():
                yield lead + name, t

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, in PyTorch's key order.

        The values are detached tensors that share memory with the module's own (so a
        later optimizer step shows in them); ``keep_vars=True`` gives the originals.
        """
        out: dict[str, Tensor] = {}
        for key, t in self._state_items():
            out[prefix + key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Tensor | Array], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values into the existing parameters and buffers (keeping their dtypes).

        All entries are checked before anything is written: a shape mismatch raises even
        with ``strict=False`` and installs nothing. Each tensor written to has its version
        counter bumped.

        Args:
            state_dict: Tensors or NumPy arrays by dotted name, as :meth:`state_dict` gives.
            strict: Raise when keys are missing or unexpected.

        Returns:
            ``(missing_keys, unexpected_keys)``.

        Raises:
            StateDictError: (a RuntimeError and a ValueError) on a shape mismatch, or on
                missing/unexpected keys with ``strict=True``.
            TypeError: a value is neither a Tensor nor an array.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of names to tensors, got "
                f"{type(state_dict).__name__}"
            )
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors: list[str] = []
        plan: list[tuple[Tensor, Array]] = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                arr = value.data
            elif isinstance(value, np.ndarray | np.generic):
                arr = np.asarray(value)
            else:
                raise TypeError(
                    f"load_state_dict: value for {key!r} must be a Tensor or a NumPy array, "
                    f"got {type(value).__name__}"
                )
            if arr.shape != target.data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{cops.fmt_shape(arr.shape)} from checkpoint, the shape in current model "
                    f"is {cops.fmt_shape(target.data.shape)}."
                )
                continue
            plan.append((target, arr))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(missing) + ".")
        if errors:
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        with no_grad():
            for target, arr in plan:
                if arr is not target.data:
                    np.copyto(target.data, arr, casting="unsafe")
                target.version_counter().value += 1
        return IncompatibleKeys(missing, unexpected)

    # ---- dtype ------------------------------------------------------------------------------

    def to(self: M, *args: Any, **kwargs: Any) -> M:
        """Cast floating parameters, their grads and buffers in place; returns self.

        ``to(dtype)``, ``to("float64")``, ``to(dtype=...)``; a device ``"cpu"`` (the only
        one) is accepted and ignored, so ``model.to("cpu")`` ports unchanged. The
        Parameter objects stay the same (an optimizer holding them keeps working).

        Raises:
            TypeError: a non-float dtype.
        """
        dtype: Any = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in _DEVICES:
                device = a
            elif dtype is None:
                dtype = a
            else:
                raise TypeError(f"to: got more than one dtype ({dtype!r} and {a!r})")
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"to: only the 'cpu' device exists in gradwise, got {device!r}")
        if dtype is None:
            return self
        dt = as_dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"to: Module.to only accepts floating point dtypes, got {dt}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind != "f" or t.data.dtype == dt:
                continue
            t.data = t.data.astype(dt)
            t.version_counter().value += 1
            g = t.grad
            if g is not None:
                t._grad = Tensor._wrap(g.data.astype(dt))
        return self

    def double(self: M) -> M:
        """Cast floating parameters and buffers to float64; returns self."""
        return self.to(np.float64)

    def float(self: M) -> M:
        """Cast floating parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def cpu(self: M) -> M:
        """Returns self (gradwise runs on the CPU only)."""
        return self

    # ---- repr -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr (subclasses override)."""
        return ""

    def _child_lines(self) -> list[str]:
        lines = []
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(child), 2))
        return lines

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = self._child_lines()
        body = extra_lines + child_lines
        head = type(self).__name__ + "("
        if not body:
            return head + ")"
        if not child_lines and len(extra_lines) == 1:
            return head + extra_lines[0] + ")"
        return head + "\n  " + "\n  ".join(body) + "\n)"


class _Unary(Module):
    """A Module from one Tensor to one Tensor, with a ``__call__`` type checkers can see."""

    def forward(self, x: Tensor) -> Tensor:
        """The computation; every subclass defines it."""
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the "forward" method')

    def __call__(self, x: Tensor) -> Tensor:
        """Run :meth:`forward`."""
        return self.forward(x)
