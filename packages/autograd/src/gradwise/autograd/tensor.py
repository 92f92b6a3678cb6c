"""The Tensor: a NumPy array, a ``requires_grad`` flag, a ``.grad`` and the node that made it.

Operators and methods are one-line calls to the op functions in ``gradwise.autograd.ops``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradwise.autograd import function as _function_module
from gradwise.autograd.function import HOOKS as _HOOKS
from gradwise.autograd.function import AccumulateGrad, Cut, Function, Grads, Node, Version, _drain
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Axis, Shape, as_dtype, result_dtype
from gradwise.core.storage import as_array

_SCALARS = (int, float, bool, np.generic)


def _read_only_one(dtype: type[np.floating[Any]]) -> Array:
    one = np.array(1, dtype)
    one.flags.writeable = False
    return one


_SEEDS: dict[np.dtype[Any], Array] = {
    np.dtype(d): _read_only_one(d) for d in (np.float16, np.float32, np.float64)
}
"""The seed gradient of a scalar loss, shared and read-only: the engine never writes into
a gradient it did not make, and it copies a shared one before adopting it as a ``.grad``."""


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats give float32, ints
    int64, booleans bool, and a NumPy array keeps its dtype. Only float tensors may
    require grad.
    """

    __slots__ = (
        "__weakref__",
        "_acc",
        "_base",
        "_cut",  # why it was last used without a node (function.Cut), set only then
        "_grad",
        "_rg",
        "_tangent",  # forward-mode tangent (an array), set only inside forward_ad.dual_level
        "_version",
        "data",
        "grad_fn",
    )
    __array_ufunc__ = None  # NumPy defers to Tensor's reflected operators
    __array_priority__ = 1000

    data: Array
    _tangent: Array  # unset outside forward mode (see forward_ad.py)
    _cut: Cut  # unset until an op used it without recording (read with getattr)
    grad_fn: Node | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            arr = np.array(data.data, dtype=None if dtype is None else as_dtype(dtype), copy=True)
        else:
            arr = as_array(data, dtype, copy=True)
        self.data = arr
        self.grad_fn = None
        self._grad: Tensor | None = None
        self._version: Version | None = None
        self._acc: AccumulateGrad | None = None
        self._base: Tensor | None = None
        self._rg = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, data: Array, grad_fn: Node | None = None) -> Tensor:
        """A tensor around ``data`` (no copy, no checks): the ops' fast constructor."""
        t = object.__new__(cls)
        t.data = data
        t.grad_fn = grad_fn
        t._rg = grad_fn is not None
        t._grad = None
        t._version = None
        t._acc = None
        t._base = None
        return t

    def version_counter(self) -> Version:
        """The in-place modification counter (created on first use; shared by views)."""
        v = self._version
        if v is None:
            v = self._version = Version()
        return v

    def _edge(self) -> Node | None:
        """This tensor's node in a graph: its grad_fn, its AccumulateGrad, or None."""
        return self.grad_fn or self._acc

    # ---- attributes ------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for backward."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (leaves only; float dtypes only); returns self."""
        if flag and self.data.dtype.kind != "f":
            raise RuntimeError(
                f"requires_grad: only float tensors can require gradients, got dtype "
                f"{self.data.dtype}; convert first, e.g. tensor(x, dtype='float32')"
            )
        if not flag and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad_: you can only change requires_grad of leaf tensors; use "
                "detach() to get a tensor that does not require grad"
            )
        self._rg = bool(flag)
        if self.grad_fn is None:
            self._acc = AccumulateGrad(self) if flag else None
        return self

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (leaves only), in this tensor's dtype; None until backward."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
            if value.data.shape != self.data.shape:
                raise ValueError(
                    f"grad: assigned gradient has shape {cops.fmt_shape(value.data.shape)} "
                    f"but the tensor has shape {cops.fmt_shape(self.data.shape)}"
                )
            if value.data.dtype != self.data.dtype:
                raise TypeError(
                    f"grad: assigned gradient has dtype {value.data.dtype} but the tensor has "
                    f"dtype {self.data.dtype} (a tensor's .grad has the tensor's dtype)"
                )
        self._grad = value

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (user-created or detached)."""
        return self.grad_fn is None

    @property
    def shape(self) -> Shape:
        """The shape, a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def numel(self) -> int:
        """The number of elements (PyTorch's name)."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (PyTorch's name)."""
        return self.data.ndim

    # ---- conversion --------------------------------------------------------------------

    def numpy(self) -> Array:
        """The underlying array (shares memory; writing through it is at your own risk)."""
        if self._rg:
            self._mark_cut("numpy", "numpy")
        return self.data

    def _mark_cut(self, kind: str, op: str) -> None:
        """Note (for ``explain()``) that the graph's path through this tensor ends here."""
        d = self.data
        self._cut = (_function_module._next_seq(), kind, op, d.shape, d.dtype, None)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Array:
        if self._rg:
            self._mark_cut("numpy", "np.asarray")
        if dtype is None and not copy:
            return self.data
        return np.array(self.data, dtype=dtype, copy=True)

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python number, got "
                f"shape {cops.fmt_shape(self.data.shape)}"
            )
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        """Nested Python lists (a number for a 0-d tensor)."""
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing this one's data (and version counter), outside any graph."""
        t = Tensor._wrap(self.data)
        t._version = self.version_counter()
        if self._rg:
            self._mark_cut("detach", "detach")
        return t

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (gradient flows back to self)."""
        from gradwise.autograd.ops.shape import clone

        return clone(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.data.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name()}>"
        elif self._rg:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return int(self.data.shape[0])

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.data.shape[0]):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    # ---- backward ----------------------------------------------------------------------

    def backward(
        self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is required unless the tensor has one element. The graph's saved
        arrays are freed afterwards unless ``retain_graph=True``.
        """
        data = self.data
        if gradient is None and not create_graph and data.size == 1:
            # the common case (a scalar loss) straight into the fast engine
            node = self.grad_fn
            if node is not None and not (_HOOKS.count or _function_module._ANOMALY_ON):
                seed = _SEEDS.get(data.dtype)
                if seed is None:
                    seed = np.array(1, data.dtype)
                if data.ndim:
                    seed = seed.reshape(data.shape)
                _drain(node, seed, [], {}, {}, retain_graph, "backward")  # type: ignore[arg-type]
                return
            if self._rg:  # hooks, anomaly mode or a leaf: run_backward picks the engine
                seed = np.array(1, data.dtype)
                seed = seed.reshape(data.shape) if data.ndim else seed
                _function_module.run_backward((self,), (seed,), retain_graph)
                return
        _engine.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook: Any) -> Any:
        """Call ``hook(grad)`` with this tensor's gradient in every backward; the hook may
        return a replacement gradient (or None). Returns a handle with ``remove()``.
        See :func:`gradwise.autograd.hooks.register_hook`.
        """
        from gradwise.autograd.hooks import register_hook

        return register_hook(self, hook)

    # ---- operators ---------------------------------------------------------------------

    # +, - and * are generated at import (see _fuse_operators at the end of this module);
    # these declarations give them their types.
    if TYPE_CHECKING:

        def __add__(self, other: Any) -> Tensor: ...

        def __sub__(self, other: Any) -> Tensor: ...

        def __mul__(self, other: Any) -> Tensor: ...

    def __radd__(self, other: Any) -> Tensor:
        return _ew.add(other, self)

    def __rsub__(self, other: Any) -> Tensor:
        return _ew.sub(other, self)

    def __rmul__(self, other: Any) -> Tensor:
        return _ew.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ew.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ew.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ew.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ew.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _la.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _la.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ew.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ew.abs(self)

    def _compare(self, other: Any, ufunc: np.ufunc, op: str) -> Tensor:
        a, b = binary_operands(self, other, op)
        if a._rg or b._rg:
            for t in (a, b):
                if t._rg:
                    t._mark_cut("no_gradient_op", op)
        try:
            return Tensor._wrap(ufunc(a.data, b.data))
        except ValueError as exc:
            raise ValueError(
                f"{op}: shapes {cops.fmt_shape(a.data.shape)} and {cops.fmt_shape(b.data.shape)} "
                "do not broadcast"
            ) from exc

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less, "lt")

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal, "le")

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater, "gt")

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal, "ge")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal, "eq")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal, "ne")

    def __getitem__(self, key: Any) -> Tensor:
        return _sh.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _ip.setitem(self, key, value)

    # ---- in-place ------------------------------------------------------------------------

    def __iadd__(self, other: Any) -> Tensor:
        return _ip.inplace(self, other, "add_")

    def __isub__(self, other: Any) -> Tensor:
        return _ip.inplace(self, other, "sub_")

    def __imul__(self, other: Any) -> Tensor:
        return _ip.inplace(self, other, "mul_")

    def __itruediv__(self, other: Any) -> Tensor:
        return _ip.inplace(self, other, "div_")

    def add_(self, other: Any) -> Tensor:
        """self += other, in place; returns self."""
        return _ip.inplace(self, other, "add_")

    def sub_(self, other: Any) -> Tensor:
        """self -= other, in place; returns self."""
        return _ip.inplace(self, other, "sub_")

    def mul_(self, other: Any) -> Tensor:
        """self *= other, in place; returns self."""
        return _ip.inplace(self, other, "mul_")

    def div_(self, other: Any) -> Tensor:
        """self /= other, in place; returns self."""
        return _ip.inplace(self, other, "div_")

    def zero_(self) -> Tensor:
        """Fill with zeros, in place; returns self."""
        return _ip.fill_(self, 0.0, "zero_")

    def fill_(self, value: float) -> Tensor:
        """Fill with ``value``, in place; returns self."""
        return _ip.fill_(self, value, "fill_")

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape) into self, in place; returns self."""
        return _ip.copy_(self, src)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Clip to [min, max] in place; returns self."""
        return _ip.clamp_(self, min, max)

    # ---- math methods --------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes by default)."""
        return _rd.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``; the mean of nothing is NaN."""
        return _rd.mean(self, axis, keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; ties share the gradient evenly."""
        return _rd.max(self, axis, keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; ties share the gradient evenly."""
        return _rd.min(self, axis, keepdims)

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> Tensor:
        """Variance over ``axis`` with ``ddof`` delta degrees of freedom."""
        return _rd.var(self, axis, keepdims, ddof)

    def std(self, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> Tensor:
        """Standard deviation over ``axis``."""
        return _rd.std(self, axis, keepdims, ddof)

    def exp(self) -> Tensor:
        """e ** self."""
        return _ew.exp(self)

    def log(self) -> Tensor:
        """Natural logarithm."""
        return _ew.log(self)

    def sqrt(self) -> Tensor:
        """Square root."""
        return _ew.sqrt(self)

    def abs(self) -> Tensor:
        """Absolute value."""
        return _ew.abs(self)

    def pow(self, p: Any) -> Tensor:
        """self ** p."""
        return _ew.pow(self, p)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit to [min, max]."""
        return _ew.clip(self, min, max)

    clamp = clip

    def relu(self) -> Tensor:
        """max(self, 0)."""
        return _ew.relu(self)

    def sigmoid(self) -> Tensor:
        """Logistic sigmoid."""
        return _ew.sigmoid(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return _ew.tanh(self)

    def gelu(self, approximate: str = "none") -> Tensor:
        """GELU, exact or ``approximate='tanh'``."""
        return _ew.gelu(self, approximate)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        """Leaky ReLU."""
        return _ew.leaky_relu(self, negative_slope)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
        """Softplus."""
        return _ew.softplus(self, beta, threshold)

    def silu(self) -> Tensor:
        """x * sigmoid(x)."""
        return _ew.silu(self)

    def softmax(self, axis: int = -1) -> Tensor:
        """Softmax along ``axis``."""
        return _rd.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """Log-softmax along ``axis``."""
        return _rd.log_softmax(self, axis)

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(self))) along ``axis``, stable."""
        return _rd.logsumexp(self, axis, keepdims)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product (as ``np.matmul``)."""
        return _la.matmul(self, other)

    def maximum(self, other: Any) -> Tensor:
        """Element-wise maximum."""
        return _ew.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        """Element-wise minimum."""
        return _ew.minimum(self, other)

    # ---- shape methods ---------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same data in another shape (one -1 allowed); ints or one tuple."""
        return _sh.reshape(self, *shape)

    def view(self, *shape: Any) -> Tensor:
        """Alias of :meth:`reshape`."""
        return _sh.reshape(self, *shape)

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge axes ``start_axis`` .. ``end_axis`` into one."""
        return _sh.flatten(self, start_axis, end_axis)

    def transpose(self, axis0: int, axis1: int) -> Tensor:
        """Swap two axes."""
        return _sh.transpose(self, axis0, axis1)

    def permute(self, *axes: Any) -> Tensor:
        """Reorder the axes; ints or one tuple."""
        return _sh.permute(self, *axes)

    @property
    def T(self) -> Tensor:
        """All axes reversed (the transpose of a matrix)."""
        return _sh.permute(self, *reversed(range(self.data.ndim)))

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (batched matrix transpose)."""
        if self.data.ndim < 2:
            raise ValueError(
                f"mT: needs at least 2 dimensions, got shape {cops.fmt_shape(self.shape)}"
            )
        return _sh.transpose(self, -2, -1)

    def squeeze(self, axis: Axis = None) -> Tensor:
        """Remove axes of length 1 (all, or the given ones)."""
        return _sh.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of length 1 at ``axis``."""
        return _sh.unsqueeze(self, axis)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` without copying; -1 keeps an axis."""
        return _sh.expand(self, *shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """Broadcast to ``shape`` without copying."""
        return _sh.broadcast_to(self, shape)

    # ---- op coverage: math, scans, gathers, shape ops (ops/math.py, ops/index.py) --------

    def to(self, dtype: Any) -> Tensor:
        """This tensor as ``dtype`` (self if it has it; float casts keep the graph)."""
        return _mt.to(self, dtype)

    def sin(self) -> Tensor:
        """Sine."""
        return _mt.sin(self)

    def cos(self) -> Tensor:
        """Cosine."""
        return _mt.cos(self)

    def tan(self) -> Tensor:
        """Tangent."""
        return _mt.tan(self)

    def atan2(self, other: Any) -> Tensor:
        """The two-argument arctangent of self (y) and other (x)."""
        return _mt.atan2(self, other)

    def log1p(self) -> Tensor:
        """log(1 + self)."""
        return _mt.log1p(self)

    def expm1(self) -> Tensor:
        """exp(self) - 1."""
        return _mt.expm1(self)

    def erf(self) -> Tensor:
        """The error function."""
        return _mt.erf(self)

    def square(self) -> Tensor:
        """self * self."""
        return _mt.square(self)

    def reciprocal(self) -> Tensor:
        """1 / self."""
        return _mt.reciprocal(self)

    def sign(self) -> Tensor:
        """-1, 0 or 1 (zero gradient)."""
        return _mt.sign(self)

    def floor(self) -> Tensor:
        """Round down (zero gradient)."""
        return _mt.floor(self)

    def ceil(self) -> Tensor:
        """Round up (zero gradient)."""
        return _mt.ceil(self)

    def round(self, decimals: int = 0) -> Tensor:
        """Round half to even (zero gradient)."""
        return _mt.round(self, decimals)

    def cumsum(self, axis: int) -> Tensor:
        """Cumulative sum along ``axis``."""
        return _ix.cumsum(self, axis)

    def cumprod(self, axis: int) -> Tensor:
        """Cumulative product along ``axis``."""
        return _ix.cumprod(self, axis)

    def gather(self, axis: int, index: Any) -> Tensor:
        """PyTorch's gather along ``axis``."""
        return _ix.gather(self, axis, index)

    def take_along_axis(self, indices: Any, axis: int | None) -> Tensor:
        """NumPy's take_along_axis."""
        return _ix.take_along_axis(self, indices, axis)

    def scatter_add(self, axis: int, index: Any, src: Tensor) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``axis``."""
        return _ix.scatter_add(self, axis, index, src)

    def narrow(self, axis: int, start: int, length: int) -> Tensor:
        """The view of ``length`` elements from ``start`` along ``axis``."""
        return _ix.narrow(self, axis, start, length)

    def split(self, split_size_or_sections: Any, axis: int = 0) -> tuple[Tensor, ...]:
        """Views of consecutive pieces along ``axis``."""
        return _ix.split(self, split_size_or_sections, axis)

    def chunk(self, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` views along ``axis``."""
        return _ix.chunk(self, chunks, axis)

    def flip(self, axis: Axis) -> Tensor:
        """Reverse along ``axis``."""
        return _ix.flip(self, axis)

    def roll(self, shifts: Any, axis: Any = None) -> Tensor:
        """Shift cyclically along ``axis``."""
        return _ix.roll(self, shifts, axis)

    def repeat(self, *sizes: Any) -> Tensor:
        """PyTorch's repeat: tile ``sizes`` copies per axis."""
        return _ix.repeat(self, *sizes)

    def tile(self, *dims: Any) -> Tensor:
        """torch.tile."""
        return _ix.tile(self, *dims)

    def tril(self, k: int = 0) -> Tensor:
        """Lower triangle of the last two axes."""
        return _ix.tril(self, k)

    def triu(self, k: int = 0) -> Tensor:
        """Upper triangle of the last two axes."""
        return _ix.triu(self, k)

    def trace(self) -> Tensor:
        """Sum of the main diagonal (2-D)."""
        return _ix.trace(self)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The view of a diagonal, appended as the last axis."""
        return _ix.diagonal(self, offset, axis1, axis2)

    def any(self) -> bool:
        """Whether any element is non-zero."""
        return bool(self.data.any())

    def all(self) -> bool:
        """Whether every element is non-zero."""
        return bool(self.data.all())


def as_tensor(x: Any, op: str) -> Tensor:
    """``x`` if it is a Tensor; numbers and arrays become constant tensors; else TypeError."""
    if isinstance(x, Tensor):
        return x
    return Tensor._wrap(_constant(x, op, None))


def _constant(x: Any, op: str, dtype: np.dtype[Any] | None) -> Array:
    if isinstance(x, bool | int | float | np.generic | np.ndarray):
        arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{op}: unsupported operand of dtype {arr.dtype}")
        if dtype is None and isinstance(x, float):
            arr = arr.astype(np.float32)
        elif dtype is None and isinstance(x, int) and not isinstance(x, bool):
            arr = arr.astype(np.int64)
        return arr
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__}; expected a Tensor, a number or "
        "a NumPy array"
    )


def binary_operands(a: Any, b: Any, op: str, true_divide: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands as tensors of one result dtype (weak scalars never widen a tensor)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.data.dtype is b.data.dtype and (not true_divide or a.data.dtype.kind == "f"):
            return a, b
        da, db = a.data, b.data
    else:
        if isinstance(a, Tensor) and type(b) in (float, int) and a.data.dtype.kind == "f":
            return a, Tensor._wrap(np.array(b, dtype=a.data.dtype))
        if isinstance(b, Tensor) and type(a) in (float, int) and b.data.dtype.kind == "f":
            return Tensor._wrap(np.array(a, dtype=b.data.dtype)), b
        da = a.data if isinstance(a, Tensor) else _raw(a, op)
        db = b.data if isinstance(b, Tensor) else _raw(b, op)
    dt = result_dtype(da, db)
    if true_divide and dt.kind != "f":
        dt = np.dtype(np.float32)
    return _cast(a, dt, op), _cast(b, dt, op)


def _raw(x: Any, op: str) -> Any:
    if isinstance(x, bool | int | float):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{op}: unsupported operand of dtype {x.dtype}")
        return x
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__}; expected a Tensor, a number or "
        "a NumPy array"
    )


def _cast(x: Any, dt: np.dtype[Any], op: str) -> Tensor:
    if isinstance(x, Tensor):
        if x.data.dtype == dt:
            return x
        return Cast.apply(x, dtype=dt)
    return Tensor._wrap(_constant(x, op, dt))


class Cast(Function):
    """y = x as another dtype;  dx = grad (the engine casts it back to x's dtype)"""

    __slots__ = ()

    def forward(self, x: Array, *, dtype: np.dtype[Any]) -> Array:
        """Cast to ``dtype``."""
        return x.astype(dtype)

    def jvp(self, out: Array, t: Array | None) -> Array | None:
        """The tangent, cast to the output's dtype."""
        return None if t is None else t.astype(out.dtype)

    def backward(self, grad: Array) -> Grads:
        """Pass the gradient through."""
        return (grad,)


_function_module._TENSOR.append(Tensor)
_function_module._Tensor = Tensor

from gradwise.autograd import engine as _engine  # noqa: E402
from gradwise.autograd.ops import elementwise as _ew  # noqa: E402
from gradwise.autograd.ops import index as _ix  # noqa: E402
from gradwise.autograd.ops import inplace as _ip  # noqa: E402
from gradwise.autograd.ops import linalg as _la  # noqa: E402
from gradwise.autograd.ops import math as _mt  # noqa: E402
from gradwise.autograd.ops import reduce as _rd  # noqa: E402
from gradwise.autograd.ops import shape as _sh  # noqa: E402


def _fuse_operators() -> None:
    """``+``, ``-`` and ``*``: between tensors of one dtype, their ops' ``apply`` with the
    ufunc written in (``function.fused_operator``); anything else (scalars, arrays, mixed
    dtypes) goes to ``add``/``sub``/``mul`` in ``ops.elementwise``.
    """
    fused = _function_module.fused_operator
    err = _ew._broadcast_error
    Tensor.__add__ = fused(_ew.Add, np.add, "add", _ew.add, err)  # type: ignore[method-assign]
    Tensor.__sub__ = fused(_ew.Sub, np.subtract, "sub", _ew.sub, err)  # type: ignore[method-assign]
    Tensor.__mul__ = fused(  # type: ignore[method-assign]
        _ew.Mul, np.multiply, "mul", _ew.mul, err, ("s_a", "s_b")
    )


_fuse_operators()
