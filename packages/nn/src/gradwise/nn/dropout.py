"""``Dropout``: zero elements at random while training."""

from __future__ import annotations

from gradwise.autograd import Tensor, dropout
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
