"""nn.init (statistics, fans, in-place contract) and nn.utils (clipping, flat vectors)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from gradwise import nn
from gradwise.autograd import Tensor, manual_seed, tensor
from gradwise.nn import init, utils

# ---- init ---------------------------------------------------------------------------------


def test_calculate_gain_matches_torch() -> None:
    # torch 2.13 values
    assert init.calculate_gain("linear") == 1
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(1.6666666666666667, rel=1e-15)
    assert init.calculate_gain("relu") == pytest.approx(1.4142135623730951, rel=1e-15)
    assert init.calculate_gain("leaky_relu") == pytest.approx(1.4141428569978354, rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(1.3867504905630728, rel=1e-15)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def _sample(shape: tuple[int, ...], dtype: type = np.float32) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype))


# (initialiser, expected std, expected max |value| or None), for a (256, 128, 3) tensor:
# fan_in = 128 * 3 = 384, fan_out = 256 * 3 = 768.
FAN_IN, FAN_OUT = 384, 768
CASES: list[tuple[str, Callable[[Tensor], Tensor], float, float | None]] = [
    ("uniform", lambda t: init.uniform_(t, -2.0, 2.0), 4 / math.sqrt(12), 2.0),
    ("normal", lambda t: init.normal_(t, 0.0, 0.5), 0.5, None),
    (
        "xavier_uniform",
        lambda t: init.xavier_uniform_(t, gain=2.0),
        2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)),
        2.0 * math.sqrt(6 / (FAN_IN + FAN_OUT)),
    ),
    ("xavier_normal", init.xavier_normal_, math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    (
        "kaiming_uniform",
        lambda t: init.kaiming_uniform_(t, nonlinearity="relu"),
        math.sqrt(2 / FAN_IN),
        math.sqrt(6 / FAN_IN),
    ),
    (
        "kaiming_uniform_a5",
        lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)),
        1 / math.sqrt(3 * FAN_IN),
        1 / math.sqrt(FAN_IN),
    ),
    (
        "kaiming_normal_fan_out",
        lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
        math.sqrt(2 / FAN_OUT),
        None,
    ),
    ("trunc_normal", lambda t: init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04), 0.0176, 0.04),
]


@pytest.mark.parametrize(("name", "fn", "std", "bound"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_statistics(
    name: str, fn: Callable[[Tensor], Tensor], std: float, bound: float | None, dtype: type
) -> None:
    manual_seed(3)
    t = _sample((256, 128, 3), dtype)
    version = t.version_counter().value
    assert fn(t) is t
    assert t.dtype == dtype
    assert t.version_counter().value > version
    v = t.numpy().astype(np.float64)
    assert abs(v.mean()) < 0.02 * std
    assert v.std() == pytest.approx(std, rel=0.02)
    if bound is not None:
        assert np.abs(v).max() <= bound * (1 + 1e-6)
        assert np.abs(v).max() > 0.98 * bound


def test_constant_zeros_ones() -> None:
    t = _sample((2, 3))
    assert init.constant_(t, 0.5) is t
    np.testing.assert_array_equal(t.numpy(), 0.5)
    init.ones_(t)
    np.testing.assert_array_equal(t.numpy(), 1)
    init.zeros_(t)
    np.testing.assert_array_equal(t.numpy(), 0)
    assert t.dtype == np.float32


def test_init_fan_errors_and_types() -> None:
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_):
        with pytest.raises(ValueError, match=r"fewer than 2 dimensions \(got shape \(5,\)\)"):
            fn(_sample((5,)))
    with pytest.raises(ValueError, match="mode 'fan_avg'"):
        init.kaiming_normal_(_sample((3, 3)), mode="fan_avg")
    with pytest.raises(TypeError, match="float32 or float64"):
        init.normal_(tensor([1, 2]))
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.uniform_(np.zeros(3))  # type: ignore[arg-type]


def test_init_on_parameter_under_grad_and_saved_graph_notices() -> None:
    lin = nn.Linear(3, 2)
    x = Tensor(np.ones((1, 3), dtype=np.float32), requires_grad=True)
    y = lin(x)
    init.zeros_(lin.weight)  # allowed on a leaf that requires grad, as under no_grad
    np.testing.assert_array_equal(lin.weight.numpy(), 0)
    assert lin.weight.requires_grad
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_init_is_seeded() -> None:
    manual_seed(11)
    a = init.normal_(_sample((4, 4)))
    manual_seed(11)
    b = init.normal_(_sample((4, 4)))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---- utils ---------------------------------------------------------------------------------


def _params() -> tuple[nn.Parameter, nn.Parameter]:
    p1 = nn.Parameter(np.zeros(3, dtype=np.float32))
    p2 = nn.Parameter(np.zeros((2, 2), dtype=np.float32))
    p1.grad = Tensor(np.array([3.0, -4.0, 1.0], dtype=np.float32))
    p2.grad = Tensor(np.array([[1.0, 2.0], [-2.0, 0.5]], dtype=np.float32))
    return p1, p2


def test_clip_grad_norm_matches_torch() -> None:
    # torch 2.13: total 5.93717098236084; clipped grads as below
    p1, p2 = _params()
    total = utils.clip_grad_norm_([p1, p2], 1.0)
    assert total.shape == ()
    assert total.dtype == np.float32
    assert total.item() == pytest.approx(5.93717098236084, rel=1e-6)
    assert p1.grad is not None
    assert p2.grad is not None
    np.testing.assert_allclose(
        p1.grad.numpy(), [0.5052911043167114, -0.673721432685852, 0.168430358171463], rtol=1e-6
    )
    np.testing.assert_allclose(
        p2.grad.numpy(),
        [[0.168430358171463, 0.336860716342926], [-0.336860716342926, 0.0842151790857315]],
        rtol=1e-6,
    )
    assert p1.grad.dtype == np.float32


def test_clip_grad_norm_vs_numpy_and_inf_and_no_clip() -> None:
    p1, p2 = _params()
    g = np.concatenate([p1.grad.numpy().ravel(), p2.grad.numpy().ravel()])  # type: ignore[union-attr]
    total = utils.clip_grad_norm_(iter([p1, p2]), 2.0, norm_type="inf")
    assert total.item() == 4.0
    assert p1.grad is not None
    # torch 2.13: 1.4999996423721313 etc. (scaled by 2 / (4 + 1e-6))
    np.testing.assert_allclose(p1.grad.numpy(), [1.4999996423721313, -1.9999995231628418,
                                                 0.49999988079071045], rtol=1e-6)  # fmt: skip
    p1, p2 = _params()
    total = utils.clip_grad_norm_([p1, p2], 100.0, norm_type=1.0)
    assert total.item() == pytest.approx(np.abs(g).sum())
    assert p1.grad is not None
    np.testing.assert_array_equal(p1.grad.numpy(), [3.0, -4.0, 1.0])  # below max_norm: unchanged
    p1, p2 = _params()
    total = utils.clip_grad_norm_([p1, p2], 1.0, norm_type=3.0)
    ref = (np.abs(g) ** 3).sum() ** (1 / 3)
    assert total.item() == pytest.approx(ref, rel=1e-6)
    np.testing.assert_allclose(p1.grad.numpy(), [3.0, -4.0, 1.0] / (ref + 1e-6), rtol=1e-5)  # type: ignore[union-attr]
    assert utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite() -> None:
    p = nn.Parameter(np.zeros(2, dtype=np.float32))
    p.grad = Tensor(np.array([np.inf, 1.0], dtype=np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert math.isinf(utils.clip_grad_norm_(p, 1.0).item())


def test_clip_grad_value() -> None:
    p1, p2 = _params()
    utils.clip_grad_value_([p1, p2], 1.5)
    assert p1.grad is not None
    np.testing.assert_array_equal(p1.grad.numpy(), [1.5, -1.5, 1.0])
    assert p1.grad.dtype == np.float32


def test_parameters_vector_round_trip() -> None:
    lin = nn.Linear(3, 2)
    vec = utils.parameters_to_vector(lin.parameters())
    assert vec.shape == (8,)
    assert vec.requires_grad
    utils.vector_to_parameters(Tensor(np.arange(8, dtype=np.float32)), lin.parameters())
    np.testing.assert_array_equal(lin.weight.numpy(), np.arange(6).reshape(2, 3))
    assert lin.bias is not None
    np.testing.assert_array_equal(lin.bias.numpy(), [6, 7])
    with pytest.raises(ValueError, match="does not match the 8 parameter elements"):
        utils.vector_to_parameters(Tensor(np.zeros(5, dtype=np.float32)), lin.parameters())
