"""create_graph=True through the regression losses, cross-entropy (class indices and
probabilities), NLL, KL and the binary cross-entropies (gradgradcheck); an op without a
rule raises naming its node."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise.autograd as ag
import gradwise.loss as L
from gradwise.autograd import Tensor
from gradwise.core.random import Generator


def _f64(shape: tuple[int, ...], seed: int) -> Tensor:
    return ag.tensor(Generator(seed).uniform(shape, -2.0, 2.0, np.float64), requires_grad=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "loss",
    [
        L.mse_loss,
        L.l1_loss,
        lambda a, b, reduction: L.huber_loss(a, b, reduction=reduction, delta=0.7),
        lambda a, b, reduction: L.smooth_l1_loss(a, b, reduction=reduction, beta=0.6),
    ],
    ids=["mse", "l1", "huber", "smooth_l1"],
)
def test_regression_losses_second_derivatives(loss: object, reduction: str) -> None:
    x, t = _f64((3, 4), 1), _f64((3, 4), 2)
    fn = loss  # mypy: a callable
    assert callable(fn)
    assert ag.gradgradcheck(lambda a, b: fn(a.tanh() * 2.0, b, reduction=reduction), [x, t])


def test_hessian_of_mse_is_two_over_n_times_identity() -> None:
    t = ag.tensor(np.array([0.5, -1.0, 2.0]))
    h = ag.hessian(lambda v: L.mse_loss(v, t), ag.tensor(np.zeros(3)))
    np.testing.assert_allclose(h.numpy(), np.eye(3) * 2.0 / 3.0)


CE_OPTIONS: list[dict[str, object]] = [
    {},
    {"label_smoothing": 0.2},
    {"weight": ag.tensor(np.array([0.5, 2.0, 1.0]))},
    {"ignore_index": 2},
    {"weight": ag.tensor(np.array([0.5, 2.0, 1.0])), "label_smoothing": 0.1, "ignore_index": 1},
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", CE_OPTIONS, ids=["plain", "smooth", "weight", "ignore", "all"])
def test_cross_entropy_second_derivatives(reduction: str, options: dict[str, object]) -> None:
    x, t = _f64((4, 3), 1), np.array([0, 2, 1, 2])
    fn = L.cross_entropy
    assert ag.gradgradcheck(lambda a: fn(a * a, t, reduction=reduction, **options), [x])  # type: ignore[arg-type]


def test_cross_entropy_second_derivatives_other_layouts() -> None:
    x3, t3 = _f64((2, 3, 4), 2), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    assert ag.gradgradcheck(lambda a: L.cross_entropy(a * a, t3), [x3])
    x1 = _f64((3,), 3)
    assert ag.gradgradcheck(lambda a: L.cross_entropy(a * a, np.array(1)), [x1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_second_derivatives(reduction: str) -> None:
    gen = Generator(5)
    x = ag.tensor(gen.uniform((3, 4), 0.1, 0.9, np.float64), requires_grad=True)
    y = ag.tensor(gen.uniform((3, 4), 0.0, 1.0, np.float64), requires_grad=True)
    w = np.linspace(0.5, 1.5, 4)
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    bce, logits = L.binary_cross_entropy, L.binary_cross_entropy_with_logits
    assert ag.gradgradcheck(lambda a, b: bce(a, b, w, reduction=reduction), [x, y])
    assert ag.gradgradcheck(lambda a, b: logits(a * 2.0, b, reduction=reduction), [x, y])
    assert ag.gradgradcheck(
        lambda a, b: logits(a * 2.0, b, w, pos_weight=pw, reduction=reduction), [x, y]
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_and_kl_div_second_derivatives(reduction: str) -> None:
    x, t = _f64((4, 3), 1), np.array([0, 2, 1, 2])
    w = ag.tensor(np.array([0.5, 2.0, 1.0]))
    y = ag.tensor(Generator(2).uniform((4, 3), 0.1, 1.0, np.float64), requires_grad=True)
    nll, kl = L.nll_loss, L.kl_div
    assert ag.gradgradcheck(
        lambda a: nll((a * a).log_softmax(), t, weight=w, ignore_index=1, reduction=reduction),
        [x],
    )
    assert ag.gradgradcheck(lambda a, b: kl((a * a).log_softmax(), b, reduction=reduction), [x, y])
    assert ag.gradgradcheck(
        lambda a, b: kl((a * a).log_softmax(), b, reduction=reduction, log_target=True), [x, y]
    )


def test_nll_and_kl_div_other_layouts_and_batchmean() -> None:
    x3, t3 = _f64((2, 3, 4), 2), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    assert ag.gradgradcheck(lambda a: L.nll_loss((a * a).log_softmax(axis=1), t3), [x3])
    x = _f64((4, 3), 1)
    y = ag.tensor(Generator(3).uniform((4, 3), 0.1, 1.0, np.float64), requires_grad=True)
    kl = L.kl_div
    assert ag.gradgradcheck(lambda a, b: kl(a.log_softmax(), b, reduction="batchmean"), [x, y])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_soft_target_cross_entropy_double_backward(
    reduction: str, smoothing: float, weighted: bool
) -> None:
    rng = np.random.default_rng(3)
    x = ag.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    raw = rng.random((4, 3))
    p = ag.tensor(raw / raw.sum(axis=1, keepdims=True), requires_grad=True)
    w = np.array([0.5, 1.0, 2.0]) if weighted else None

    def f(a: ag.Tensor, b: ag.Tensor) -> ag.Tensor:
        return L.cross_entropy(a, b, w, reduction=reduction, label_smoothing=smoothing)

    assert ag.gradgradcheck(f, [x, p])


def test_soft_target_cross_entropy_double_backward_spatial() -> None:
    rng = np.random.default_rng(4)
    x = ag.tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    raw = rng.random((2, 3, 2, 2))
    p = ag.tensor(raw / raw.sum(axis=1, keepdims=True))
    assert ag.gradgradcheck(lambda a: L.cross_entropy(a, p, label_smoothing=0.1), [x])


def test_a_fused_loss_without_a_rule_names_itself() -> None:
    from gradwise.autograd.ops.shape import Clone

    x = ag.tensor(np.array([[-0.2, 0.7]]), requires_grad=True)
    saved = Clone.backward_graph
    del Clone.backward_graph
    try:
        with pytest.raises(RuntimeError, match="CloneBackward: double backward"):
            ag.grad(x.clone().sum(), x, create_graph=True)
    finally:
        Clone.backward_graph = saved  # type: ignore[method-assign]
