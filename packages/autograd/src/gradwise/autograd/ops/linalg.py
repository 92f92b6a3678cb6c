"""Matrix multiplication through NumPy's BLAS."""

from __future__ import annotations

from typing import Any

from gradwise.autograd._tangents import lin
from gradwise.autograd.function import Function, Grads
from gradwise.autograd.tensor import Tensor, binary_operands
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array


class MatMul(Function):
    """z = a @ b;  da = grad @ b^T,  db = a^T @ grad (1-D and batched as np.matmul)"""

    __slots__ = ("s_a", "s_b")
    saves = (0, 1)

    def forward(self, a: Array, b: Array) -> Array:
        self.s_a, self.s_b = a, b
        return cops.matmul(a, b)

    def jvp(self, out: Array, ta: Array | None, tb: Array | None) -> Array | None:
        """dz = ta @ b + a @ tb"""
        da = None if ta is None else cops.matmul(ta, self.s_b)
        db = None if tb is None else cops.matmul(self.s_a, tb)
        return lin((da, None), (db, None))

    def backward(self, grad: Array) -> Grads:
        return cops.matmul_backward(self.s_a, self.s_b, grad)


def matmul(a: Tensor | Any, b: Tensor | Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D, 2-D and broadcast batches."""
    x, y = binary_operands(a, b, "matmul")
    return MatMul.apply(x, y)
