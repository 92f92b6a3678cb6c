"""conv1d/conv2d and Conv1d/Conv2d: values (torch 2.13 literals, SciPy, a naive loop),
float64 gradchecks over stride/padding/dilation/groups, errors, dtypes, state dicts."""

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


def naive_conv2d(
    x: Array,
    w: Array,
    b: Array | None,
    s: tuple[int, int],
    p: tuple[int, int, int, int],  # top, bottom, left, right
    d: tuple[int, int],
    groups: int,
) -> Array:
    """PyTorch's formula written out with loops (float64)."""
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[1]), (p[2], p[3])))
    n, _, h, wd = xp.shape
    o, cg, kh, kw = w.shape
    oh = (h - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (wd - d[1] * (kw - 1) - 1) // s[1] + 1
    og = o // groups
    y = np.zeros((n, o, oh, ow))
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * s[0] : i * s[0] + d[0] * (kh - 1) + 1 : d[0],
                    j * s[1] : j * s[1] + d[1] * (kw - 1) + 1 : d[1],
                ]
                y[:, oc, i, j] = np.sum(patch * w[oc], axis=(1, 2, 3))
        if b is not None:
            y[:, oc] += b[oc]
    return y


# ---- values ------------------------------------------------------------------------------


def test_conv2d_matches_torch_literal() -> None:
    x, w, b = det((2, 3, 5, 5)), det((4, 3, 3, 3), 1.3, 0.5), det((4,), 0.9, 0.2)
    y = F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride=2, padding=1).numpy()
    assert y.shape == (2, 4, 3, 3)
    # torch 2.13: F.conv2d(x, w, b, stride=2, padding=1)[:, :, :2, :2]
    expected = np.array(
        [
            [
                [[5.03824916, 2.14353226], [6.83634245, -6.06029241]],
                [[-2.30103185, -4.36650176], [-6.80645505, 1.93840854]],
                [[1.53758009, 7.97016013], [7.45665111, 5.37454896]],
                [[2.35532759, -6.59731888], [-3.27779595, -8.45630768]],
            ],
            [
                [[-1.0526878, -6.44636669], [-6.67596808, -2.49476556]],
                [[-0.54302334, 8.01985048], [5.39808215, 8.42049779]],
                [[4.61729258, -4.65604232], [0.06428415, -9.29389665]],
                [[-4.67780078, 2.64326039], [-2.82023506, 10.18661353]],
            ],
        ]
    )
    np.testing.assert_allclose(y[:, :, :2, :2], expected, atol=1e-7)


def test_conv2d_same_dilated_grouped_matches_torch_literal() -> None:
    x, w = det((2, 2, 5, 5)), det((4, 1, 2, 3), 1.1, 0.3)
    y = F.conv2d(Tensor(x), Tensor(w), None, padding="same", dilation=(1, 2), groups=2)
    assert y.shape == (2, 4, 5, 5)
    # torch 2.13: F.conv2d(x, w, padding='same', dilation=(1, 2), groups=2)[0, :, 1]
    expected = [
        [-1.98763445, -2.3730358, -2.03675487, -1.63600831, -0.28549183],
        [-1.42885231, -2.05931237, -2.3839609, -2.12472285, -0.80013869],
        [1.33037231, 0.3441475, 0.39342496, -1.43873144, -2.47797098],
        [1.37822358, 0.88453038, 1.35253907, -1.01869319, -2.24276373],
    ]
    np.testing.assert_allclose(y.numpy()[0, :, 1], expected, atol=1e-7)


def test_conv1d_matches_torch_literal() -> None:
    x, w = det((1, 4, 7)), det((2, 2, 3), 0.4)
    b = np.array([0.5, -0.5])
    y = F.conv1d(Tensor(x), Tensor(w), Tensor(b), stride=2, padding=1, dilation=2, groups=2)
    # torch 2.13: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    expected = [[[1.33649744, 1.42993895, 1.82997028], [-0.14339453, -0.22721922, 0.15727462]]]
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-7)


def test_conv2d_matches_scipy_correlate() -> None:
    pytest.importorskip("scipy")  # a dev-group package, not a dependency of gradwise-nn
    from scipy.signal import correlate

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((5, 3, 3, 4))
    y = F.conv2d(Tensor(x), Tensor(w)).numpy()
    ref = np.stack(
        [np.stack([correlate(x[n], w[o], mode="valid")[0] for o in range(5)]) for n in range(2)]
    )
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


CASES = [
    # stride, padding, dilation, groups, kernel
    (1, 0, 1, 1, (3, 3)),
    (2, 1, 1, 1, (3, 3)),
    ((2, 1), (0, 2), (1, 2), 1, (2, 3)),
    (1, 2, 2, 3, (3, 3)),
    (3, 1, 1, 6, (2, 2)),
    (1, "same", 1, 1, (2, 3)),
    (1, "same", (2, 1), 2, (3, 2)),
    (1, "valid", 1, 1, (1, 1)),
]


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups", "kernel"), CASES)
def test_conv2d_matches_naive_and_gradchecks(
    stride: object, padding: object, dilation: object, groups: int, kernel: tuple[int, int]
) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 5))
    w = rng.standard_normal((6, 6 // groups, *kernel))
    b = rng.standard_normal(6)
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        tot = [d[a] * (kernel[a] - 1) for a in range(2)]  # type: ignore[index]
        pads = (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        pp = (padding, padding) if isinstance(padding, int) else padding
        pads = (pp[0], pp[0], pp[1], pp[1])  # type: ignore[index]
    y = F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, padding, dilation, groups)  # type: ignore[arg-type]
    ref = naive_conv2d(x, w, b, s, pads, d, groups)  # type: ignore[arg-type]
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)
    inputs = [
        Tensor(x[:1, :, :5, :5].copy(), requires_grad=True),
        Tensor(w, requires_grad=True),
        Tensor(b, requires_grad=True),
    ]
    assert gradcheck(
        lambda a, k, c: F.conv2d(a, k, c, stride, padding, dilation, groups),  # type: ignore[arg-type]
        inputs,
    )


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), [(1, 0, 1, 1), (2, 2, 2, 2)])
def test_conv1d_gradcheck(stride: int, padding: int, dilation: int, groups: int) -> None:
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((2, 4, 9)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 4 // groups, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(
        lambda a, k, c: F.conv1d(a, k, c, stride, padding, dilation, groups), [x, w, b]
    )


def test_gradcheck_without_bias_and_batch_of_one() -> None:
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((1, 1, 4, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 1, 2, 2)), requires_grad=True)
    assert gradcheck(lambda a, k: F.conv2d(a, k, padding=1), [x, w])


def test_empty_batch_gives_empty_output_and_zero_weight_grads() -> None:
    x = Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    b = Tensor(np.ones(4), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 3, 5, 5)
    assert w.grad is not None and not w.grad.numpy().any()
    assert b.grad is not None and not b.grad.numpy().any()


def test_unbatched_input() -> None:
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    y = F.conv2d(Tensor(x), Tensor(w), padding=1)
    assert y.shape == (2, 5, 5)
    np.testing.assert_allclose(
        y.numpy(), F.conv2d(Tensor(x[None]), Tensor(w), padding=1).numpy()[0]
    )
    assert F.conv1d(Tensor(x[:, 0]), Tensor(w[:, :, 0])).shape == (2, 3)


@settings(deadline=None, max_examples=20)
@given(
    n=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    h=st.integers(3, 7),
    w=st.integers(3, 7),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
)
def test_conv2d_property_against_naive(
    n: int, groups: int, h: int, w: int, stride: int, padding: int, dilation: int
) -> None:
    if 2 * dilation + 1 > min(h, w) + 2 * padding:
        return
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 4, h, w))
    k = rng.standard_normal((2, 4 // groups, 3, 3))
    y = F.conv2d(Tensor(x), Tensor(k), None, stride, padding, dilation, groups).numpy()
    pads = (padding, padding, padding, padding)
    ref = naive_conv2d(x, k, None, (stride, stride), pads, (dilation, dilation), groups)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)


# ---- dtypes and errors -------------------------------------------------------------------


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    y = conv(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    assert conv.weight.grad is not None and conv.weight.grad.dtype == np.float32
    assert nn.Conv1d(3, 2, 2)(Tensor(np.zeros((1, 3, 4), dtype=np.float32))).dtype == np.float32


def test_errors_name_the_op_and_shapes() -> None:
    x = Tensor(np.zeros((2, 5, 8, 8)))
    w = Tensor(np.zeros((4, 3, 3, 3)))
    with pytest.raises(
        ValueError, match=r"conv2d: input of shape \(2, 5, 8, 8\) has 5 channels, but weight"
    ):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: the \(dilated\) kernel size \(5, 5\) is larger"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4))), w, dilation=2)
    with pytest.raises(ValueError, match=r"conv2d: out_channels=4 .* not divisible by groups=3"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4))), Tensor(np.zeros((4, 1, 3, 3))), groups=3)
    with pytest.raises(ValueError, match="conv2d: groups must be a positive int"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4))), w, groups=0)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4))), w, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv2d: bias of shape \(3,\) does not fit weight"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4))), w, Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-D \(unbatched\) or 4-D"):
        F.conv2d(Tensor(np.zeros((3, 4))), w)
    with pytest.raises(TypeError, match="conv2d: input has dtype float32 but the weight has"):
        F.conv2d(Tensor(np.zeros((1, 3, 4, 4), dtype=np.float32)), w)
    with pytest.raises(TypeError, match="conv1d: weight must be a Tensor"):
        F.conv1d(Tensor(np.zeros((1, 3, 4))), np.zeros((2, 3, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Conv2d: in_channels=3 must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv1d: input of shape \(1, 2, 5\) has 2 channels"):
        nn.Conv1d(3, 4, 3)(Tensor(np.zeros((1, 2, 5), dtype=np.float32)))


# ---- modules, init, state dicts ----------------------------------------------------------


def test_module_shapes_init_and_repr() -> None:
    manual_seed(0)
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2)
    assert conv.weight.shape == (6, 2, 3, 2)
    assert conv.bias is not None and conv.bias.shape == (6,)
    fan_in = 2 * 3 * 2
    # kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in), as the bias
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(conv.weight.numpy()).max() <= bound
    assert np.abs(conv.bias.numpy()).max() <= bound
    assert np.abs(conv.weight.numpy()).max() > 0.5 * bound
    # reprs as torch 2.13 prints them
    assert repr(nn.Conv2d(1, 16, 3)) == "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))"
    assert (
        repr(nn.Conv2d(4, 4, (3, 2), 2, 1, 2, 2))
        == "Conv2d(4, 4, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
        "groups=2)"
    )
    assert (
        repr(nn.Conv1d(2, 4, 3, padding="same", bias=False))
        == "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same, bias=False)"
    )
    assert nn.Conv1d(2, 4, 3).weight.shape == (4, 2, 3)


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


# torch 2.13: [(k, tuple(v.shape)) for k, v in net.state_dict().items()] of the same net
TORCH_KEYS = [
    ("0.weight", (4, 1, 3, 3)),
    ("0.bias", (4,)),
    ("3.weight", (8, 4, 3, 3)),
    ("3.bias", (8,)),
    ("4.weight", (8,)),
    ("4.bias", (8,)),
    ("4.running_mean", (8,)),
    ("4.running_var", (8,)),
    ("4.num_batches_tracked", ()),
    ("8.weight", (3, 8)),
    ("8.bias", (3,)),
]


def test_state_dict_keys_and_shapes_equal_pytorch() -> None:
    sd = small_cnn().state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == TORCH_KEYS


def test_pytorch_state_dict_loads_and_gives_pytorch_output() -> None:
    net = small_cnn()
    sd: dict[str, Tensor] = {}
    for i, (key, shape) in enumerate(TORCH_KEYS):
        if key.endswith("num_batches_tracked"):
            sd[key] = Tensor(np.array(0, dtype=np.int64))
        elif key.endswith("running_var"):
            sd[key] = Tensor((1.0 + 0.5 * det(shape, 0.3 + i, 0.1) ** 2).astype(np.float32))
        else:
            sd[key] = Tensor((0.3 * det(shape, 0.3 + i, 0.1)).astype(np.float32))
    net.load_state_dict(sd)
    net.eval()
    x = Tensor(det((2, 1, 8, 8), 0.37).astype(np.float32))
    y = net(x)
    assert y.dtype == np.float32
    # torch 2.13: the same state dict loaded into the torch net, eval mode, net(x)
    expected = [[0.0188561, -0.27764764, 0.2676908], [0.02272209, -0.26920858, 0.27296934]]
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)


def test_torch_comparison_when_available() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    g = rng.standard_normal((3, 6, 4, 6))
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    yt.backward(torch.tensor(g))
    xg, wg = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = F.conv2d(xg, wg, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    y.backward(Tensor(g))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert xg.grad is not None and wg.grad is not None
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wg.grad.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-10)


def _jvp_matches_finite_differences(fn: Callable[..., Tensor], arrays: list[Array]) -> None:
    """Forward mode (gradwise.autograd.jvp) against central differences, float64."""
    rng = np.random.default_rng(11)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    _, tangent_out = jvp(fn, tuple(Tensor(a) for a in arrays), tuple(Tensor(t) for t in tangents))
    eps = 1e-6
    plus = fn(*[Tensor(a + eps * t) for a, t in zip(arrays, tangents, strict=True)]).numpy()
    minus = fn(*[Tensor(a - eps * t) for a, t in zip(arrays, tangents, strict=True)]).numpy()
    np.testing.assert_allclose(tangent_out.numpy(), (plus - minus) / (2 * eps), atol=1e-7)


def test_conv_forward_mode_jvp() -> None:
    rng = np.random.default_rng(12)
    x, w, b = (
        rng.standard_normal((2, 4, 6, 5)),
        rng.standard_normal((6, 2, 3, 2)),
        rng.standard_normal(6),
    )
    _jvp_matches_finite_differences(
        lambda a, k, c: F.conv2d(a, k, c, (2, 1), 1, (1, 2), 2), [x, w, b]
    )
    _jvp_matches_finite_differences(
        lambda a, k: F.conv1d(a, k, None, 2, 1), [x[:, :, 0], rng.standard_normal((3, 4, 3))]
    )


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), ((2, 1), 1, (1, 2), 2), (1, "same", 1, 1)],
)
def test_conv2d_double_backward_gradgradcheck(
    stride: object, padding: object, dilation: object, groups: int
) -> None:
    rng = np.random.default_rng(13)
    x = Tensor(rng.standard_normal((2, 4, 5, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 4 // groups, 3, 2)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    fn = lambda a, k, c: F.conv2d(a, k, c, stride, padding, dilation, groups) ** 2  # type: ignore[arg-type]  # noqa: E731
    assert gradgradcheck(fn, [x, w, b])


def test_conv1d_double_backward_gradgradcheck() -> None:
    rng = np.random.default_rng(14)
    x = Tensor(rng.standard_normal((2, 4, 7)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    assert gradgradcheck(lambda a, k: F.conv1d(a, k, None, 2, 1, 1, 2), [x, w])


def test_gradcheck_on_an_empty_batch() -> None:
    w = Tensor(np.random.default_rng(19).standard_normal((2, 3, 3, 3)), requires_grad=True)
    x = Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    assert gradcheck(lambda a, k: F.conv2d(a, k, None, 1, 1), [x, w])
