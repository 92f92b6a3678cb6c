"""LayerNorm and BatchNorm1d: values vs torch 2.13, running statistics, gradchecks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from gradwise import nn
from gradwise.autograd import Tensor, gradcheck
from gradwise.nn import functional as F


def inp(shape: tuple[int, ...], k: int) -> np.ndarray:
    """Deterministic float64 data (the same formula fed torch for the literals below)."""
    n = int(np.prod(shape))
    out: np.ndarray = (np.sin(np.arange(n) * 0.7 + k) * (1 + k) + 0.3 * k).reshape(shape)
    return out


def f64(*shape: int, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# ---- LayerNorm ----------------------------------------------------------------------------

# torch 2.13: nn.LayerNorm((3, 4)).double() with weight inp((3,4),2), bias inp((3,4),3),
# applied to inp((2,3,4),1), flattened.
TORCH_LN = [
    4.410376842609343, 0.8429119064757581, -3.0151413537186724, -2.3659553392051973,
    1.7919497060600447, 4.28407946446585, 3.5373071734053436, 2.985491142884284,
    4.337093173030727, 4.366336454804604, 0.7300704567406096, -3.0632567407905897,
    2.233409585092492, -2.566776363945598, -2.7007161388029943, -0.7986275170595394,
    -0.17722519670262868, 0.7410813990010146, 4.582155723172587, 8.709071280922386,
    7.8408332408579975, 2.080801963474557, -2.625622926028954, -2.6597986308806085,
]  # fmt: skip
# torch 2.13: nn.LayerNorm(5) (float32) on inp((2,5),4).
TORCH_LN32 = [
    [-0.5790644288063049, -1.0284260511398315, -0.6085670590400696, 0.48304635286331177,
     1.7330113649368286],
    [0.9756932258605957, 0.979789137840271, 0.32021456956863403, -0.6928223371505737,
     -1.5828745365142822],
]  # fmt: skip


def test_layer_norm_matches_torch_float64() -> None:
    ln = nn.LayerNorm((3, 4), dtype=np.float64)
    assert ln.weight is not None
    assert ln.bias is not None
    ln.weight.data[...] = inp((3, 4), 2)
    ln.bias.data[...] = inp((3, 4), 3)
    y = ln(Tensor(inp((2, 3, 4), 1)))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.numpy().reshape(-1), TORCH_LN, rtol=1e-12, atol=1e-12)


def test_layer_norm_matches_torch_float32() -> None:
    ln = nn.LayerNorm(5)
    y = ln(Tensor(inp((2, 5), 4).astype(np.float32)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), TORCH_LN32, rtol=1e-5, atol=1e-6)


def test_layer_norm_gradcheck() -> None:
    x, w, b = f64(2, 3, 4, seed=1), f64(3, 4, seed=2), f64(3, 4, seed=3)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b])
    assert gradcheck(lambda x, w: F.layer_norm(x, 4, w), [x, f64(4, seed=4)])
    assert gradcheck(lambda x: F.layer_norm(x, 4), [x])


def test_layer_norm_options_and_errors() -> None:
    plain = nn.LayerNorm(4, elementwise_affine=False)
    assert list(plain.state_dict()) == []
    no_bias = nn.LayerNorm(4, bias=False)
    assert list(no_bias.state_dict()) == ["weight"]
    x = Tensor(inp((3, 4), 0).astype(np.float32))
    ref = (x.numpy() - x.numpy().mean(1, keepdims=True)) / np.sqrt(
        x.numpy().var(1, keepdims=True) + 1e-5
    )
    np.testing.assert_allclose(plain(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(no_bias(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"LayerNorm: input of shape \(3, 4\) does not end"):
        nn.LayerNorm(5)(x)
    with pytest.raises(TypeError, match="LayerNorm: weight has dtype float32 but input"):
        nn.LayerNorm(4)(Tensor(np.ones((2, 4))))


# ---- BatchNorm1d --------------------------------------------------------------------------

# torch 2.13, BatchNorm1d(3, momentum=...).double(), weight [1.5, -0.5, 2], bias
# float32 [0.1, 0.2, -0.3], three training steps on inp(shape, 0..2), then eval on inp(shape, 5).
TORCH_BN = {
    ((4, 3), 0.1): {
        "rm": [0.1936802803173096, 0.17665922806135922, 0.11747003988406801],
        "rv": [1.6466273948874859, 1.5360008064558146, 1.4761522102542501],
        "train0": [1.5080030877214117, -0.051777119063293936, -0.9070051200992445],
        "eval0": [-5.098540898230705, 0.9991116546155506, 3.1269456091518077],
    },
    ((4, 3, 5), 0.1): {
        "rm": [0.10201633010383855, 0.09322861350626022, 0.06031801635518712],
        "rv": [1.4392935758580778, 1.431898020045423, 1.4191402381918574],
        "train0": [
            2.09680425826078, 1.084563710589477, -0.34987318424560193, -1.531868340908763,
            -1.9055109680375317, 0.761513799382486, 0.3197064720674819, -0.1498380697117524,
            -0.4262856911205923, -0.37961875619722024, 1.2336492734237487, -0.741521541242869,
            -2.3475437237742454, -2.8290799469370405, -1.9596562007667497,
        ],
        "eval0": [
            -5.345769493337539, -2.2832383505690377, 2.722232794362195, 7.316492649350883,
            9.338789017305388, -2.3896589781670965, -0.9466057008891635, 0.7592585641185026,
            1.9256391981583914, 2.003969163841394, -3.2879694984872945, 3.4591036359121334,
            9.574979446527871, 12.18326597643172, 10.057245315008627,
        ],
    },
    ((4, 3), None): {
        "rm": [0.6699019132599195, 0.6258031157648065, 0.4284740221113927],
        "rv": [3.1808820483396403, 2.82742131316615, 2.6190157923873567],
        "train0": [1.5080030877214117, -0.051777119063293936, -0.9070051200992445],
        "eval0": [-4.040817693282189, 0.9225456678467057, 1.888440885861603],
    },
}  # fmt: skip


@pytest.mark.parametrize(("shape", "momentum"), list(TORCH_BN), ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_running_stats_match_torch(
    shape: tuple[int, ...], momentum: float | None, dtype: type
) -> None:
    ref = TORCH_BN[(shape, momentum)]
    bn = nn.BatchNorm1d(3, momentum=momentum, dtype=dtype)
    assert bn.weight is not None
    assert bn.bias is not None
    bn.weight.data[...] = [1.5, -0.5, 2.0]
    # the torch run copied the bias from a float32 tensor
    bn.bias.data[...] = np.array([0.1, 0.2, -0.3], dtype=np.float32).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for k in range(3):
        y = bn(Tensor(inp(shape, k).astype(dtype)))
        assert y.dtype == dtype
    assert bn.running_mean is not None
    assert bn.running_var is not None
    assert bn.num_batches_tracked is not None
    assert bn.num_batches_tracked.item() == 3
    assert bn.running_mean.dtype == dtype
    np.testing.assert_allclose(bn.running_mean.numpy(), ref["rm"], rtol=tol, atol=tol)
    np.testing.assert_allclose(bn.running_var.numpy(), ref["rv"], rtol=tol, atol=tol)
    np.testing.assert_allclose(y.numpy().reshape(4, -1)[0], ref["train0"], rtol=tol, atol=tol)
    bn.eval()
    ye = bn(Tensor(inp(shape, 5).astype(dtype)))
    np.testing.assert_allclose(ye.numpy().reshape(4, -1)[0], ref["eval0"], rtol=tol, atol=tol)
    assert bn.num_batches_tracked.item() == 3


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2)])
def test_batch_norm_gradcheck_train_and_eval(shape: tuple[int, ...]) -> None:
    w, b = f64(3, seed=2), f64(3, seed=3)
    x = f64(*shape, seed=1)

    def train(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return F.batch_norm(x, None, None, w, b, training=True)

    assert gradcheck(train, [x, w, b])
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x])
    rm, rv = Tensor(np.array([0.1, -0.2, 0.3])), Tensor(np.array([1.5, 0.5, 2.0]))
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), [x, w, b])


def test_batch_norm_train_eval_switch_and_no_tracking() -> None:
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    x = Tensor(inp((6, 2), 1))
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-4)
    bn.eval()
    assert bn.running_mean is not None
    assert bn.running_var is not None
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    ye = bn(x).numpy()
    np.testing.assert_allclose(ye, (x.numpy() - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
    free = nn.BatchNorm1d(2, track_running_stats=False, affine=False, dtype=np.float64)
    assert list(free.state_dict()) == []
    free.eval()
    np.testing.assert_allclose(free(x).numpy(), y, rtol=1e-12)


def test_batch_norm_errors() -> None:
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d: input of shape \(4, 2\) has 2 channels"):
        bn(Tensor(np.ones((4, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"2-D \(N, C\) or 3-D"):
        bn(Tensor(np.ones((2, 3, 4, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(Tensor(np.ones((1, 3), dtype=np.float32)))
    assert bn.num_batches_tracked is not None
    assert bn.num_batches_tracked.item() == 0
    with pytest.raises(TypeError, match="BatchNorm1d: running_mean has dtype float32 but input"):
        bn(Tensor(np.ones((4, 3))))
