"""``Parameter``: a leaf tensor that a :class:`~gradwise.nn.Module` registers as its own."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import Tensor
from gradwise.core.dtypes import DEFAULT_FLOAT
from gradwise.core.storage import as_array


class Parameter(Tensor):
    """A leaf Tensor (``requires_grad=True`` by default) that Modules collect as a parameter.

    Assigning a Parameter to a Module attribute registers it (``named_parameters``,
    ``state_dict``). A Tensor argument is shared, not copied (as PyTorch's
    ``nn.Parameter(t)``), and keeps its dtype and version counter; arrays and nested lists
    are copied (lists of Python floats give float32).

    Args:
        data: A Tensor, a NumPy array or nested Python numbers. ``None`` gives an empty
            float32 parameter.
        requires_grad: Whether the parameter requires gradients.

    Raises:
        RuntimeError: ``requires_grad=True`` with a non-float dtype.
    """

    __slots__ = ()

    def __init__(self, data: Tensor | Any = None, requires_grad: bool = True) -> None:
        version = None
        if data is None:
            arr = np.empty((0,), dtype=DEFAULT_FLOAT)
        elif isinstance(data, Tensor):
            arr = data.data
            version = data.version_counter()
        else:
            arr = as_array(data, copy=True)
        self.data = arr
        self.grad_fn = None
        self._grad = None
        self._version = version
        self._acc = None
        self._base = None
        self._rg = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        # The default deepcopy would copy the AccumulateGrad node, whose weak reference
        # still points at the original tensor; build a fresh leaf instead.
        out = Parameter(Tensor._wrap(self.data.copy()), requires_grad=self._rg)
        if self._grad is not None:
            out._grad = Tensor._wrap(self._grad.data.copy())
        memo[id(self)] = out
        return out
