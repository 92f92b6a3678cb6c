"""``gradwise.nn.init``: in-place initialisers with PyTorch's names, defaults and fan rules.

Each writes into the tensor's array (as under ``no_grad``), keeps its dtype, bumps its
version counter (so a graph that saved the tensor notices) and returns the tensor. Random
draws come from ``gradwise.core.default_generator``.

Fans follow PyTorch: for a tensor of shape ``(out, in, *kernel)``, ``fan_in = in *
prod(kernel)`` and ``fan_out = out * prod(kernel)``; fewer than 2 dimensions raise.
"""

from __future__ import annotations

import math

from gradwise.autograd import Tensor
from gradwise.core import ops as cops
from gradwise.core.random import default_generator

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear/conv/sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2))
    with slope ``param`` (default 0.01); selu: 3/4.

    Raises:
        ValueError: an unknown nonlinearity or a bad slope.
    """
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _check(t: Tensor, op: str, need_float: bool = True) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    if need_float and t.data.dtype.kind != "f":
        raise TypeError(f"{op}: needs a float32 or float64 tensor, got dtype {t.data.dtype}")


def _write(t: Tensor, values: object) -> Tensor:
    t.data[...] = values
    t.version_counter().value += 1
    return t


def _calculate_fan_in_and_fan_out(t: Tensor, op: str = "init") -> tuple[int, int]:
    shape = t.data.shape
    if len(shape) < 2:
        raise ValueError(
            f"{op}: fan in and fan out can not be computed for a tensor with fewer than 2 "
            f"dimensions (got shape {cops.fmt_shape(shape)})"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(t: Tensor, mode: str, op: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, op)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """t ~ U(a, b), in place; returns t."""
    _check(t, "uniform_")
    if a > b:
        raise ValueError(f"uniform_: expects a <= b, got a={a}, b={b}")
    return _write(t, default_generator.uniform(t.data.shape, a, b, dtype=t.data.dtype))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """t ~ N(mean, std^2), in place; returns t."""
    _check(t, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _write(t, default_generator.normal(t.data.shape, mean, std, dtype=t.data.dtype))


def trunc_normal_(
    t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> Tensor:
    """t ~ N(mean, std^2) truncated to [a, b] (redrawing out-of-range values); returns t."""
    _check(t, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expects a < b, got a={a}, b={b}")
    out = default_generator.normal(t.data.shape, mean, std, dtype=t.data.dtype)
    bad = (out < a) | (out > b)
    for _ in range(1000):
        if not bad.any():
            break
        out[bad] = default_generator.normal((int(bad.sum()),), mean, std, dtype=t.data.dtype)
        bad = (out < a) | (out > b)
    else:
        out.clip(a, b, out=out)
    return _write(t, out)


def constant_(t: Tensor, val: float) -> Tensor:
    """t = val everywhere, in place; returns t."""
    _check(t, "constant_", need_float=False)
    return _write(t, val)


def zeros_(t: Tensor) -> Tensor:
    """t = 0, in place; returns t."""
    return constant_(t, 0)


def ones_(t: Tensor) -> Tensor:
    """t = 1, in place; returns t."""
    return constant_(t, 1)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """t ~ U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)) (Glorot); returns t."""
    _check(t, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, "xavier_uniform_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """t ~ N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out)) (Glorot); returns t."""
    _check(t, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, "xavier_normal_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(t, 0.0, std)


def kaiming_uniform_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """t ~ U(-bound, bound), bound = gain sqrt(3 / fan) (He); returns t.

    Args:
        t: The tensor (at least 2-D).
        a: The negative slope of the following rectifier (for ``leaky_relu``).
        mode: ``'fan_in'`` (keeps forward variance) or ``'fan_out'`` (backward).
        nonlinearity: As :func:`calculate_gain`.
    """
    _check(t, "kaiming_uniform_")
    if 0 in t.data.shape:
        return t
    fan = _fan(t, mode, "kaiming_uniform_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """t ~ N(0, std^2), std = gain / sqrt(fan) (He); returns t. Arguments as kaiming_uniform_."""
    _check(t, "kaiming_normal_")
    if 0 in t.data.shape:
        return t
    fan = _fan(t, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(t, 0.0, std)


__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
