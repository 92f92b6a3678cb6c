"""Activation modules and ``Flatten``: thin Modules around the autograd functions."""

from __future__ import annotations

from gradwise.autograd import (
    Tensor,
    flatten,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from gradwise.nn.module import _Unary


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class ReLU(_Unary):
    """y = max(x, 0).

    Args:
        inplace: Accepted for PyTorch compatibility; the result is computed out of place
            (same values).
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply ReLU."""
        return relu(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)


class LeakyReLU(_Unary):
    """y = x if x > 0 else negative_slope * x.

    Args:
        negative_slope: The slope for negative inputs.
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply leaky ReLU."""
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        """``negative_slope=..``."""
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(_Unary):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply the logistic sigmoid."""
        return sigmoid(x)


class Tanh(_Unary):
    """y = tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply tanh."""
        return tanh(x)


class GELU(_Unary):
    """y = x Phi(x), or PyTorch's tanh approximation with ``approximate='tanh'``.

    Raises:
        ValueError: ``approximate`` other than ``'none'`` or ``'tanh'``.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        """Apply GELU."""
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        """``approximate='..'``."""
        return f"approximate={self.approximate!r}"


class SiLU(_Unary):
    """y = x sigmoid(x) (swish).

    Args:
        inplace: Accepted for PyTorch compatibility; computed out of place.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Apply SiLU."""
        return silu(x)

    def extra_repr(self) -> str:
        """``inplace=True`` when set."""
        return _inplace_repr(self.inplace)


class Softplus(_Unary):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        """Apply softplus."""
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """``beta=.., threshold=..``."""
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(_Unary):
    """y = exp(x) / sum(exp(x)) along ``axis`` (``Softmax(1)`` works positionally)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        """Apply softmax along ``axis``."""
        return softmax(x, self.axis)

    def extra_repr(self) -> str:
        """``axis=..``."""
        return f"axis={self.axis}"


class LogSoftmax(_Unary):
    """y = x - logsumexp(x) along ``axis``."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        """Apply log-softmax along ``axis``."""
        return log_softmax(x, self.axis)

    def extra_repr(self) -> str:
        """``axis=..``."""
        return f"axis={self.axis}"


class Flatten(_Unary):
    """Merge axes ``start_axis`` .. ``end_axis`` (by default all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis = start_axis
        self.end_axis = end_axis

    def forward(self, x: Tensor) -> Tensor:
        """Flatten the axes."""
        return flatten(x, self.start_axis, self.end_axis)

    def extra_repr(self) -> str:
        """``start_axis=.., end_axis=..``."""
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"
