"""``Embedding``: a lookup table of learnable rows, indexed by integer tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import Tensor
from gradwise.autograd.function import Grads, Op
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array
from gradwise.nn import init
from gradwise.nn.linear import _float_dtype, _positive
from gradwise.nn.module import Module
from gradwise.nn.parameter import Parameter


class EmbeddingFunction(Op):
    """y = W[idx];  dW = scatter-add of grad rows at idx (row padding_idx gets none)"""

    __slots__ = ("num", "padding_idx", "s_idx")

    def forward(self, w: Array, *, idx: Array, padding_idx: int | None) -> Array:
        """Gather rows of ``w``."""
        self.s_idx, self.num, self.padding_idx = idx, w.shape[0], padding_idx
        return np.take(w, idx, axis=0)

    def jvp(self, out: Array, tw: Array | None) -> Array | None:
        """Forward-mode tangent: the rows of tW at idx."""
        return None if tw is None else np.take(tw, self.s_idx, axis=0)

    def backward(self, grad: Array) -> Grads:
        """Sum the gradients of repeated indices into their rows."""
        flat = self.s_idx.reshape(-1)
        g2 = grad.reshape(flat.size, -1) if flat.size else grad.reshape(0, grad.shape[-1])
        dw = np.zeros((self.num, g2.shape[1]), dtype=grad.dtype)
        np.add.at(dw, flat, g2)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return (dw,)


def _indices(idx: Tensor | Array | Any, num: int, op: str) -> Array:
    arr = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor (int64), got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise IndexError(
                f"{op}: index {bad} is out of range for a table of {num} embeddings "
                f"(valid: 0 .. {num - 1})"
            )
    return arr


def embedding(
    idx: Tensor | Array, weight: Tensor, padding_idx: int | None = None, op: str = "embedding"
) -> Tensor:
    """Rows of ``weight`` (``(num, dim)``) at integer indices of any shape: ``(*idx, dim)``.

    Raises:
        TypeError: non-integer indices. IndexError: an index outside ``[0, num)``.
    """
    if not isinstance(weight, Tensor) or weight.data.ndim != 2:
        raise ValueError(f"{op}: weight must be a 2-D Tensor (num_embeddings, embedding_dim)")
    num = weight.data.shape[0]
    arr = _indices(idx, num, op)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num
    return EmbeddingFunction.apply(weight, idx=arr, padding_idx=padding_idx)


class Embedding(Module):
    """A table of ``num_embeddings`` learnable vectors of size ``embedding_dim``.

    ``weight`` starts as N(0, 1) (from ``gradwise.core.default_generator``); row
    ``padding_idx`` (if given) starts at zero and never receives a gradient. Index tensors
    of any shape give outputs of shape ``(*indices.shape, embedding_dim)``.

    Args:
        num_embeddings: Table size.
        embedding_dim: Vector size.
        padding_idx: A row kept at zero (negative counts from the end).
        dtype: float32 (default) or float64.

    Raises:
        ValueError: ``padding_idx`` out of range.
    """

    weight: Parameter

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = _positive(embedding_dim, "Embedding", "embedding_dim")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                    f"({self.num_embeddings})"
                )
            if padding_idx < 0:
                padding_idx += self.num_embeddings
        self.padding_idx = padding_idx
        dt = _float_dtype(dtype, "Embedding")
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dt))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the table from N(0, 1) (row padding_idx zero)."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor | Array, freeze: bool = True, padding_idx: int | None = None
    ) -> Embedding:
        """An Embedding whose table is a copy of ``embeddings`` (frozen unless freeze=False)."""
        data = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError(
                f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                f"{cops.fmt_shape(data.shape)}"
            )
        emb = cls(data.shape[0], data.shape[1], padding_idx=padding_idx, dtype=data.dtype)
        emb.weight.data[...] = data
        emb.weight.requires_grad_(not freeze)
        return emb

    def __call__(self, idx: Tensor | Array) -> Tensor:
        """Run :meth:`forward`."""
        return self.forward(idx)

    def forward(self, idx: Tensor | Array) -> Tensor:
        """Look up the rows at ``idx``."""
        return embedding(idx, self.weight, self.padding_idx, "Embedding")

    def extra_repr(self) -> str:
        """``num, dim`` and ``padding_idx`` when set."""
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
