"""``Dropout`` and ``Dropout2d``: zero elements (or whole channels) at random while training."""

from __future__ import annotations

import numpy as np

from gradwise.autograd import Tensor, dropout
from gradwise.autograd.function import Grads, Op
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array
from gradwise.core.random import default_generator
from gradwise.nn.module import _Unary


class Dropout(_Unary):
    """y = x * mask / (1 - p) in training mode (mask ~ Bernoulli(1 - p)); y = x in eval mode.

    Draws from ``gradwise.core.default_generator``.

    Args:
        p: The probability of zeroing an element, in [0, 1].
        inplace: Accepted for PyTorch compatibility; computed out of place.

    Raises:
        ValueError: ``p`` outside [0, 1].
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p has to be between 0 and 1, but got {p!r}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Drop elements when training."""
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """``p=.., inplace=..``."""
        return f"p={self.p}, inplace={self.inplace}"


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels: y[n, c] = x[n, c] * m[n, c] / (1 - p), m ~ Bernoulli(1 - p).

    As PyTorch's ``F.dropout2d`` for ``(N, C, H, W)`` inputs; a 3-D input is taken as
    ``(N, C, L)`` (PyTorch's current behaviour, which it warns about). Draws from
    ``gradwise.core.default_generator``.

    Args:
        input: A 3-D or 4-D float tensor.
        p: The probability of zeroing a channel, in [0, 1].
        training: Apply dropout (else return the input).
        inplace: Accepted for PyTorch compatibility; computed out of place.

    Raises:
        ValueError: ``p`` outside [0, 1] or an input that is not 3-D or 4-D.
        TypeError: a non-Tensor or non-float input.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout2d: input must be a Tensor, got {type(input).__name__}")
    xd = input.data
    if xd.dtype.kind != "f":
        raise TypeError(f"dropout2d: expected a float32 or float64 input, got {xd.dtype}")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: dropout probability has to be between 0 and 1, but got {p!r}")
    if xd.ndim not in (3, 4):
        raise ValueError(
            f"dropout2d: expected a 3-D or 4-D input, got shape {cops.fmt_shape(xd.shape)}"
        )
    if not training or p == 0.0:
        return input
    mask_shape = (*xd.shape[:2], *(1,) * (xd.ndim - 2))
    if p == 1.0:
        scale = np.zeros(mask_shape, dtype=xd.dtype)
    else:
        keep = default_generator.bernoulli(mask_shape, 1.0 - p)
        scale = keep.astype(xd.dtype) * xd.dtype.type(1.0 / (1.0 - p))
    return _ChannelDropout.apply(input, scale=scale)


class _ChannelDropout(Op):
    """y = x * scale (scale per channel, broadcast);  dx = grad * scale"""

    __slots__ = ("s_scale",)

    def forward(self, x: Array, *, scale: Array) -> Array:
        """Scale each channel."""
        self.s_scale = scale
        return x * scale

    def backward(self, grad: Array) -> Grads:
        """Gradient of x."""
        return (grad * self.s_scale,)

    def jvp(self, out: Array, tx: Array | None) -> Array | None:
        """Forward-mode tangent: tx * scale."""
        return None if tx is None else tx * self.s_scale

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """grad * scale (a constant), differentiable."""
        return (grad * Tensor._wrap(self.s_scale),)


class Dropout2d(_Unary):
    """Zero whole channels of ``(N, C, H, W)`` at random while training (``nn.Dropout2d``).

    Args:
        p: The probability of zeroing a channel, in [0, 1].
        inplace: Accepted for PyTorch compatibility; computed out of place.

    Raises:
        ValueError: ``p`` outside [0, 1].
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(
                f"Dropout2d: dropout probability has to be between 0 and 1, but got {p!r}"
            )
        self.p = float(p)
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """Drop channels when training."""
        return dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        """``p=.., inplace=..``."""
        return f"p={self.p}, inplace={self.inplace}"
