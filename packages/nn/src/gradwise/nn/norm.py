"""``LayerNorm`` and ``BatchNorm1d``: each one fused op node (forward and analytic backward).

Shared math: with xhat = (x - mean) * rstd over the normalised elements (n of them) and
y = xhat * w + b, the gradients are

    dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)),  gx = grad * w
    dw = sum(grad * xhat),  db = sum(grad)

(when the statistics are constants, as in BatchNorm's eval mode, dx = gx * rstd).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from gradwise.autograd import Tensor
from gradwise.autograd.function import Grads, Op
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape
from gradwise.nn.linear import _float_dtype
from gradwise.nn.module import _Unary
from gradwise.nn.parameter import Parameter

# ---- LayerNorm ---------------------------------------------------------------------------


class LayerNormFunction(Op):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last axes (w, b optional)

    Gradients as in this module's docstring, with means over each row's normalised axes.
    """

    __slots__ = ("has_b", "has_w", "s_rstd", "s_w", "s_xhat", "x_shape")
    saves: ClassVar[tuple[int, ...]] = (1,)

    def forward(
        self, x: Array, *params: Array, eps: float, size: int, has_w: bool, has_b: bool
    ) -> Array:
        """Normalise each row of ``size`` trailing elements."""
        x2 = x.reshape(-1, size) if size else x.reshape(math.prod(x.shape[:-1]), 0)
        mean = x2.mean(axis=1, keepdims=True)
        xc = x2 - mean
        var = np.mean(np.square(xc), axis=1, keepdims=True)
        rstd = np.reciprocal(np.sqrt(var + eps))
        xhat = np.multiply(xc, rstd, out=xc)
        w = params[0].reshape(size) if has_w else None
        y = xhat * w if w is not None else xhat.copy()
        if has_b:
            y += params[-1].reshape(size)
        self.s_xhat, self.s_rstd, self.s_w = xhat, rstd, w
        self.has_w, self.has_b, self.x_shape = has_w, has_b, x.shape
        out: Array = y.reshape(x.shape)
        return out

    def jvp(self, out: Array, tx: Array | None, *tp: Array | None) -> Array | None:
        """Forward-mode tangent: dy = dxhat w + xhat dw + db, per row of the normalised axes,
        dxhat = rstd (dxc - xhat mean(xhat dxc)), dxc = dx - mean(dx).
        """
        xhat, rstd, w = self.s_xhat, self.s_rstd, self.s_w
        size = xhat.shape[1]
        dy = np.zeros(xhat.shape, dtype=out.dtype)
        if tx is not None:
            t2 = tx.reshape(xhat.shape)
            dxc = t2 - t2.mean(axis=1, keepdims=True)
            dxhat = (dxc - xhat * np.mean(xhat * dxc, axis=1, keepdims=True)) * rstd
            dy += dxhat * w if w is not None else dxhat
        params = list(tp)
        if self.has_w:
            tw = params.pop(0)
            if tw is not None:
                dy += xhat * tw.reshape(size)
        if self.has_b and params[0] is not None:
            dy += params[0].reshape(size)
        return dy.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gradients of x (and w, b)."""
        xhat, rstd, w = self.s_xhat, self.s_rstd, self.s_w
        g2 = grad.reshape(xhat.shape)
        gx = g2 * w if w is not None else g2
        dx = None
        if self.inputs[0] is not None:
            proj = np.mean(gx * xhat, axis=1, keepdims=True)
            dx = (gx - gx.mean(axis=1, keepdims=True) - xhat * proj) * rstd
            dx = dx.reshape(self.x_shape)
        grads: list[Array | None] = [dx]
        if self.has_w:
            grads.append(np.sum(g2 * xhat, axis=0))
        if self.has_b:
            grads.append(np.sum(g2, axis=0))
        shapes = self.shapes
        return tuple(
            g if i == 0 or g is None else g.reshape(shapes[i]) for i, g in enumerate(grads)
        )


class _LayerNormPlain(LayerNormFunction):
    """LayerNorm without a weight (nothing but x's derived arrays saved)."""

    __slots__ = ()
    saves = ()


def _normalized_shape(shape: int | Sequence[int], op: str) -> Shape:
    dims = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise ValueError(f"{op}: normalized_shape must hold non-negative ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    op: str = "layer_norm",
) -> Tensor:
    """Layer normalisation over the trailing ``normalized_shape`` axes (biased variance).

    Args:
        x: Input whose last axes equal ``normalized_shape``.
        normalized_shape: The trailing shape to normalise over.
        weight: Optional scale of shape ``normalized_shape``.
        bias: Optional shift of shape ``normalized_shape``.
        eps: Added to the variance.
        op: The name used in error messages.

    Raises:
        ValueError: shapes that do not fit. TypeError: dtypes that differ or are not float.
    """
    shape = _normalized_shape(normalized_shape, op)
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {xd.dtype}")
    k = len(shape)
    if k == 0 or xd.ndim < k or xd.shape[xd.ndim - k :] != shape:
        raise ValueError(
            f"{op}: input of shape {cops.fmt_shape(xd.shape)} does not end with "
            f"normalized_shape {cops.fmt_shape(shape)}"
        )
    params: list[Tensor] = []
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(p).__name__}")
        if p.data.shape != shape:
            raise ValueError(
                f"{op}: {name} has shape {cops.fmt_shape(p.data.shape)}, expected "
                f"{cops.fmt_shape(shape)}"
            )
        if p.data.dtype != xd.dtype:
            raise TypeError(f"{op}: {name} has dtype {p.data.dtype} but input has {xd.dtype}")
        params.append(p)
    cls = LayerNormFunction if weight is not None else _LayerNormPlain
    return cls.apply(
        x,
        *params,
        eps=float(eps),
        size=math.prod(shape),
        has_w=weight is not None,
        has_b=bias is not None,
    )


class LayerNorm(_Unary):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the last axes.

    Statistics use the biased variance over the trailing ``normalized_shape`` axes of
    each sample; ``weight`` starts at ones, ``bias`` at zeros.

    Args:
        normalized_shape: An int or a shape: the trailing axes to normalise.
        eps: Added to the variance.
        elementwise_affine: Learn ``weight`` (and ``bias``).
        bias: Learn ``bias`` (when ``elementwise_affine``).
        dtype: float32 (default) or float64.
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape, "LayerNorm")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dt = _float_dtype(dtype, "LayerNorm")
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise the trailing axes of ``x``."""
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps, "LayerNorm")

    def extra_repr(self) -> str:
        """``(shape,), eps=.., elementwise_affine=.., bias=..``."""
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


# ---- BatchNorm ---------------------------------------------------------------------------


class BatchNormFunction(Op):
    """y = (x - mean) / sqrt(var + eps) * w + b per channel (axis 1; w, b optional)

    With ``batch_stats`` the mean and variance are this batch's (gradients flow through
    them); otherwise they are constants (running statistics).
    """

    __slots__ = ("axes", "batch_stats", "has_b", "has_w", "s_rstd", "s_w", "s_xhat")
    saves: ClassVar[tuple[int, ...]] = (1,)

    def forward(
        self,
        x: Array,
        *params: Array,
        mean: Array,
        var: Array,
        eps: float,
        batch_stats: bool,
        has_w: bool,
        has_b: bool,
    ) -> Array:
        """Normalise each channel with the given statistics."""
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        rstd = np.reciprocal(np.sqrt(var.reshape(bshape) + eps))
        xhat = x - mean.reshape(bshape)
        xhat *= rstd
        w = params[0].reshape(bshape) if has_w else None
        y = xhat * w if w is not None else xhat.copy()
        if has_b:
            y += params[-1].reshape(bshape)
        self.s_xhat, self.s_rstd, self.s_w = xhat, rstd, w
        self.axes = (0, *range(2, x.ndim))
        self.batch_stats, self.has_w, self.has_b = batch_stats, has_w, has_b
        return y

    def jvp(self, out: Array, tx: Array | None, *tp: Array | None) -> Array | None:
        """Forward-mode tangent: dy = dxhat w + xhat dw + db per channel; with batch
        statistics dxhat = rstd (dxc - xhat mean(xhat dxc)), dxc = dx - mean(dx), else
        dxhat = rstd dx.
        """
        xhat, rstd, w, axes = self.s_xhat, self.s_rstd, self.s_w, self.axes
        bshape = rstd.shape
        dy = np.zeros(xhat.shape, dtype=out.dtype)
        if tx is not None:
            if self.batch_stats:
                dxc = tx - tx.mean(axis=axes, keepdims=True)
                dxhat = (dxc - xhat * np.mean(xhat * dxc, axis=axes, keepdims=True)) * rstd
            else:
                dxhat = tx * rstd
            dy += dxhat * w if w is not None else dxhat
        params = list(tp)
        if self.has_w:
            tw = params.pop(0)
            if tw is not None:
                dy += xhat * tw.reshape(bshape)
        if self.has_b and params[0] is not None:
            dy += params[0].reshape(bshape)
        return dy

    def backward(self, grad: Array) -> Grads:
        """Gradients of x (and w, b)."""
        xhat, rstd, w, axes = self.s_xhat, self.s_rstd, self.s_w, self.axes
        gx = grad * w if w is not None else grad
        dx = None
        if self.inputs[0] is not None:
            if self.batch_stats:
                proj = np.mean(gx * xhat, axis=axes, keepdims=True)
                dx = (gx - gx.mean(axis=axes, keepdims=True) - xhat * proj) * rstd
            else:
                dx = gx * rstd
        grads: list[Array | None] = [dx]
        if self.has_w:
            grads.append(np.sum(grad * xhat, axis=axes))
        if self.has_b:
            grads.append(np.sum(grad, axis=axes))
        return tuple(grads)


class _BatchNormPlain(BatchNormFunction):
    """BatchNorm without a weight."""

    __slots__ = ()
    saves = ()


def _channel_tensor(t: Tensor | None, name: str, c: int, dt: np.dtype[Any], op: str) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if t.data.shape != (c,):
        raise ValueError(
            f"{op}: {name} has shape {cops.fmt_shape(t.data.shape)}, expected ({c},) for an "
            f"input with {c} channels"
        )
    if t.data.dtype != dt:
        raise TypeError(f"{op}: {name} has dtype {t.data.dtype} but input has {dt}")


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    op: str = "batch_norm",
) -> Tensor:
    """Batch normalisation over axis 1 of ``(N, C, *)`` inputs, as PyTorch's ``F.batch_norm``.

    In training mode the batch's mean and biased variance normalise the input, and the
    running statistics (when given) are updated in place:
    ``running = (1 - momentum) * running + momentum * stat``, with the *unbiased* batch
    variance for ``running_var``. Otherwise the running statistics normalise.

    Raises:
        ValueError: shapes that do not fit, or a single value per channel in training.
        TypeError: dtypes that differ or are not float.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {xd.dtype}")
    if xd.ndim < 2:
        raise ValueError(
            f"{op}: expected an input of shape (N, C, *), got {cops.fmt_shape(xd.shape)}"
        )
    c = xd.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _channel_tensor(t, name, c, xd.dtype, op)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    axes = (0, *range(2, xd.ndim))
    if training:
        n = xd.size // c if c else 0
        if n <= 1:
            raise ValueError(
                f"{op}: expected more than 1 value per channel when training, got input of "
                f"shape {cops.fmt_shape(xd.shape)}"
            )
        mean64 = xd.mean(axis=axes, dtype=np.float64)
        var64 = xd.var(axis=axes, dtype=np.float64)
        if running_mean is not None and running_var is not None:
            m = float(momentum)
            rm, rv = running_mean.data, running_var.data
            rm[...] = (1 - m) * rm + m * mean64
            rv[...] = (1 - m) * rv + m * var64 * (n / (n - 1))
            running_mean.version_counter().value += 1
            running_var.version_counter().value += 1
        mean, var = mean64.astype(xd.dtype), var64.astype(xd.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are needed when not training")
        mean, var = running_mean.data, running_var.data
    params = [p for p in (weight, bias) if p is not None]
    cls = BatchNormFunction if weight is not None else _BatchNormPlain
    return cls.apply(
        x,
        *params,
        mean=mean,
        var=var,
        eps=float(eps),
        batch_stats=training,
        has_w=weight is not None,
        has_b=bias is not None,
    )


class BatchNorm1d(_Unary):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, per channel C.

    Training mode normalises with the batch's statistics (biased variance) and updates
    ``running_mean`` / ``running_var`` (unbiased variance) with ``momentum``
    (``momentum=None``: a cumulative average over ``num_batches_tracked`` batches);
    eval mode normalises with the running statistics. Without
    ``track_running_stats`` batch statistics are always used.

    Args:
        num_features: C.
        eps: Added to the variance.
        momentum: Weight of the new batch in the running averages, or None.
        affine: Learn ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: Keep running statistics (buffers).
        dtype: float32 (default) or float64.
        bias: Learn ``bias`` (when ``affine``), keyword-only as in PyTorch 2.13.
    """

    weight: Parameter | None
    bias: Parameter | None
    _input_ndims: ClassVar[tuple[int, ...]] = (2, 3)
    _input_desc: ClassVar[str] = "a 2-D (N, C) or 3-D (N, C, L)"
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = _float_dtype(dtype, type(self).__name__)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        for t, v in (
            (self.running_mean, 0),
            (self.running_var, 1),
            (self.num_batches_tracked, 0),
        ):
            if t is not None:
                t.data[...] = v
                t.version_counter().value += 1

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` per channel (and update running statistics when training)."""
        op = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
        shape = x.data.shape
        if x.data.ndim not in self._input_ndims:
            raise ValueError(
                f"{op}: expected {self._input_desc} input, got shape {cops.fmt_shape(shape)}"
            )
        if shape[1] != self.num_features:
            raise ValueError(
                f"{op}: input of shape {cops.fmt_shape(shape)} has {shape[1]} channels, "
                f"expected num_features={self.num_features}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            if x.data.size // max(shape[1], 1) > 1:  # a failing batch must not count
                self.num_batches_tracked.data += 1
                self.num_batches_tracked.version_counter().value += 1
            if self.momentum is None:
                factor = 1.0 / max(float(self.num_batches_tracked.data), 1.0)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
            op,
        )

    def extra_repr(self) -> str:
        """PyTorch's ``C, eps=.., momentum=.., affine=.., bias=.., track_running_stats=..``."""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of ``(N, C, H, W)`` inputs, per channel C (PyTorch's BatchNorm2d).

    Statistics over the batch and both spatial axes; arguments, buffers and running
    statistics as :class:`BatchNorm1d`.
    """

    _input_ndims: ClassVar[tuple[int, ...]] = (4,)
    _input_desc: ClassVar[str] = "a 4-D (N, C, H, W)"


# ---- GroupNorm ---------------------------------------------------------------------------


class GroupNormFunction(Op):
    """y = (x - mean_g) / sqrt(var_g + eps) * w[c] + b[c], statistics per (sample, group)

    dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) per group with gx = grad * w[c];
    dw = sum(grad * xhat), db = sum(grad) over batch and space.
    """

    __slots__ = ("eps", "has_b", "has_w", "s_rstd", "s_w", "s_x", "s_xhat", "x_shape")
    saves: ClassVar[tuple[int, ...]] = (0, 1)

    def forward(
        self, x: Array, *params: Array, num_groups: int, eps: float, has_w: bool, has_b: bool
    ) -> Array:
        """Normalise each group of channels of each sample."""
        n, c = x.shape[:2]
        x3 = x.reshape(n, num_groups, x.size // max(n * num_groups, 1))
        if x3.size:
            mean = x3.mean(axis=2, keepdims=True)
            xc = x3 - mean
            var = np.mean(np.square(xc), axis=2, keepdims=True)
        else:  # an empty batch (NumPy warns on means of nothing)
            xc = x3.copy()
            var = np.ones((n, num_groups, 1), dtype=x.dtype)
        rstd = np.reciprocal(np.sqrt(var + x.dtype.type(eps)))
        xhat = np.multiply(xc, rstd, out=xc).reshape(n, c, x3.shape[2] * num_groups // c)
        w = params[0].reshape(1, c, 1) if has_w else None
        y = xhat * w if w is not None else xhat.copy()
        if has_b:
            y += params[-1].reshape(1, c, 1)
        self.s_xhat, self.s_rstd, self.s_w = xhat, rstd, w
        self.has_w, self.has_b, self.x_shape = has_w, has_b, x.shape
        self.s_x, self.eps = x, eps
        out: Array = y.reshape(x.shape)
        return out

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The backward formula rebuilt from x with differentiable ops (double backward)."""
        n, c = self.s_xhat.shape[:2]
        groups, spatial = self.s_rstd.shape[1], self.s_xhat.shape[2]
        per_group = c * spatial // groups
        x3 = self.saved_input(0, self.s_x).reshape(n, groups, per_group)
        xc = x3 - x3.mean(axis=2, keepdims=True)
        rstd = ((xc * xc).mean(axis=2, keepdims=True) + self.eps) ** -0.5
        xhat = xc * rstd
        g3 = grad.reshape(n, c, spatial)
        w = None
        if self.has_w and self.s_w is not None:
            w = self.saved_input(1, self.s_w.reshape(c)).reshape(1, c, 1)
        gx = (g3 * w if w is not None else g3).reshape(n, groups, per_group)
        proj = (gx * xhat).mean(axis=2, keepdims=True)
        dx = ((gx - gx.mean(axis=2, keepdims=True) - xhat * proj) * rstd).reshape(*self.x_shape)
        grads: list[Tensor | None] = [dx]
        xhat_c = xhat.reshape(n, c, spatial)
        if self.has_w:
            grads.append((g3 * xhat_c).sum(axis=(0, 2)))
        if self.has_b:
            grads.append(g3.sum(axis=(0, 2)))
        return tuple(grads)

    def jvp(self, out: Array, tx: Array | None, *tp: Array | None) -> Array | None:
        """Forward-mode tangent: dy = dxhat w + xhat dw + db, per (sample, group)
        dxhat = rstd (dxc - xhat mean(xhat dxc)), dxc = dx - mean(dx).
        """
        xhat, rstd, w = self.s_xhat, self.s_rstd, self.s_w
        n, c = xhat.shape[:2]
        groups = rstd.shape[1]
        dy = np.zeros(xhat.shape, dtype=out.dtype)
        if tx is not None and tx.size:
            per_group = c * xhat.shape[2] // groups
            t3 = tx.reshape(n, groups, per_group)
            xh = xhat.reshape(n, groups, per_group)
            dxc = t3 - t3.mean(axis=2, keepdims=True)
            dxhat = ((dxc - xh * np.mean(xh * dxc, axis=2, keepdims=True)) * rstd).reshape(
                xhat.shape
            )
            dy += dxhat * w if w is not None else dxhat
        params = list(tp)
        if self.has_w:
            tw = params.pop(0)
            if tw is not None:
                dy += xhat * tw.reshape(1, c, 1)
        if self.has_b and params[0] is not None:
            dy += params[0].reshape(1, c, 1)
        return dy.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gradients of x (and w, b)."""
        xhat, rstd, w = self.s_xhat, self.s_rstd, self.s_w
        n, c = xhat.shape[:2]
        groups = rstd.shape[1]
        g3 = grad.reshape(xhat.shape)
        dx = None
        if self.inputs[0] is not None and grad.size == 0:
            dx = np.zeros(self.x_shape, dtype=grad.dtype)
        elif self.inputs[0] is not None:
            per_group = c * xhat.shape[2] // groups
            gx = (g3 * w if w is not None else g3).reshape(n, groups, per_group)
            xh = xhat.reshape(n, groups, per_group)
            proj = np.mean(gx * xh, axis=2, keepdims=True)
            dx = ((gx - gx.mean(axis=2, keepdims=True) - xh * proj) * rstd).reshape(self.x_shape)
        grads: list[Array | None] = [dx]
        if self.has_w:
            grads.append(np.sum(g3 * xhat, axis=(0, 2)))
        if self.has_b:
            grads.append(np.sum(g3, axis=(0, 2)))
        return tuple(grads)


class _GroupNormPlain(GroupNormFunction):
    """GroupNorm without a weight."""

    __slots__ = ()
    saves = (0,)


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    op: str = "group_norm",
) -> Tensor:
    """Group normalisation of ``(N, C, *)`` as PyTorch's ``F.group_norm`` (biased variance).

    The C channels are split into ``num_groups`` consecutive groups; each sample's group is
    normalised over its channels and spatial positions, then scaled and shifted per channel.

    Args:
        x: Input of shape ``(N, C, *)``.
        num_groups: Number of groups; must divide C.
        weight: Optional per-channel scale ``(C,)``.
        bias: Optional per-channel shift ``(C,)``.
        eps: Added to the variance.
        op: The name used in error messages.

    Raises:
        ValueError: shapes or a group count that do not fit. TypeError: bad dtypes or types.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {xd.dtype}")
    if xd.ndim < 2:
        raise ValueError(
            f"{op}: expected an input of shape (N, C, *), got {cops.fmt_shape(xd.shape)}"
        )
    c = xd.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer):
        raise TypeError(f"{op}: num_groups must be an int, got {type(num_groups).__name__}")
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{op}: expected the number of channels ({c}, input of shape "
            f"{cops.fmt_shape(xd.shape)}) to be divisible by num_groups={num_groups}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        _channel_tensor(t, name, c, xd.dtype, op)
    params = [p for p in (weight, bias) if p is not None]
    if xd.size == 0 and xd.shape[0] != 0:
        return x * 0.0  # empty groups: nothing to normalise
    cls = GroupNormFunction if weight is not None else _GroupNormPlain
    return cls.apply(
        x,
        *params,
        num_groups=int(num_groups),
        eps=float(eps),
        has_w=weight is not None,
        has_b=bias is not None,
    )


class GroupNorm(_Unary):
    """Group normalisation (PyTorch's ``nn.GroupNorm``): see :func:`group_norm`.

    Args:
        num_groups: Groups to split the channels into.
        num_channels: C.
        eps: Added to the variance.
        affine: Learn per-channel ``weight`` (ones) and ``bias`` (zeros).
        dtype: float32 (default) or float64.
        bias: Learn ``bias`` (when ``affine``), keyword-only as in PyTorch 2.13.
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels={num_channels} must be divisible by "
                f"num_groups={num_groups}"
            )
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        dt = _float_dtype(dtype, "GroupNorm")
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(num_channels, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` per sample and group."""
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps, "GroupNorm")

    def extra_repr(self) -> str:
        """PyTorch's ``G, C, eps=.., affine=..``."""
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


# ---- RMSNorm -----------------------------------------------------------------------------


class RMSNormFunction(Op):
    """y = x / sqrt(mean(x^2) + eps) * w over the last axes

    dx = r * (gx - xhat * mean(gx * xhat)), r = 1 / rms, gx = grad * w;  dw = sum(grad * xhat).
    """

    __slots__ = ("eps", "has_w", "s_r", "s_w", "s_x", "s_xhat", "x_shape")
    saves: ClassVar[tuple[int, ...]] = (0, 1)

    def forward(self, x: Array, *params: Array, eps: float, size: int, has_w: bool) -> Array:
        """Scale each row of ``size`` trailing elements to unit root mean square."""
        x2 = x.reshape(-1, size)
        ms = np.mean(np.square(x2), axis=1, keepdims=True)
        r = np.reciprocal(np.sqrt(ms + x.dtype.type(eps)))
        xhat = x2 * r
        w = params[0].reshape(size) if has_w else None
        y = xhat * w if w is not None else xhat
        self.s_xhat, self.s_r, self.s_w = xhat, r, w
        self.has_w, self.x_shape = has_w, x.shape
        self.s_x, self.eps = x, eps
        out: Array = y.reshape(x.shape)
        return out

    def backward_graph(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        """The backward formula rebuilt from x with differentiable ops (double backward)."""
        rows, size = self.s_xhat.shape
        x2 = self.saved_input(0, self.s_x).reshape(rows, size)
        r = ((x2 * x2).mean(axis=1, keepdims=True) + self.eps) ** -0.5
        xhat = x2 * r
        g2 = grad.reshape(rows, size)
        w = None
        if self.has_w and self.s_w is not None:
            w = self.saved_input(1, self.s_w.reshape(self.shapes[1]))
        gx = g2 * w.reshape(size) if w is not None else g2
        dx = ((gx - xhat * (gx * xhat).mean(axis=1, keepdims=True)) * r).reshape(*self.x_shape)
        if not self.has_w:
            return (dx,)
        return dx, (g2 * xhat).sum(axis=0).reshape(*self.shapes[1])

    def jvp(self, out: Array, tx: Array | None, *tp: Array | None) -> Array | None:
        """Forward-mode tangent: dy = r (dx - xhat mean(xhat dx)) w + xhat dw."""
        xhat, r, w = self.s_xhat, self.s_r, self.s_w
        dy = np.zeros(xhat.shape, dtype=out.dtype)
        if tx is not None:
            t2 = tx.reshape(xhat.shape)
            dxhat = (t2 - xhat * np.mean(xhat * t2, axis=1, keepdims=True)) * r
            dy += dxhat * w if w is not None else dxhat
        if self.has_w and tp[0] is not None:
            dy += xhat * tp[0].reshape(xhat.shape[1])
        return dy.reshape(out.shape)

    def backward(self, grad: Array) -> Grads:
        """Gradients of x (and w)."""
        xhat, r, w = self.s_xhat, self.s_r, self.s_w
        g2 = grad.reshape(xhat.shape)
        gx = g2 * w if w is not None else g2
        dx = None
        if self.inputs[0] is not None:
            proj = np.mean(gx * xhat, axis=1, keepdims=True)
            dx = ((gx - xhat * proj) * r).reshape(self.x_shape)
        if not self.has_w:
            return (dx,)
        return dx, np.sum(g2 * xhat, axis=0).reshape(self.shapes[1])


class _RMSNormPlain(RMSNormFunction):
    """RMSNorm without a weight."""

    __slots__ = ()
    saves = (0,)


def rms_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
    op: str = "rms_norm",
) -> Tensor:
    """y = x / sqrt(mean(x^2) + eps) * weight over the trailing ``normalized_shape`` axes.

    As PyTorch's ``F.rms_norm``: ``eps=None`` means the machine epsilon of x's dtype.

    Args:
        x: Input whose last axes equal ``normalized_shape``.
        normalized_shape: The trailing shape to normalise over.
        weight: Optional scale of shape ``normalized_shape``.
        eps: Added to the mean square (None: ``np.finfo(x.dtype).eps``).
        op: The name used in error messages.

    Raises:
        ValueError: shapes that do not fit. TypeError: dtypes that differ or are not float.
    """
    shape = _normalized_shape(normalized_shape, op)
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 input, got {xd.dtype}")
    k = len(shape)
    if k == 0 or xd.ndim < k or xd.shape[xd.ndim - k :] != shape:
        raise ValueError(
            f"{op}: input of shape {cops.fmt_shape(xd.shape)} does not end with "
            f"normalized_shape {cops.fmt_shape(shape)}"
        )
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
        if weight.data.shape != shape:
            raise ValueError(
                f"{op}: weight has shape {cops.fmt_shape(weight.data.shape)}, expected "
                f"{cops.fmt_shape(shape)}"
            )
        if weight.data.dtype != xd.dtype:
            raise TypeError(f"{op}: weight has dtype {weight.data.dtype} but input has {xd.dtype}")
    e = float(np.finfo(xd.dtype).eps) if eps is None else float(eps)
    size = math.prod(shape)
    if size == 0 or xd.size == 0:
        return x * 0.0 if weight is None else x * weight
    if weight is None:
        return _RMSNormPlain.apply(x, eps=e, size=size, has_w=False)
    return RMSNormFunction.apply(x, weight, eps=e, size=size, has_w=True)


class RMSNorm(_Unary):
    """Root-mean-square normalisation (PyTorch's ``nn.RMSNorm``): see :func:`rms_norm`.

    Args:
        normalized_shape: An int or a shape: the trailing axes to normalise.
        eps: Added to the mean square; None: the dtype's machine epsilon.
        elementwise_affine: Learn ``weight`` (ones).
        dtype: float32 (default) or float64.
    """

    weight: Parameter | None

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape, "RMSNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dt = _float_dtype(dtype, "RMSNorm")
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise the trailing axes of ``x``."""
        return rms_norm(x, self.normalized_shape, self.weight, self.eps, "RMSNorm")

    def extra_repr(self) -> str:
        """PyTorch's ``(shape,), eps=.., elementwise_affine=..``."""
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
