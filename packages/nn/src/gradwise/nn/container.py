"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict`` and the ``MLP`` built on them."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, overload

from gradwise.autograd import Tensor
from gradwise.nn.activation import ReLU
from gradwise.nn.dropout import Dropout
from gradwise.nn.linear import Linear
from gradwise.nn.module import Module


def _index(i: object, n: int, op: str) -> int:
    try:
        k = operator.index(i)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{op}: indices must be integers or slices, got {type(i).__name__}"
        ) from None
    if not -n <= k < n:
        raise IndexError(f"{op}: index {k} is out of range for {n} modules")
    return k + n if k < 0 else k


def _check_module(m: object, op: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{op}: {type(m).__name__} is not a Module subclass")
    return m


class _Indexed(Module):
    """Shared machinery of the integer-keyed containers: children named "0", "1", ..."""

    def _items(self) -> list[Module]:
        return [m for m in self._modules.values() if m is not None]

    def _renumber(self, mods: list[Module]) -> None:
        for name in list(self._modules):
            self._forget(name)
            self.__dict__.pop(name, None)
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items())

    def __delitem__(self, idx: int | slice) -> None:
        mods = self._items()
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[_index(idx, len(mods), type(self).__name__)]
        self._renumber(mods)

    def __setitem__(self, idx: int, module: Module) -> None:
        i = _index(idx, len(self._modules), type(self).__name__)
        key = list(self._modules)[i]
        setattr(self, key, _check_module(module, type(self).__name__))

    def append(self, module: Module) -> Any:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self._modules)), _check_module(module, type(self).__name__))
        return self

    def extend(self, modules: Iterable[Module]) -> Any:
        """Append each of ``modules``; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index``."""
        mods = self._items()
        mods.insert(index, _check_module(module, type(self).__name__))
        self._renumber(mods)

    def index(self, module: Module) -> int:
        """The position of ``module`` (by identity)."""
        for i, m in enumerate(self._items()):
            if m is module:
                return i
        raise ValueError(f"{type(self).__name__}.index: module is not in the container")


class Sequential(_Indexed):
    """Modules applied one after another: ``Sequential(a, b)(x) == b(a(x))``.

    Built from modules (named ``"0"``, ``"1"``, ...) or one ``OrderedDict``/dict of named
    modules. Supports ``len``, iteration, ``seq[i]``, ``seq[i:j]`` (a ``Sequential``),
    ``append``, ``extend``, ``insert`` and ``del``.
    """

    @overload
    def __init__(self, *args: Module) -> None: ...

    @overload
    def __init__(self, arg: Mapping[str, Module], /) -> None: ...

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, m in args[0].items():
                self.add_module(name, _check_module(m, "Sequential"))
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), _check_module(m, "Sequential"))

    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    def __getitem__(self, idx: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(dict(items[idx]))  # type: ignore[arg-type]
        module = items[_index(idx, len(items), "Sequential")][1]
        assert module is not None
        return module

    def __call__(self, x: Tensor) -> Tensor:
        """Run :meth:`forward`."""
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        """Apply each module in turn."""
        for m in self._modules.values():
            if m is not None:
                x = m(x)
        return x


class ModuleList(_Indexed):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... (no ``forward``)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @overload
    def __getitem__(self, idx: slice) -> ModuleList: ...

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    def __getitem__(self, idx: int | slice) -> Module:
        mods = self._items()
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[_index(idx, len(mods), "ModuleList")]

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        self.extend(modules)
        return self

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self._items(), *other])

    def _child_lines(self) -> list[str]:
        # PyTorch compresses runs of identical reprs: "(0-2): 3 x Linear(...)".
        names = list(self._modules)
        reprs = [repr(m) for m in self._modules.values()]
        lines: list[str] = []
        i = 0
        while i < len(reprs):
            j = i
            while j + 1 < len(reprs) and reprs[j + 1] == reprs[i]:
                j += 1
            body = reprs[i].replace("\n", "\n  ")
            if j == i:
                lines.append(f"({names[i]}): {body}")
            else:
                lines.append(f"({names[i]}-{names[j]}): {j - i + 1} x {body}")
            i = j + 1
        return lines


class ModuleDict(Module):
    """An ordered mapping of names to modules, registered as children under those names."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        m = self._modules[key]
        assert m is not None
        return m

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module(module, "ModuleDict"))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        self.__dict__.pop(key, None)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        """The names, in insertion order."""
        return list(self._modules)

    def values(self) -> list[Module]:
        """The modules, in insertion order."""
        return [m for m in self._modules.values() if m is not None]

    def items(self) -> list[tuple[str, Module]]:
        """``(name, module)`` pairs, in insertion order."""
        return [(k, m) for k, m in self._modules.items() if m is not None]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or ``(name, module)`` pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for k, m in pairs:
            self[k] = m

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        m = self[key]
        del self[key]
        return m

    def clear(self) -> None:
        """Remove every module."""
        for k in list(self._modules):
            del self[k]


class MLP(Sequential):
    """A multilayer perceptron: ``Linear`` layers with an activation (and dropout) between.

    ``MLP([64, 128, 64, 10])`` is ``Sequential(Linear(64, 128), ReLU(), Linear(128, 64),
    ReLU(), Linear(64, 10))``: the activation, then ``Dropout(dropout)`` if ``dropout > 0``,
    follow every Linear but the last. Parameters come in layer order (keys
    ``0.weight, 0.bias, 2.weight, ...``).

    Args:
        sizes: Layer widths, input first; at least two.
        activation: A Module class, or any zero-argument callable returning a Module.
        dropout: Dropout probability after each hidden activation (0 for none).
        bias: Whether the Linear layers have biases.
        dtype: float32 (default) or float64.

    Raises:
        ValueError: fewer than two sizes, or ``dropout`` outside [0, 1].
    """

    def __init__(
        self,
        sizes: Iterable[int],
        activation: Callable[[], Module] = ReLU,
        dropout: float = 0.0,
        *,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        widths = list(sizes)
        if len(widths) < 2:
            raise ValueError(f"MLP: needs at least two sizes (input and output), got {widths}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1], got {dropout}")
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
            layers.append(Linear(n_in, n_out, bias=bias, dtype=dtype))
            if i < len(widths) - 2:
                act = activation()
                if not isinstance(act, Module):
                    raise TypeError(
                        f"MLP: activation() must return a Module, got {type(act).__name__}"
                    )
                layers.append(act)
                if dropout > 0:
                    layers.append(Dropout(dropout))
        super().__init__(*layers)
