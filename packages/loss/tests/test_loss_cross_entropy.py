"""Cross-entropy (class indices and class probabilities) and NLL."""

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise.loss as L
from gradwise.autograd import gradcheck, log_softmax, tensor

X = [[0.5, -1.2, 2.0, 0.1], [-0.3, 0.8, -2.5, 1.7], [1.1, 0.0, -0.4, 3.2]]
TGT = [1, 3, -100]
W4 = [0.3, 1.0, 2.0, 0.5]
# fmt: off
XS = [[[[0.2, -1.0], [1.5, 0.3]], [[-0.4, 0.9], [0.0, 2.2]], [[1.3, -0.6], [-1.1, 0.7]]],
      [[[0.8, 0.1], [-0.2, -1.4]], [[0.5, 1.9], [0.6, -0.9]], [[-1.5, 0.4], [1.0, 0.05]]]]
# fmt: on
TS = [[[0, 2], [1, -100]], [[2, 2], [0, 1]]]
# softmax of another fixed (3, 4) array, computed by torch 2.13: class-probability targets
P = [
    [0.27312957630328044, 0.11104619890271875, 0.36868636418248507, 0.24713786061151582],
    [0.48118862313526983, 0.3225503800118599, 0.06512179860224743, 0.13113919825062284],
    [0.5279033960927003, 0.06464516434813125, 0.0872618444625232, 0.32018959509664513],
]

# Computed with torch 2.13 (float64): F.cross_entropy / F.nll_loss on the arrays above;
# keys are (case, reduction, label_smoothing, weight) with "w" meaning W4 (W4[:3] spatially).
CE: dict[tuple[Any, ...], Any] = {
    ("idx", "mean", 0.0, "-"): 1.9943691467427243,
    ("prob", "mean", 0.0, "-"): 1.7845132777686052,
    ("spatial", "mean", 0.0, "-"): 1.877640882161437,
    ("idx", "mean", 0.0, "w"): 2.51159319613012,
    ("prob", "mean", 0.0, "w"): 1.2540468552100863,
    ("spatial", "mean", 0.0, "w"): 2.014253514929601,
    ("idx", "mean", 0.1, "-"): 2.005619146742724,
    ("prob", "mean", 0.1, "-"): 1.8265001918922745,
    ("spatial", "mean", 0.1, "-"): 1.8302599297804845,
    ("idx", "mean", 0.1, "w"): 2.5520539684378534,
    ("prob", "mean", 0.1, "w"): 1.3718918328279142,
    ("spatial", "mean", 0.1, "w"): 1.9410975602503198,
    ("nll", "mean", "-"): -0.25,
    ("nll", "mean", "w"): 0.2333333333333333,
    ("nll_spatial", "mean", "-"): 0.37142857142857144,
    ("idx", "sum", 0.0, "-"): 3.9887382934854485,
    ("prob", "sum", 0.0, "-"): 5.353539833305816,
    ("spatial", "sum", 0.0, "-"): 13.14348617513006,
    ("idx", "sum", 0.0, "w"): 3.76738979419518,
    ("prob", "sum", 0.0, "w"): 3.762140565630259,
    ("spatial", "sum", 0.0, "w"): 17.32258022839457,
    ("idx", "sum", 0.1, "-"): 4.011238293485448,
    ("prob", "sum", 0.1, "-"): 5.479500575676823,
    ("spatial", "sum", 0.1, "-"): 12.811819508463394,
    ("idx", "sum", 0.1, "w"): 3.8280809526567796,
    ("prob", "sum", 0.1, "w"): 4.115675498483743,
    ("spatial", "sum", 0.1, "w"): 16.693439018152755,
    ("nll", "sum", "-"): -0.5,
    ("nll", "sum", "w"): 0.35,
    ("nll_spatial", "sum", "-"): 2.6,
    ("idx", "none", 0.0, "-"): [3.5460412949049114, 0.442696998580537, 0.0],
    ("prob", "none", 0.0, "-"): [1.5806454310104119, 1.9688811409911897, 1.8040132613042144],
    ("spatial", "none", 0.0, "-"): [
        [[1.515781449694541, 1.8167787140575284], [1.760365143219184, 0.0]],
        [[2.9103507614533335, 1.8281729269776512], [1.878801906339747, 1.4332352733880724]],
    ],
    ("idx", "none", 0.0, "w"): [3.5460412949049114, 0.2213484992902685, 0.0],
    ("prob", "none", 0.0, "w"): [1.0777392839509272, 1.4194158513345683, 1.264985430344764],
    ("spatial", "none", 0.0, "w"): [
        [[0.4547344349083623, 3.633557428115057], [1.760365143219184, 0.0]],
        [[5.820701522906667, 3.6563458539553024], [0.5636405719019241, 1.4332352733880724]],
    ],
    ("idx", "none", 0.1, "-"): [3.3910412949049116, 0.6201969985805371, 0.0],
    ("prob", "none", 0.1, "-"): [1.622185017399862, 1.9937627267501248, 1.8635528315268368],
    ("spatial", "none", 0.1, "-"): [
        [[1.4991147830278744, 1.7801120473908618], [1.7470318098858506, 0.0]],
        [[2.7670174281200004, 1.7881729269776512], [1.8121352396730803, 1.4182352733880725]],
    ],
    ("idx", "none", 0.1, "w"): [3.339311088430387, 0.4887698642263927, 0.0],
    ("prob", "none", 0.1, "w"): [1.1178392785718012, 1.5670304810662627, 1.4308057388456792],
    ("spatial", "none", 0.1, "w"): [
        [[0.5226636175505923, 3.4240473438498795], [1.8363021279847092, 0.0]],
        [[5.469103287709201, 3.4448102905273137], [0.6072780577424371, 1.3892342927886199]],
    ],
    ("nll", "none", "-"): [1.2, -1.7, 0.0],
    ("nll", "none", "w"): [1.2, -0.85, 0.0],
    ("nll_spatial", "none", "-"): [[[-0.2, 0.6], [-0.0, 0.0]], [[1.5, -0.4], [0.2, 0.9]]],
    ("idx_1d", "mean", 0.0, "-"): 0.34604129490491126,
    ("idx_ignore7", "mean", 0.0, "-"): 3.6602251292176757,
}

REDUCTIONS = ["mean", "sum", "none"]


def _w(tag: str, c: int = 4) -> np.ndarray | None:
    return None if tag == "-" else np.array(W4[:c])


@pytest.mark.parametrize("tag", ["-", "w"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(reduction: str, smoothing: float, tag: str) -> None:
    kw: dict[str, Any] = {"reduction": reduction, "label_smoothing": smoothing}
    idx = L.cross_entropy(tensor(np.array(X)), np.array(TGT), _w(tag), **kw)
    prob = L.cross_entropy(tensor(np.array(X)), tensor(np.array(P)), _w(tag), **kw)
    spatial = L.cross_entropy(tensor(np.array(XS)), np.array(TS), _w(tag, 3), **kw)
    for name, out in (("idx", idx), ("prob", prob), ("spatial", spatial)):
        ref = np.array(CE[(name, reduction, smoothing, tag)])
        assert out.shape == ref.shape
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(reduction: str) -> None:
    x = tensor(np.array(X))
    for tag in ("-", "w"):
        out = L.nll_loss(x, np.array(TGT), _w(tag), reduction=reduction)
        np.testing.assert_allclose(out.numpy(), CE[("nll", reduction, tag)], rtol=1e-12)
    out = L.nll_loss(tensor(np.array(XS)), tensor(np.array(TS)), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), CE[("nll_spatial", reduction, "-")], rtol=1e-12)


def test_cross_entropy_1d_and_custom_ignore_index_match_torch() -> None:
    out = L.cross_entropy(tensor(np.array(X[0])), np.array(2))
    assert out.shape == ()
    np.testing.assert_allclose(out.item(), CE[("idx_1d", "mean", 0.0, "-")], rtol=1e-12)
    none = L.cross_entropy(tensor(np.array(X[0])), np.array(2), reduction="none")
    assert none.shape == ()
    out = L.cross_entropy(tensor(np.array(X)), np.array([1, 7, 2]), ignore_index=7)
    np.testing.assert_allclose(out.item(), CE[("idx_ignore7", "mean", 0.0, "-")], rtol=1e-12)


def test_cross_entropy_all_ignored_mean_is_nan() -> None:
    x = tensor(np.array(X), requires_grad=True)
    t = np.full(3, -100)
    out = L.cross_entropy(x, t)
    assert np.isnan(out.item())
    out.backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    assert L.cross_entropy(x, t, reduction="sum").item() == 0.0
    assert np.isnan(L.nll_loss(x, t).item())
    assert np.isnan(L.cross_entropy(tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64)).item())


CE_GRAD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("weight", {"weight": np.array([0.3, 1.0, 2.0, 0.5])}),
    ("ignore", {"ignore_index": 2}),
    ("smoothing", {"label_smoothing": 0.2}),
    ("all", {"weight": np.array([0.3, 1.0, 2.0, 0.5]), "ignore_index": 2, "label_smoothing": 0.3}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("case", "kw"), CE_GRAD_CASES, ids=[c[0] for c in CE_GRAD_CASES])
def test_cross_entropy_gradcheck_class_indices(
    case: str, kw: dict[str, Any], reduction: str
) -> None:
    rng = np.random.default_rng(3)
    x = tensor(rng.standard_normal((5, 4)), requires_grad=True)
    t = np.array([0, 2, 3, 2, 1])
    assert gradcheck(lambda a: L.cross_entropy(a, t, reduction=reduction, **kw), x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw", [{}, {"weight": np.array([0.5, 2.0, 1.0])}, {"label_smoothing": 0.2}]
)
def test_cross_entropy_gradcheck_spatial(kw: dict[str, Any], reduction: str) -> None:
    rng = np.random.default_rng(4)
    x = tensor(rng.standard_normal((2, 3, 2, 3)), requires_grad=True)
    t = rng.integers(0, 3, (2, 2, 3))
    t[1, 0, 2] = -100
    assert gradcheck(lambda a: L.cross_entropy(a, t, reduction=reduction, **kw), x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw", [{}, {"weight": np.array([0.3, 1.0, 2.0, 0.5])}, {"label_smoothing": 0.25}]
)
def test_cross_entropy_gradcheck_probabilities(kw: dict[str, Any], reduction: str) -> None:
    rng = np.random.default_rng(5)
    x = tensor(rng.standard_normal((3, 4)), requires_grad=True)
    raw = rng.random((3, 4))
    p = tensor(raw / raw.sum(1, keepdims=True), requires_grad=True)
    assert gradcheck(lambda a, b: L.cross_entropy(a, b, reduction=reduction, **kw), [x, p])
    xs = tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    ps = tensor(rng.random((2, 4, 3)), requires_grad=True)
    assert gradcheck(lambda a, b: L.cross_entropy(a, b, reduction=reduction, **kw), [xs, ps])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"weight": np.array([0.3, 1.0, 2.0])}, {"ignore_index": 1}])
def test_nll_loss_gradcheck(kw: dict[str, Any], reduction: str) -> None:
    rng = np.random.default_rng(6)
    x = tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = np.array([0, 1, 2, 1])
    assert gradcheck(lambda a: L.nll_loss(a, t, reduction=reduction, **kw), x)
    xs = tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    ts = np.array([[0, 2], [1, 1]])
    assert gradcheck(lambda a: L.nll_loss(a, ts, reduction=reduction, **kw), xs)


def test_cross_entropy_stable_at_1e4() -> None:
    x = tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=np.float32), requires_grad=True)
    out = L.cross_entropy(x, np.array([1, 0]))
    out.backward()
    assert x.grad is not None
    # torch 2.13: loss 20000.0, grad [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]]
    assert out.item() == 20000.0
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]], atol=1e-6)


def test_cross_entropy_probabilities_stable_at_1e4() -> None:
    x = tensor(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), requires_grad=True)
    p = np.array([[0.2, 0.5, 0.3]], dtype=np.float32)
    out = L.cross_entropy(x, p, label_smoothing=0.1)
    out.backward()
    assert x.grad is not None
    # torch 2.13: 12700.0, grad [[0.7866667, -0.4833333, -0.3033333]]
    np.testing.assert_allclose(out.item(), 12700.0, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [[0.7866667, -0.4833333, -0.3033333]], rtol=1e-5)


def test_nll_loss_stable_at_1e4() -> None:
    x = tensor(np.array([[1e4, -1e4]], dtype=np.float32), requires_grad=True)
    out = L.nll_loss(log_softmax(x, 1), np.array([1]))
    out.backward()
    assert x.grad is not None
    assert out.item() == 20000.0
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("probabilities", [False, True])
def test_cross_entropy_float32_stays_float32(probabilities: bool) -> None:
    x = tensor(np.array(X, dtype=np.float32), requires_grad=True)
    t: Any = np.array(P) if probabilities else np.array(TGT)  # float64 P does not upcast
    out = L.cross_entropy(x, t, np.array(W4))
    assert out.dtype == np.float32
    out.backward()
    assert x.grad is not None
    assert x.grad.dtype == np.float32
    ref = CE[("prob" if probabilities else "idx", "mean", 0.0, "w")]
    np.testing.assert_allclose(out.item(), ref, rtol=1e-6)
    nll = L.nll_loss(tensor(np.array(X, dtype=np.float32)), np.array(TGT), reduction="none")
    assert nll.dtype == np.float32


def test_cross_entropy_is_one_graph_node() -> None:
    x = tensor(np.array(XS), requires_grad=True)
    out = L.cross_entropy(x, np.array(TS), label_smoothing=0.1)
    assert out.grad_fn is not None
    assert out.grad_fn.name() == "CrossEntropyLossBackward"
    ((child, _),) = out.grad_fn.next_functions
    assert child is not None
    assert child.name() == "AccumulateGrad"


def test_cross_entropy_errors() -> None:
    x = tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="cross_entropy: target 4 at position 1 is out of range"):
        L.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="cross_entropy: target -1 at position 0"):
        L.cross_entropy(x, np.array([-1, 0, 1]))
    with pytest.raises(IndexError, match="nll_loss: target 9 at position 2 is out of range"):
        L.nll_loss(x, np.array([0, 1, 9]))
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: target shape \(4,\) does not match input shape \(3, 4\); "
        r"expected target shape \(3,\)",
    ):
        L.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(2, 3\) does not match"):
        L.nll_loss(tensor(np.zeros((2, 3, 2))), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="cross_entropy: class-index targets must be integers"):
        L.cross_entropy(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"cross_entropy: target shape \(3, 5\)"):
        L.cross_entropy(x, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="cross_entropy: input must be float32 or float64"):
        L.cross_entropy(tensor(np.zeros((3, 4), dtype=np.int64)), np.zeros(3, dtype=np.int64))
    with pytest.raises(
        ValueError, match=r"cross_entropy: weight has shape \(3,\), expected \(4,\)"
    ):
        L.cross_entropy(x, np.zeros(3, dtype=np.int64), np.ones(3))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1\.5"):
        L.cross_entropy(x, np.zeros(3, dtype=np.int64), label_smoothing=1.5)
    with pytest.raises(ValueError, match="cross_entropy: 'mean ' is not a valid value"):
        L.cross_entropy(x, np.zeros(3, dtype=np.int64), reduction="mean ")
    with pytest.raises(ValueError, match=r"input must have at least 1 dimension, got shape \(\)"):
        L.cross_entropy(tensor(np.float64(1.0)), np.array(0))
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be in"):
        L.CrossEntropyLoss(label_smoothing=-0.1)


def test_cross_entropy_classes_agree_with_functions() -> None:
    x = tensor(np.array(X))
    t = np.array(TGT)
    w = np.array(W4)
    cases = [
        (L.CrossEntropyLoss(), L.cross_entropy(x, t)),
        (L.CrossEntropyLoss(w, label_smoothing=0.1), L.cross_entropy(x, t, w, label_smoothing=0.1)),
        (L.NLLLoss(w, reduction="sum"), L.nll_loss(x, t, w, reduction="sum")),
    ]
    for module, expected in cases:
        np.testing.assert_array_equal(module(x, t).numpy(), expected.numpy())
    t2 = np.array([1, 3, 0])
    for module, expected in [
        (
            L.CrossEntropyLoss(reduction="none", ignore_index=1),
            L.cross_entropy(x, t2, reduction="none", ignore_index=1),
        ),
        (L.NLLLoss(ignore_index=3), L.nll_loss(x, t2, ignore_index=3)),
    ]:
        np.testing.assert_array_equal(module(x, t2).numpy(), expected.numpy())
    p = np.array(P)
    np.testing.assert_array_equal(L.CrossEntropyLoss()(x, p).numpy(), L.cross_entropy(x, p).numpy())
    assert repr(L.CrossEntropyLoss(label_smoothing=0.1)) == (
        "CrossEntropyLoss(reduction='mean', label_smoothing=0.1)"
    )


def _np_cross_entropy(
    x: np.ndarray, t: np.ndarray, w: np.ndarray | None, eps: float, reduction: str
) -> np.ndarray:
    """PyTorch's documented formula in float64 NumPy (class axis 1, ignore_index -100)."""
    c = x.shape[1]
    x2 = np.moveaxis(x.astype(np.float64), 1, -1).reshape(-1, c)
    t2 = t.reshape(-1)
    w = np.ones(c) if w is None else w
    m = x2.max(1, keepdims=True)
    ls = x2 - m - np.log(np.exp(x2 - m).sum(1, keepdims=True))
    keep = t2 != -100
    ts = np.where(keep, t2, 0)
    nll = -w[ts] * ls[np.arange(len(t2)), ts] * keep
    smooth = -(w * ls).sum(1) * keep
    if reduction == "none":
        return np.asarray(((1 - eps) * nll + eps / c * smooth).reshape(t.shape))
    if reduction == "sum":
        return np.asarray((1 - eps) * nll.sum() + eps / c * smooth.sum())
    denom = (w[ts] * keep).sum()
    return np.asarray(((1 - eps) * nll.sum() + eps / c * smooth.sum()) / denom)


@settings(deadline=None, max_examples=40)
@given(
    data=st.data(),
    n=st.integers(1, 6),
    c=st.integers(1, 5),
    spatial=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
    dtype=st.sampled_from([np.float32, np.float64]),
    reduction=st.sampled_from(REDUCTIONS),
    eps=st.sampled_from([0.0, 0.15]),
    weighted=st.booleans(),
)
def test_cross_entropy_property(
    data: st.DataObject,
    n: int,
    c: int,
    spatial: tuple[int, ...],
    dtype: type,
    reduction: str,
    eps: float,
    weighted: bool,
) -> None:
    shape = (n, c, *spatial)
    x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-30, 30, width=32)))
    t = data.draw(hnp.arrays(np.int64, (n, *spatial), elements=st.integers(0, c - 1)))
    t[(0,) * t.ndim] = -100  # at least one ignored row
    if t.size == 1 and reduction == "mean":
        t[(0,) * t.ndim] = 0
    w = data.draw(hnp.arrays(np.float64, (c,), elements=st.floats(0.1, 2.0))) if weighted else None
    xt = tensor(x, requires_grad=True)
    out = L.cross_entropy(xt, t, w, reduction=reduction, label_smoothing=eps)
    assert out.dtype == dtype
    ref = _np_cross_entropy(x, t, w, eps, reduction)
    rtol, atol = (1e-4, 1e-4) if dtype == np.float32 else (1e-10, 1e-10)
    np.testing.assert_allclose(out.numpy(), ref, rtol=rtol, atol=atol)
    out.backward(np.ones(out.shape, dtype=dtype) if reduction == "none" else None)
    assert xt.grad is not None
    assert xt.grad.dtype == dtype
    assert xt.grad.shape == shape
    assert np.isfinite(xt.grad.numpy()).all()
    # the gradient of every row sums to 0 over the classes (for unit weights)
    if not weighted:
        np.testing.assert_allclose(xt.grad.numpy().sum(1), 0.0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_tensor_targets_take_the_same_path_to_the_same_bits(
    dtype: type[np.floating], reduction: str
) -> None:
    # Tensor logits and int64 Tensor targets skip the option checks' calls (the training
    # step's case); a NumPy target goes through them. Same node, same values, same grads.
    results = []
    for as_tensor in (True, False):
        x = tensor(np.array(X, dtype=dtype), requires_grad=True)
        t = np.array([1, 3, -100])
        out = L.cross_entropy(x, tensor(t) if as_tensor else t, reduction=reduction)
        out.backward()
        assert out.dtype == dtype and out.grad_fn is not None
        assert out.grad_fn.name() == "CrossEntropyLossBackward"
        assert x.grad is not None
        results.append((out.numpy(), x.grad.numpy()))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


def test_cross_entropy_tensor_targets_report_the_same_errors() -> None:
    x = tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="cross_entropy: target 4 at position 1 is out of range"):
        L.cross_entropy(x, tensor(np.array([0, 4, 1])))
    with pytest.raises(ValueError, match=r"cross_entropy: target shape \(4,\) does not match"):
        L.cross_entropy(x, tensor(np.array([0, 1, 2, 3])))
    with pytest.raises(TypeError, match="label_smoothing must be a real number"):
        L.cross_entropy(x, tensor(np.array([0, 1, 2])), label_smoothing=False)
    with pytest.raises(ValueError, match="cross_entropy: 'mean ' is not a valid value"):
        L.cross_entropy(x, tensor(np.array([0, 1, 2])), reduction="mean ")
    x32 = tensor(np.zeros((3, 4), dtype=np.float32))
    out = L.cross_entropy(x32, tensor(np.array([0, 1, 2], dtype=np.int32)))  # general path
    assert out.dtype == np.float32
