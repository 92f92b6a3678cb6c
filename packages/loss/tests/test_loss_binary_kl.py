"""Binary cross-entropy (probabilities and logits) and KL divergence."""

from typing import Any

import numpy as np
import pytest

import gradwise.loss as L
from gradwise.autograd import gradcheck, tensor

X = [[0.5, -1.2, 2.0, 0.1], [-0.3, 0.8, -2.5, 1.7], [1.1, 0.0, -0.4, 3.2]]
Y = [[0.2, -0.7, 0.5, 0.1], [1.0, 0.6, -1.0, -0.3], [1.9, -0.2, 0.1, 1.4]]
PR = [[0.1, 0.9, 0.5, 0.0], [1.0, 0.3, 0.75, 0.2], [0.6, 0.4, 0.05, 0.99]]
YB = [[0.0, 1.0, 0.3, 0.0], [1.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.0, 1.0]]
WB = [[1.0], [0.5], [2.0]]
PW = [1.0, 2.0, 0.5, 3.0]
PK = [[0.0, 0.2, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25], [0.7, 0.0, 0.1, 0.2]]
# log_softmax(X, 1) by torch 2.13
LX = [
    [-1.8460412949049112, -3.5460412949049114, -0.34604129490491126, -2.246041294904911],
    [-2.442696998580537, -1.342696998580537, -4.642696998580537, -0.442696998580537],
    [-2.27440896353044, -3.37440896353044, -3.77440896353044, -0.17440896353043997],
]

# Computed with torch 2.13 (float64): F.binary_cross_entropy(PR, YB, weight=WB?) and
# F.binary_cross_entropy_with_logits(X, YB, weight=WB?, pos_weight=PW?), per reduction.
BIN: dict[tuple[Any, ...], Any] = {
    ("bce", "mean", "-"): 0.3871769272151174,
    ("bce", "mean", "w"): 0.417307137337525,
    ("bcel", "mean", "-"): 0.9636889073306301,
    ("bcel", "mean", "w"): 0.93847101184648,
    ("bcel", "mean", "pw"): 1.0400931334900196,
    ("bcel", "mean", "w+pw"): 1.0901599597385119,
    ("bce", "sum", "-"): 4.646123126581409,
    ("bce", "sum", "w"): 5.0076856480503,
    ("bcel", "sum", "-"): 11.56426688796756,
    ("bcel", "sum", "w"): 11.26165214215776,
    ("bcel", "sum", "pw"): 12.481117601880236,
    ("bcel", "sum", "w+pw"): 13.081919516862142,
    ("bce", "none", "-"): [
        [0.10536051565782631, 0.10536051565782628, 0.6931471805599453, 0.0],
        [-0.0, 0.35667494393873234, 0.2876820724517809, 1.6094379124341003],
        [0.7135581778200728, 0.7135581778200728, 0.051293294387550536, 0.01005033585350145],
    ],
    ("bce", "none", "w"): [
        [0.10536051565782631, 0.10536051565782628, 0.6931471805599453, 0.0],
        [-0.0, 0.17833747196936617, 0.14384103622589045, 0.8047189562170501],
        [1.4271163556401456, 1.4271163556401456, 0.10258658877510107, 0.0201006717070029],
    ],
    ("bcel", "none", "-"): [
        [0.9740769841801067, 1.4632824673380311, 1.5269280110429724, 0.7443966600735709],
        [0.8543552444685272, 1.1711006659477778, 2.5788897342925496, 0.16778602938626594],
        [0.8373353251154309, 0.6931471805599453, 0.5130152523999526, 0.03995333316243035],
    ],
    ("bcel", "none", "w"): [
        [0.9740769841801067, 1.4632824673380311, 1.5269280110429724, 0.7443966600735709],
        [0.4271776222342636, 0.5855503329738889, 1.2894448671462748, 0.08389301469313297],
        [1.6746706502308617, 1.3862943611198906, 1.0260305047999052, 0.0799066663248607],
    ],
    ("bcel", "none", "pw"): [
        [0.9740769841801067, 2.9265649346760623, 1.5078888093865266, 0.7443966600735709],
        [0.8543552444685272, 1.1711006659477778, 1.2894448671462748, 0.5033580881587978],
        [0.8373353251154309, 1.0397207708399179, 0.5130152523999526, 0.11985999948729104],
    ],
    ("bcel", "none", "w+pw"): [
        [0.9740769841801067, 2.9265649346760623, 1.5078888093865266, 0.7443966600735709],
        [0.4271776222342636, 0.5855503329738889, 0.6447224335731374, 0.2516790440793989],
        [1.6746706502308617, 2.0794415416798357, 1.0260305047999052, 0.23971999897458207],
    ],
}

# torch 2.13: F.kl_div(LX, PK, reduction=r) and F.kl_div(LX, Y, reduction=r, log_target=True)
KL: dict[tuple[Any, ...], Any] = {
    ("kl", "mean", False): 0.24503177744067392,
    ("kl", "mean", True): 5.284909013354404,
    ("kl", "batchmean", False): 0.9801271097626957,
    ("kl", "batchmean", True): 21.139636053417615,
    ("kl", "sum", False): 2.940381329288087,
    ("kl", "sum", True): 63.41890816025285,
    ("kl", "none", False): [
        [0.0, 0.3873206764941622, -0.2573794528263074, 0.7764470571724829],
        [0.26410065936516164, -0.010899340634838384, 0.8141006593651616, -0.2358993406348384],
        [1.3424138137141952, 0.0, 0.14718238705363945, -0.2870057897807321],
    ],
    ("kl", "none", True): [
        [2.4990404809064644, 1.413302281033252, 1.394886278800407, 2.592776611733442],
        [9.358220692131969, 3.5398247245758103, 1.3400733361946984, 0.10571253658505506],
        [27.90965768906893, 2.598986241288773, 4.281884111225455, 6.384543176708599],
    ],
}

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_matches_torch(reduction: str) -> None:
    x, y, w = tensor(np.array(PR)), np.array(YB), np.array(WB)
    out = L.binary_cross_entropy(x, y, reduction=reduction)
    np.testing.assert_allclose(out.numpy(), BIN[("bce", reduction, "-")], rtol=1e-12)
    out = L.binary_cross_entropy(x, y, w, reduction=reduction)
    np.testing.assert_allclose(out.numpy(), BIN[("bce", reduction, "w")], rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(reduction: str) -> None:
    x, y, w, pw = tensor(np.array(X)), np.array(YB), np.array(WB), np.array(PW)
    cases = {
        "-": {},
        "w": {"weight": w},
        "pw": {"pos_weight": pw},
        "w+pw": {"weight": w, "pos_weight": pw},
    }
    for tag, kw in cases.items():
        out = L.binary_cross_entropy_with_logits(x, y, reduction=reduction, **kw)
        np.testing.assert_allclose(out.numpy(), BIN[("bcel", reduction, tag)], rtol=1e-12)


def test_binary_cross_entropy_clamps_logs_at_minus_100() -> None:
    x = tensor(np.array([0.0, 1.0, 0.0, 1.0]), requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    out = L.binary_cross_entropy(x, y, reduction="none")
    # torch 2.13: [100.0, 100.0, 0.0, -0.0]
    np.testing.assert_array_equal(out.numpy(), [100.0, 100.0, 0.0, 0.0])
    out.sum().backward()
    assert x.grad is not None
    g = x.grad.numpy()
    assert np.isfinite(g).all()
    assert g[0] < -1e11 and g[1] > 1e11  # (x - y) / max(x (1 - x), 1e-12), as torch
    np.testing.assert_array_equal(g[2:], [0.0, 0.0])


def test_bce_with_logits_stable_at_1e4() -> None:
    x = tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]]), requires_grad=True)
    y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]])
    out = L.binary_cross_entropy_with_logits(x, y, pos_weight=np.array([2.0, 3.0, 1.0]))
    out.backward()
    assert x.grad is not None
    # torch 2.13 (float64)
    np.testing.assert_allclose(out.item(), 11667.199977088174, rtol=1e-12)
    np.testing.assert_allclose(
        x.grad.numpy(),
        [
            [0.16666666666666666, -0.5, -0.08333333333333333],
            [-0.3333333333333333, 0.16666666666666666, 0.08221785817928588],
        ],
        rtol=1e-12,
    )
    x32 = tensor(np.array([1e4, -1e4, 3.0, -2.0], dtype=np.float32), requires_grad=True)
    y32 = np.array([0.0, 1.0, 0.5, 1.0], dtype=np.float32)
    out32 = L.binary_cross_entropy_with_logits(x32, y32, reduction="none")
    # torch 2.13 (float32): [10000.0, 10000.0, 1.5485873, 2.126928]
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), [10000.0, 10000.0, 1.5485873, 2.126928], rtol=1e-6)
    out32.sum().backward()
    assert x32.grad is not None
    assert x32.grad.dtype == np.float32
    assert np.isfinite(x32.grad.numpy()).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("tag", ["-", "w", "pw", "w+pw"])
def test_bce_with_logits_gradcheck(tag: str, reduction: str) -> None:
    rng = np.random.default_rng(7)
    x = tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    y = tensor(rng.random((3, 4)), requires_grad=True)
    kw: dict[str, Any] = {}
    if "w" in tag.split("+"):
        kw["weight"] = rng.random((3, 1)) + 0.5
    if "pw" in tag:
        kw["pos_weight"] = rng.random(4) * 3
    fn = L.binary_cross_entropy_with_logits
    assert gradcheck(lambda a, b: fn(a, b, reduction=reduction, **kw), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_gradcheck(weighted: bool, reduction: str) -> None:
    rng = np.random.default_rng(8)
    x = tensor(rng.uniform(0.05, 0.95, (3, 4)), requires_grad=True)
    y = tensor(rng.random((3, 4)), requires_grad=True)
    w = rng.random(4) + 0.5 if weighted else None
    fn = L.binary_cross_entropy
    assert gradcheck(lambda a, b: fn(a, b, w, reduction=reduction), [x, y])


def test_binary_float32_stays_float32() -> None:
    for fn, data in ((L.binary_cross_entropy, PR), (L.binary_cross_entropy_with_logits, X)):
        x = tensor(np.array(data, dtype=np.float32), requires_grad=True)
        out = fn(x, np.array(YB), np.array(WB))
        assert out.dtype == np.float32
        out.backward()
        assert x.grad is not None
        assert x.grad.dtype == np.float32
    out = L.binary_cross_entropy(tensor(np.array(PR, dtype=np.float32)), np.array(YB))
    np.testing.assert_allclose(out.item(), BIN[("bce", "mean", "-")], rtol=1e-6)


def test_binary_errors() -> None:
    x = tensor(np.full((2, 3), 0.5))
    y = np.zeros((2, 3))
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should be"):
        L.binary_cross_entropy(tensor(np.array([0.5, 1.5])), np.zeros(2))
    with pytest.raises(ValueError, match="all elements of input should be between 0 and 1"):
        L.binary_cross_entropy(tensor(np.array([np.nan])), np.zeros(1))
    with pytest.raises(ValueError, match="all elements of target should be between 0 and 1"):
        L.binary_cross_entropy(tensor(np.array([0.5])), np.array([2.0]))
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy: target shape \(3,\) does not match input shape \(2, 3\)",
    ):
        L.binary_cross_entropy(x, np.zeros(3))
    with pytest.raises(
        ValueError, match=r"binary_cross_entropy_with_logits: target shape \(2, 1\)"
    ):
        L.binary_cross_entropy_with_logits(x, np.zeros((2, 1)))
    with pytest.raises(
        ValueError,
        match=r"pos_weight of shape \(2,\) does not broadcast to the input shape \(2, 3\)",
    ):
        L.binary_cross_entropy_with_logits(x, y, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"weight of shape \(2, 2, 3\) does not broadcast"):
        L.binary_cross_entropy(x, y, np.ones((2, 2, 3)))
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits: input must be float"):
        L.binary_cross_entropy_with_logits(tensor(np.zeros(3, dtype=np.int64)), np.zeros(3))
    with pytest.raises(ValueError, match="BCELoss: 'max' is not a valid value for reduction"):
        L.BCELoss(reduction="max")


def test_binary_classes_agree_with_functions() -> None:
    p, x, y, w, pw = (np.array(a) for a in (PR, X, YB, WB, PW))
    tp, tx = tensor(p), tensor(x)
    np.testing.assert_array_equal(
        L.BCELoss(w, reduction="none")(tp, y).numpy(),
        L.binary_cross_entropy(tp, y, w, reduction="none").numpy(),
    )
    np.testing.assert_array_equal(
        L.BCEWithLogitsLoss(w, pos_weight=pw)(tx, y).numpy(),
        L.binary_cross_entropy_with_logits(tx, y, w, pos_weight=pw).numpy(),
    )
    assert L.BCEWithLogitsLoss(reduction="sum")(tx, y).item() == pytest.approx(
        BIN[("bcel", "sum", "-")], rel=1e-12
    )


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
def test_kl_div_matches_torch(reduction: str) -> None:
    x = tensor(np.array(LX))
    out = L.kl_div(x, np.array(PK), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), KL[("kl", reduction, False)], rtol=1e-12, atol=1e-15)
    out = L.kl_div(x, np.array(Y), reduction=reduction, log_target=True)
    np.testing.assert_allclose(out.numpy(), KL[("kl", reduction, True)], rtol=1e-12, atol=1e-15)


def test_kl_div_zero_target_terms_are_zero() -> None:
    out = L.kl_div(tensor(np.array([-1.0, -2.0])), np.array([0.0, 0.5]), reduction="none")
    # torch 2.13: [0.0, 0.6534264]
    np.testing.assert_allclose(out.numpy(), [0.0, 0.5 * (np.log(0.5) + 2.0)], rtol=1e-12)
    # a 0-d input: 'batchmean' divides by 1 (torch 2.13: 0.1534264)
    out0 = L.kl_div(tensor(np.array(-1.0)), np.array(0.5), reduction="batchmean")
    np.testing.assert_allclose(out0.item(), 0.5 * (np.log(0.5) + 1.0), rtol=1e-12)


def test_kl_div_stable_at_1e4() -> None:
    x = tensor(np.array([-1e4, -1.0], dtype=np.float32), requires_grad=True)
    out = L.kl_div(x, np.array([0.5, 0.5], dtype=np.float32), reduction="sum")
    out.backward()
    assert x.grad is not None
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.item(), 4999.806640625, rtol=1e-6)  # torch 2.13
    np.testing.assert_array_equal(x.grad.numpy(), [-0.5, -0.5])


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_gradcheck(log_target: bool, reduction: str) -> None:
    rng = np.random.default_rng(9)
    x = tensor(np.log(rng.uniform(0.1, 1.0, (3, 4))), requires_grad=True)
    y = rng.uniform(0.1, 1.0, (3, 4))
    t = tensor(np.log(y) if log_target else y, requires_grad=True)
    fn = L.kl_div
    assert gradcheck(lambda a, b: fn(a, b, reduction=reduction, log_target=log_target), [x, t])


def test_kl_div_errors_and_class() -> None:
    x = tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"kl_div: target shape \(3,\) does not match"):
        L.kl_div(x, np.zeros(3))
    with pytest.raises(ValueError, match="kl_div: 'batch' is not a valid value"):
        L.kl_div(x, np.zeros((2, 3)), reduction="batch")
    with pytest.raises(ValueError, match="KLDivLoss: 'avg' is not a valid value"):
        L.KLDivLoss("avg")
    module = L.KLDivLoss("batchmean", log_target=True)
    np.testing.assert_array_equal(
        module(tensor(np.array(LX)), np.array(Y)).numpy(),
        L.kl_div(tensor(np.array(LX)), np.array(Y), reduction="batchmean", log_target=True).numpy(),
    )
    assert repr(module) == "KLDivLoss(reduction='batchmean', log_target=True)"
