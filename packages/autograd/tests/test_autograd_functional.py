"""grad, vjp, hessian, hvp: values, shapes, and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import Tensor

W = np.array([[0.2, -0.4, 0.5], [0.7, 0.1, -0.3]])


def _f(v: Tensor) -> Tensor:
    return ((ag.tensor(W) @ v).tanh() ** 2).sum() + (v**3).sum() * 0.1


# torch.autograd.functional.hessian / hvp of the same function, torch 2.13
TORCH_HESSIAN = [
    [1.0050005828122364, 0.16173781545338559, -0.4135418171091488],
    [0.16173781545338559, -0.48465577646707714, 0.05062407089921536],
    [-0.41354181710914883, 0.05062407089921535, 0.6873068604298739],
]
TORCH_HVP = [1.9129531247572267, -0.18183821457858368, -1.7628435025192888]
X0 = [0.3, -0.7, 1.1]
V0 = [1.0, 0.5, -2.0]


# ---- grad ----------------------------------------------------------------------------------


def test_grad_returns_gradients_and_never_writes_dot_grad() -> None:
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = ag.tensor([0.5, 0.5, 0.5], requires_grad=True)
    gx, gy = ag.grad((x * y).sum(), [x, y])
    assert gx is not None and gy is not None
    np.testing.assert_allclose(gx.numpy(), y.numpy())
    np.testing.assert_allclose(gy.numpy(), x.numpy())
    assert x.grad is None and y.grad is None
    assert not gx.requires_grad


def test_grad_of_a_non_leaf_and_one_tensor_grad_outputs() -> None:
    x = ag.tensor([1.0, -2.0], requires_grad=True)
    h = x * 3.0
    out = h * h
    (gh,) = ag.grad(out, h, ag.tensor([1.0, 10.0]))
    assert gh is not None
    np.testing.assert_allclose(gh.numpy(), [2 * 3.0, 10 * 2 * -6.0])


def test_grad_of_several_outputs_and_a_leaf_reached_through_a_non_leaf_input() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    a, b = h.sum(), (x * 2.0).sum()
    gx, gh = ag.grad([a, b], [x, h])
    assert gx is not None and gh is not None
    np.testing.assert_allclose(gx.numpy(), 2 * x.numpy() + 2.0)
    np.testing.assert_allclose(gh.numpy(), [1.0, 1.0])


def test_grad_one_element_outputs_need_no_grad_outputs_shape_1_included() -> None:
    x = ag.tensor([3.0], requires_grad=True)
    (g,) = ag.grad(x * x, x)
    assert g is not None
    np.testing.assert_allclose(g.numpy(), [6.0])


def test_grad_retain_graph_defaults_to_create_graph() -> None:
    x = ag.tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    ag.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        ag.grad(y, x)
    z = (x * x).sum()
    ag.grad(z, x, retain_graph=True)
    (g,) = ag.grad(z, x)
    assert g is not None


def test_grad_errors() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    unused = ag.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"input 1 .*not used.*allow_unused=True"):
        ag.grad((x * x).sum(), [x, unused])
    gx, gu = ag.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert gx is not None and gu is None
    with pytest.raises(RuntimeError, match="implicitly created only for one-element"):
        ag.grad(x * x, x)
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \(3,\).*\(2,\)"):
        ag.grad(x * x, x, ag.tensor([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        ag.grad(x * x, x, [ag.ones(2), ag.ones(2)])
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        ag.grad((x * x).sum(), ag.tensor([1.0]))
    with pytest.raises(RuntimeError, match="output 0 does not require grad"):
        ag.grad(ag.tensor([1.0]).sum(), x)
    with pytest.raises(TypeError, match="input 0 is a list"):
        ag.grad((x * x).sum(), [[1.0]])  # type: ignore[list-item]


# ---- vjp -----------------------------------------------------------------------------------


def test_vjp_matches_the_jacobian_transposed() -> None:
    a = ag.tensor(np.array([0.5, -1.0, 2.0]))
    b = ag.tensor(np.array([1.5, 0.25, -0.5]))
    out, vjp_fn = ag.vjp(lambda u, w: u * w.exp(), a, b)
    np.testing.assert_allclose(out.numpy(), a.numpy() * np.exp(b.numpy()))
    assert not out.requires_grad
    v = ag.tensor(np.array([1.0, 2.0, 3.0]))
    ga, gb = vjp_fn(v)
    np.testing.assert_allclose(ga.numpy(), v.numpy() * np.exp(b.numpy()))
    np.testing.assert_allclose(gb.numpy(), v.numpy() * a.numpy() * np.exp(b.numpy()))
    ga2, _ = vjp_fn(v)  # callable again
    np.testing.assert_allclose(ga2.numpy(), ga.numpy())
    assert a.grad is None and not a.requires_grad


def test_vjp_unused_primal_gets_zeros() -> None:
    a, b = ag.tensor([1.0, 2.0]), ag.tensor([3.0, 4.0])
    _, vjp_fn = ag.vjp(lambda u, w: u * 2.0, a, b)
    ga, gb = vjp_fn(ag.ones(2))
    np.testing.assert_allclose(ga.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(gb.numpy(), [0.0, 0.0])


def test_vjp_errors() -> None:
    with pytest.raises(TypeError, match="vjp: expected Tensor"):
        ag.vjp(lambda u: u, [1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating"):
        ag.vjp(lambda u: u, ag.tensor([1, 2]))


# ---- hessian, hvp --------------------------------------------------------------------------


def test_hessian_and_hvp_match_torch() -> None:
    x = ag.tensor(np.array(X0))
    h = ag.hessian(_f, x)
    assert h.shape == (3, 3)
    np.testing.assert_allclose(h.numpy(), TORCH_HESSIAN, rtol=1e-10)
    value, hv = ag.hvp(_f, x, ag.tensor(np.array(V0)))
    np.testing.assert_allclose(hv.numpy(), TORCH_HVP, rtol=1e-10)
    np.testing.assert_allclose(value.numpy(), _f(x).numpy())
    np.testing.assert_allclose(hv.numpy(), h.numpy() @ np.array(V0), rtol=1e-12)


def _mlp_loss() -> tuple[Any, Tensor]:
    pytest.importorskip("gradwise.nn")  # not a dependency of gradwise-autograd
    import gradwise.nn as nn

    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    inputs = ag.randn(5, 3, dtype="float64")
    target = ag.randn(5, 1, dtype="float64")
    first, last = model[0], model[2]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    assert first.bias is not None and last.bias is not None
    b1, w2, b2 = first.bias, last.weight, last.bias
    w = first.weight

    def loss(weight: Tensor) -> Tensor:
        h = (inputs @ weight.T + b1).tanh()
        return ((h @ w2.T + b2 - target) ** 2).mean()

    return loss, w.detach()


def test_hessian_of_a_small_mlp_loss_is_symmetric_and_matches_finite_differences() -> None:
    loss, w = _mlp_loss()
    h = ag.hessian(loss, w).numpy()
    assert h.shape == (4, 3, 4, 3)
    flat = h.reshape(12, 12)
    np.testing.assert_allclose(flat, flat.T, atol=1e-12)
    # finite differences of the analytic gradient
    eps = 1e-6
    numeric = np.zeros((12, 12))
    base = w.numpy().reshape(-1)
    for j in range(12):
        cols = []
        for sign in (1.0, -1.0):
            v = base.copy()
            v[j] += sign * eps
            t = ag.tensor(v.reshape(4, 3), requires_grad=True)
            (g,) = ag.grad(loss(t), t)
            assert g is not None
            cols.append(g.numpy().reshape(-1))
        numeric[:, j] = (cols[0] - cols[1]) / (2 * eps)
    np.testing.assert_allclose(flat, numeric, rtol=1e-5, atol=1e-7)
    vec = ag.tensor(np.linspace(-1, 1, 12).reshape(4, 3))
    _, hv = ag.hvp(loss, w, vec)
    np.testing.assert_allclose(hv.numpy().reshape(-1), flat @ vec.numpy().reshape(-1), atol=1e-12)


def test_hessian_of_a_linear_function_is_zero_and_errors() -> None:
    x = ag.tensor([1.0, 2.0])
    np.testing.assert_allclose(ag.hessian(lambda v: (v * 3.0).sum(), x).numpy(), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one-element Tensor"):
        ag.hessian(lambda v: v * 2.0, x)
    with pytest.raises(ValueError, match=r"hvp: v must be a Tensor of x's shape \(2,\)"):
        ag.hvp(lambda v: v.sum(), x, ag.ones(3))


def test_against_torch_when_available() -> None:
    torch = pytest.importorskip("torch")
    x0 = np.array([0.4, -0.2, 0.9])
    tx = torch.tensor(x0, requires_grad=True)
    ty = (torch.softmax(tx, 0) * torch.tanh(tx)).sum() + torch.logsumexp(tx * tx, 0)
    (tg,) = torch.autograd.grad(ty, tx, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    x = ag.tensor(x0, requires_grad=True)
    y = (x.softmax(axis=0) * x.tanh()).sum() + ag.logsumexp(x * x, 0)
    (g,) = ag.grad(y, x, create_graph=True)
    assert g is not None
    (h,) = ag.grad(g.sum(), x)
    assert h is not None
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-10)
