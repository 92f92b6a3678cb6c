"""GroupNorm, RMSNorm, BatchNorm2d (and the new activations and Dropout2d): torch 2.13
literals, NumPy references, float64 gradchecks, errors, dtypes and reprs."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.nn as nn
import gradwise.nn.functional as F
from gradwise.autograd import Tensor, jvp, manual_seed
from gradwise.autograd.testing import gradcheck, gradgradcheck
from gradwise.core.dtypes import Array


def det(shape: tuple[int, ...], a: float = 0.7, b: float = 0.0) -> Array:
    """Deterministic inputs shared with the script that produced the torch literals."""
    out: Array = np.sin(np.arange(math.prod(shape)) * a + b).reshape(shape)
    return out


X = det((2, 4, 2, 3), 1.3) * 2


# ---- GroupNorm ---------------------------------------------------------------------------


def test_group_norm_matches_torch_literal() -> None:
    w, b = det((4,), 0.5, 1.0), det((4,), 0.8)
    y = F.group_norm(Tensor(X), 2, Tensor(w), Tensor(b), 1e-5).numpy()
    # torch 2.13: F.group_norm(x, 2, w, b, 1e-5)[1, :, 0]
    expected = [
        [-0.35703553, 0.96057003, 0.72449634],
        [1.9697144, 1.33100131, -0.38029835],
        [1.50383434, 0.0186433, 0.10532139],
        [-0.05637111, 0.22098349, 1.25287579],
    ]
    np.testing.assert_allclose(y[1, :, 0], expected, atol=1e-8)


@settings(deadline=None, max_examples=20)
@given(
    n=st.integers(1, 3),
    groups=st.sampled_from([1, 2, 4]),
    spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2),
)
def test_group_norm_property_against_numpy(n: int, groups: int, spatial: list[int]) -> None:
    x = np.random.default_rng(0).standard_normal((n, 4, *spatial))
    y = F.group_norm(Tensor(x), groups).numpy()
    g = x.reshape(n, groups, -1)
    ref = (g - g.mean(axis=2, keepdims=True)) / np.sqrt(g.var(axis=2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref.reshape(x.shape), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("shape", "groups"), [((2, 6, 2, 3), 3), ((1, 4, 5), 2), ((3, 2), 1)])
def test_group_norm_gradcheck(shape: tuple[int, ...], groups: int) -> None:
    rng = np.random.default_rng(1)
    c = shape[1]
    inputs = [
        Tensor(rng.standard_normal(shape), requires_grad=True),
        Tensor(rng.standard_normal(c), requires_grad=True),
        Tensor(rng.standard_normal(c), requires_grad=True),
    ]
    assert gradcheck(lambda a, w, b: F.group_norm(a, groups, w, b), inputs)
    assert gradcheck(lambda a: F.group_norm(a, groups), inputs[:1])


def test_group_norm_module_errors_and_empty_batch() -> None:
    gn = nn.GroupNorm(2, 4)
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"  # torch 2.13
    assert [k for k, _ in gn.named_parameters()] == ["weight", "bias"]
    y = gn(Tensor(X.astype(np.float32)))
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match=r"group_norm: expected the number of channels \(4"):
        F.group_norm(Tensor(X), 3)
    with pytest.raises(ValueError, match="GroupNorm: num_channels=5 must be divisible"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match=r"GroupNorm: weight has shape \(4,\), expected \(6,\)"):
        nn.GroupNorm(2, 4)(Tensor(np.zeros((1, 6, 2), dtype=np.float32)))
    e = Tensor(np.zeros((0, 4, 2, 2)), requires_grad=True)
    w = Tensor(np.ones(4), requires_grad=True)
    out = F.group_norm(e, 2, w)
    assert out.shape == (0, 4, 2, 2)
    out.sum().backward()
    assert w.grad is not None and not w.grad.numpy().any()


# ---- RMSNorm -----------------------------------------------------------------------------


def test_rms_norm_matches_torch_literal_and_formula() -> None:
    w = det((2, 3), 0.5, 1.0)
    y = F.rms_norm(Tensor(X), (2, 3), Tensor(w)).numpy()
    # torch 2.13: F.rms_norm(x, (2, 3), w)[0, 1] (eps=None: machine epsilon of float64)
    expected = [[1.09777573, 0.41585589, -0.98345123], [-0.59579535, 0.07746725, -0.45223397]]
    np.testing.assert_allclose(y[0, 1], expected, atol=1e-8)
    ms = np.mean(X**2, axis=-1, keepdims=True)
    ref = X / np.sqrt(ms + 1e-6)
    np.testing.assert_allclose(F.rms_norm(Tensor(X), 3, eps=1e-6).numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4), (2, 1, 5), (1, 1)])
def test_rms_norm_gradcheck(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    w = Tensor(rng.standard_normal(shape[-1]), requires_grad=True)
    assert gradcheck(lambda a, b: F.rms_norm(a, shape[-1], b, 1e-5), [x, w])
    assert gradcheck(lambda a: F.rms_norm(a, shape[-1]), [x])


def test_rms_norm_module_dtype_errors() -> None:
    m = nn.RMSNorm((2, 3))
    assert repr(m) == "RMSNorm((2, 3), eps=None, elementwise_affine=True)"  # torch 2.13
    assert m(Tensor(X.astype(np.float32))).dtype == np.float32
    with pytest.raises(ValueError, match=r"rms_norm: input of shape \(2, 4, 2, 3\) does not end"):
        F.rms_norm(Tensor(X), 4)
    with pytest.raises(TypeError, match="RMSNorm: weight has dtype float32 but input has float64"):
        m(Tensor(X))
    assert F.rms_norm(Tensor(np.zeros((0, 3))), 3).shape == (0, 3)


# ---- BatchNorm2d -------------------------------------------------------------------------


def test_batch_norm2d_matches_torch_literals() -> None:
    bn = nn.BatchNorm2d(4, dtype="float64")
    y = bn(Tensor(X)).numpy()
    # torch 2.13: nn.BatchNorm2d(4).double() in training mode, y[0, :, 0], running stats
    expected = [
        [-1.29710000e-04, 1.49443467e00, 7.99458730e-01],
        [1.09436551e00, 1.76963060e-01, -1.37164156e00],
        [1.35541850e-01, -1.46978709e00, -9.67708540e-01],
        [-1.08464313e00, -3.16168440e-01, 1.28416226e00],
    ]
    np.testing.assert_allclose(y[0, :, 0], expected, atol=1e-8)
    assert bn.running_mean is not None and bn.running_var is not None
    np.testing.assert_allclose(
        bn.running_mean.numpy(), [1.672e-05, 3.760726e-02, 4.04151e-03, -3.717114e-02], atol=1e-8
    )
    np.testing.assert_allclose(
        bn.running_var.numpy(), [1.08137298, 1.13935107, 1.08204255, 1.13801415], atol=1e-8
    )
    bn.eval()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    ref = (X - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(Tensor(X)).numpy(), ref, rtol=1e-12)


def test_batch_norm_4d_gradcheck_and_errors() -> None:
    rng = np.random.default_rng(3)
    inputs = [
        Tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True),
        Tensor(rng.standard_normal(3), requires_grad=True),
        Tensor(rng.standard_normal(3), requires_grad=True),
    ]
    assert gradcheck(lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True), inputs)
    bn = nn.BatchNorm2d(3)
    assert repr(bn) == (
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    )
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D \(N, C, H, W\) input"):
        bn(Tensor(np.zeros((2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm2d: input of shape .* has 4 channels"):
        bn(Tensor(np.zeros((2, 4, 2, 2), dtype=np.float32)))
    keys = list(bn.state_dict())
    assert keys == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


# ---- activations -------------------------------------------------------------------------

V = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.5, 30.0])

# torch 2.13: F.mish(v), F.elu(v, 0.7), F.selu(v), F.hardtanh(v, -0.5, 2.0)
ACTIVATION_LITERALS: dict[str, list[float]] = {
    "mish": [-0.14564746, -0.30340146, -0.22074377, 0.0, 0.16957241, 0.86509839, 2.4713923, 30.0],
    "elu": [-0.66514905, -0.44248439, -0.27542854, 0.0, 0.25, 1.0, 2.5, 30.0],
    "selu": [-1.67056873, -1.11133074, -0.69175819, 0.0, 0.26267525, 1.05070099, 2.62675247,
             31.52102962],
    "hardtanh": [-0.5, -0.5, -0.5, 0.0, 0.25, 1.0, 2.0, 2.0],
}  # fmt: skip

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "mish": F.mish,
    "elu": lambda t: F.elu(t, 0.7),
    "selu": F.selu,
    "hardtanh": lambda t: F.hardtanh(t, -0.5, 2.0),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_values_dtype_and_gradcheck(name: str) -> None:
    fn = ACTIVATIONS[name]
    np.testing.assert_allclose(fn(Tensor(V)).numpy(), ACTIVATION_LITERALS[name], atol=1e-7)
    assert fn(Tensor(V.astype(np.float32))).dtype == np.float32
    # away from hardtanh's kinks at -0.5 and 2.0
    x = np.random.default_rng(4).uniform(-3, 3, (3, 5))
    x = np.where(np.abs(x + 0.5) < 0.05, 0.3, x)
    x = np.where(np.abs(x - 2.0) < 0.05, 0.3, x)
    assert gradcheck(fn, [Tensor(x, requires_grad=True)])


def test_swiglu_halves_and_gradcheck() -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 8))
    a, b = x[..., :4], x[..., 4:]
    ref = a / (1 + np.exp(-a)) * b
    y = F.swiglu(Tensor(x))
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)
    assert gradcheck(F.swiglu, [Tensor(x, requires_grad=True)])
    assert F.swiglu(Tensor(x.astype(np.float32))).dtype == np.float32
    with pytest.raises(
        ValueError, match=r"swiglu: the last axis must have an even size .*\(2, 3\)"
    ):
        F.swiglu(Tensor(np.zeros((2, 3))))


def test_activation_modules_and_reprs() -> None:
    t = Tensor(V)
    np.testing.assert_array_equal(nn.Mish()(t).numpy(), F.mish(t).numpy())
    np.testing.assert_array_equal(nn.ELU(0.7)(t).numpy(), F.elu(t, 0.7).numpy())
    np.testing.assert_array_equal(nn.SELU()(t).numpy(), F.selu(t).numpy())
    np.testing.assert_array_equal(nn.Hardtanh(-0.5, 2.0)(t).numpy(), F.hardtanh(t, -0.5, 2).numpy())
    # reprs as torch 2.13 prints them
    assert [repr(m) for m in (nn.ELU(), nn.Hardtanh(), nn.SELU(), nn.Mish())] == [
        "ELU(alpha=1.0)",
        "Hardtanh(min_val=-1.0, max_val=1.0)",
        "SELU()",
        "Mish()",
    ]
    assert repr(nn.ELU(inplace=True)) == "ELU(alpha=1.0, inplace=True)"
    with pytest.raises(ValueError, match="hardtanh: max_val"):
        F.hardtanh(t, 1.0, -1.0)
    with pytest.raises(TypeError, match="mish: expected a float32 or float64 input"):
        F.mish(Tensor(np.arange(3)))


# ---- Dropout2d ---------------------------------------------------------------------------


def test_dropout2d_zeros_whole_channels() -> None:
    manual_seed(0)
    x = Tensor(np.ones((8, 16, 3, 3), dtype=np.float32), requires_grad=True)
    y = F.dropout2d(x, 0.5)
    v = y.numpy()
    assert v.dtype == np.float32
    assert (v == v[:, :, :1, :1]).all()  # constant over each channel
    assert set(np.unique(v)) <= {0.0, 2.0}
    assert 0.3 < (v[:, :, 0, 0] == 0).mean() < 0.7
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), v)  # gradient is the same mask
    assert F.dropout2d(x, 0.5, training=False) is x
    assert not F.dropout2d(x, 1.0).numpy().any()
    d = nn.Dropout2d(0.25)
    assert repr(d) == "Dropout2d(p=0.25, inplace=False)"
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="dropout2d: dropout probability has to be between"):
        F.dropout2d(x, 1.5)
    with pytest.raises(ValueError, match=r"dropout2d: expected a 3-D or 4-D input, got shape \(3,"):
        F.dropout2d(Tensor(np.ones((3, 3))), 0.5)


def test_dropout2d_reproducible_with_manual_seed() -> None:
    x = Tensor(np.ones((4, 8, 2, 2)))
    manual_seed(7)
    a = F.dropout2d(x, 0.3).numpy()
    manual_seed(7)
    b = F.dropout2d(x, 0.3).numpy()
    np.testing.assert_array_equal(a, b)


# ---- forward mode ------------------------------------------------------------------------

JVP_CASES: dict[str, tuple[Callable[..., Tensor], list[tuple[int, ...]]]] = {
    "group_norm": (lambda a, w, b: F.group_norm(a, 2, w, b), [(2, 4, 3, 2), (4,), (4,)]),
    "rms_norm": (lambda a, w: F.rms_norm(a, 5, w, 1e-5), [(3, 2, 5), (5,)]),
    "mish": (F.mish, [(3, 4)]),
    "elu": (F.elu, [(3, 4)]),
    "selu": (F.selu, [(3, 4)]),
    "hardtanh": (lambda a: F.hardtanh(a, -3.0, 3.0), [(3, 4)]),
    "swiglu": (F.swiglu, [(3, 4)]),
}


@pytest.mark.parametrize("name", list(JVP_CASES))
def test_forward_mode_jvp_matches_finite_differences(name: str) -> None:
    fn, shapes = JVP_CASES[name]
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal(s) for s in shapes]
    ts = [rng.standard_normal(s) for s in shapes]
    _, tangent_out = jvp(fn, tuple(Tensor(a) for a in xs), tuple(Tensor(t) for t in ts))
    eps = 1e-6
    plus = fn(*[Tensor(a + eps * t) for a, t in zip(xs, ts, strict=True)]).numpy()
    minus = fn(*[Tensor(a - eps * t) for a, t in zip(xs, ts, strict=True)]).numpy()
    np.testing.assert_allclose(tangent_out.numpy(), (plus - minus) / (2 * eps), atol=1e-7)


def test_dropout2d_forward_mode_jvp_is_the_mask() -> None:
    manual_seed(3)
    x = np.random.default_rng(10).standard_normal((2, 6, 2, 2))
    out, tangent = jvp(lambda a: F.dropout2d(a, 0.5), (Tensor(x),), (Tensor(np.ones_like(x)),))
    np.testing.assert_allclose(out.numpy(), tangent.numpy() * x)


@pytest.mark.parametrize("name", ["mish", "elu", "selu", "hardtanh", "swiglu"])
def test_activation_double_backward_gradgradcheck(name: str) -> None:
    fn, shapes = JVP_CASES[name]
    x = np.random.default_rng(16).uniform(-2.5, 2.5, shapes[0])
    assert gradgradcheck(fn, [Tensor(x, requires_grad=True)])


def test_dropout2d_double_backward() -> None:
    def fn(a: Tensor) -> Tensor:
        manual_seed(5)  # the same mask on every call
        return F.dropout2d(a, 0.5) * a

    x = np.random.default_rng(17).standard_normal((2, 3, 2, 2))
    assert gradgradcheck(fn, [Tensor(x, requires_grad=True)])


def test_group_norm_and_rms_norm_double_backward_gradgradcheck() -> None:
    rng = np.random.default_rng(18)

    def t(*shape: int) -> Tensor:
        return Tensor(rng.standard_normal(shape), requires_grad=True)

    assert gradgradcheck(lambda a, w, b: F.group_norm(a, 2, w, b), [t(2, 4, 3, 2), t(4), t(4)])
    assert gradgradcheck(lambda a: F.group_norm(a, 2), [t(2, 4, 3)])
    assert gradgradcheck(lambda a, w: F.rms_norm(a, (2, 3), w, 1e-5), [t(3, 2, 3), t(2, 3)])
    assert gradgradcheck(lambda a: F.rms_norm(a, 3), [t(4, 3)])
