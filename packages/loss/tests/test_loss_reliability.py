# ruff: noqa: E501  (one row per case in the tables below)
"""Reliability of gradwise.loss (issue 7): bad input for every loss, class targets out of
range, empty batches, extreme logits, NaN, and float32 kept with NumPy scalars mixed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradwise import loss
from gradwise.autograd import Tensor


def _x(*shape: int, dtype: Any = np.float32, value: float = 0.5) -> Tensor:
    return Tensor(
        np.full(shape, value, dtype=dtype), requires_grad=dtype in (np.float32, np.float64)
    )


def _i(*values: int) -> Tensor:
    return Tensor(np.array(values, dtype=np.int64))


BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("ce target high", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1, 2, 3)), IndexError, "cross_entropy: target 3"),
    ("ce target neg", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1, 2, -1)), IndexError, "cross_entropy: target -1"),
    ("ce 0 classes", lambda: loss.cross_entropy(_x(2, 0), _i(0, 0)), IndexError, "cross_entropy"),
    ("ce target shape", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1)), ValueError, r"cross_entropy.*\(2,\)"),
    ("ce prob shape", lambda: loss.cross_entropy(_x(4, 3), _x(4, 2)), ValueError, r"cross_entropy.*\(4, 2\)"),
    ("ce str", lambda: loss.cross_entropy(_x(4, 3), "a"), TypeError, "cross_entropy"),  # type: ignore[arg-type]
    ("ce None", lambda: loss.cross_entropy(_x(4, 3), None), TypeError, "cross_entropy"),  # type: ignore[arg-type]
    ("ce dict", lambda: loss.cross_entropy(_x(4, 3), {}), TypeError, "cross_entropy"),  # type: ignore[arg-type]
    ("ce int input", lambda: loss.cross_entropy(_x(4, 3, dtype=np.int64), _i(0, 1, 2, 0)), TypeError, "cross_entropy"),
    ("ce reduction", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1, 2, 0), reduction="avg"), ValueError, "cross_entropy.*avg"),
    ("ce smoothing", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1, 2, 0), label_smoothing=1.5), ValueError, "label_smoothing"),
    ("ce weight shape", lambda: loss.cross_entropy(_x(4, 3), _i(0, 1, 2, 0), weight=np.ones(2)), ValueError, "cross_entropy"),
    ("CE module smoothing", lambda: loss.CrossEntropyLoss(label_smoothing=-1), ValueError, "CrossEntropyLoss"),
    ("nll target", lambda: loss.nll_loss(_x(4, 3), _i(0, 1, 2, 3)), IndexError, "nll_loss: target 3"),
    ("nll shape", lambda: loss.nll_loss(_x(4, 3), _i(0)), ValueError, "nll_loss"),
    ("mse shape", lambda: loss.mse_loss(_x(4, 3), _x(4, 2)), ValueError, r"mse_loss.*\(4, 2\).*\(4, 3\)"),
    ("mse no broadcast", lambda: loss.mse_loss(_x(4, 3), _x(1, 3)), ValueError, "mse_loss"),
    ("mse str", lambda: loss.mse_loss(_x(4, 3), "a"), TypeError, "mse_loss"),  # type: ignore[arg-type]
    ("mse reduction", lambda: loss.mse_loss(_x(2), _x(2), reduction="x"), ValueError, "mse_loss"),
    ("MSE module", lambda: loss.MSELoss(reduction="x"), ValueError, "MSELoss"),
    ("l1 shape", lambda: loss.l1_loss(_x(3), _x(4)), ValueError, "l1_loss"),
    ("huber delta", lambda: loss.huber_loss(_x(3), _x(3), delta=-1), ValueError, "huber_loss"),
    ("smooth_l1 beta", lambda: loss.smooth_l1_loss(_x(3), _x(3), beta=-1), ValueError, "smooth_l1_loss"),
    ("bce range", lambda: loss.binary_cross_entropy(_x(2, value=1.5), _x(2)), ValueError, "binary_cross_entropy"),
    ("bce NaN", lambda: loss.binary_cross_entropy(_x(2, value=np.nan), _x(2)), ValueError, "binary_cross_entropy"),
    ("bce shape", lambda: loss.binary_cross_entropy(_x(2), _x(3)), ValueError, "binary_cross_entropy"),
    ("bcel shape", lambda: loss.binary_cross_entropy_with_logits(_x(4, 3), _x(3)), ValueError, "binary_cross_entropy_with_logits"),
    ("kl reduction", lambda: loss.kl_div(_x(3), _x(3), reduction="x"), ValueError, "kl_div"),
    ("kl shape", lambda: loss.kl_div(_x(3), _x(2)), ValueError, "kl_div"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_table(
    case: str, call: Callable[[], object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_ignore_index_and_all_ignored() -> None:
    x = _x(4, 3)
    out = loss.cross_entropy(x, _i(0, 1, 2, -100))
    assert out.item() == pytest.approx(np.log(3), rel=1e-6)
    with np.errstate(all="raise"):
        nan = loss.cross_entropy(x, _i(-100, -100, -100, -100))  # torch 2.13: nan
    assert np.isnan(nan.item())
    assert loss.cross_entropy(x, _i(-100, -100, -100, -100), reduction="sum").item() == 0.0
    out.backward()
    assert x.grad is not None and (x.grad.numpy()[3] == 0).all()


ALL: list[tuple[str, Callable[[Tensor], Tensor]]] = [
    ("mse", lambda x: loss.mse_loss(x, x.detach() * 0.5)),
    ("l1", lambda x: loss.l1_loss(x, x.detach() * 0.5)),
    ("huber", lambda x: loss.huber_loss(x, x.detach() * 0.5, delta=0.3)),
    ("smooth_l1", lambda x: loss.smooth_l1_loss(x, x.detach() * 0.5)),
    ("ce", lambda x: loss.cross_entropy(x, Tensor(np.zeros(x.shape[0], np.int64)))),
    ("ce smooth", lambda x: loss.cross_entropy(x, Tensor(np.zeros(x.shape[0], np.int64)), label_smoothing=0.1)),
    ("ce probs", lambda x: loss.cross_entropy(x, (x.detach() * 0).softmax(1))),
    ("nll", lambda x: loss.nll_loss(x.log_softmax(1), Tensor(np.zeros(x.shape[0], np.int64)))),
    ("bce", lambda x: loss.binary_cross_entropy(x.sigmoid(), x.detach().sigmoid())),
    ("bcel", lambda x: loss.binary_cross_entropy_with_logits(x, (x.detach() * 0).sigmoid())),
    ("bcel pos_weight", lambda x: loss.binary_cross_entropy_with_logits(x, (x.detach() * 0).sigmoid(), pos_weight=np.array(2.0))),
    ("kl", lambda x: loss.kl_div(x.log_softmax(1), (x.detach() * 0).softmax(1))),
    ("kl batchmean", lambda x: loss.kl_div(x.log_softmax(1), (x.detach() * 0).softmax(1), reduction="batchmean")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fn"), ALL, ids=[a[0] for a in ALL])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_by_every_loss(name: str, fn: Callable[[Tensor], Tensor], dtype: Any) -> None:
    x = Tensor(np.linspace(-2, 2, 12, dtype=dtype).reshape(4, 3), requires_grad=True)
    out = fn(x)
    assert out.dtype == dtype and out.shape == ()
    (out * np.float64(2.0) + np.array(1.0)).backward()
    assert x.grad is not None and x.grad.dtype == dtype
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize(("name", "fn"), ALL, ids=[a[0] for a in ALL])
def test_empty_batch_gives_the_documented_result(name: str, fn: Callable[[Tensor], Tensor]) -> None:
    """torch 2.13: mean over nothing is nan, sum over nothing is 0, no warning."""
    x = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    with np.errstate(all="raise"):
        out = fn(x)
    assert out.dtype == np.float32
    if name == "kl batchmean":
        assert out.item() == 0.0 or np.isnan(out.item())
    else:
        assert np.isnan(out.item())
    out.backward()
    assert x.grad is not None and x.grad.shape == (0, 3)


@pytest.mark.parametrize("big", [1e4, 1e38])
def test_large_logits_are_stable(big: float) -> None:
    x = Tensor(np.array([[big, -big], [-big, big]], np.float32), requires_grad=True)
    out = loss.cross_entropy(x, _i(1, 1))
    assert out.item() == pytest.approx(big, rel=1e-6)  # (2 big + 0) / 2
    out.backward()
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()
    b = Tensor(np.array([big, -big], np.float32), requires_grad=True)
    out2 = loss.binary_cross_entropy_with_logits(b, Tensor(np.array([0.0, 1.0], np.float32)))
    assert out2.item() == pytest.approx(big, rel=1e-6)
    out2.backward()
    assert b.grad is not None and np.isfinite(b.grad.numpy()).all()


def test_bce_clamps_log_at_minus_100() -> None:
    p = Tensor(np.array([0.0, 1.0], np.float32), requires_grad=True)
    out = loss.binary_cross_entropy(p, Tensor(np.array([1.0, 0.0], np.float32)))
    assert out.item() == pytest.approx(100.0)
    out.backward()
    assert p.grad is not None and np.isfinite(p.grad.numpy()).all()


def test_nan_propagates_through_losses() -> None:
    x = Tensor(np.array([[np.nan, 0.0, 1.0]], np.float32), requires_grad=True)
    assert np.isnan(loss.cross_entropy(x, _i(1)).item())
    assert np.isnan(loss.mse_loss(x, Tensor(np.zeros((1, 3), np.float32))).item())
    assert np.isnan(loss.l1_loss(x, Tensor(np.zeros((1, 3), np.float32))).item())
    assert np.isnan(
        loss.binary_cross_entropy_with_logits(x, Tensor(np.zeros((1, 3), np.float32))).item()
    )
    inf = Tensor(np.array([np.inf, 1.0], np.float32))
    assert loss.mse_loss(inf, Tensor(np.zeros(2, np.float32))).item() == np.inf


def test_zero_d_inputs() -> None:
    a = Tensor(np.float32(2.0), requires_grad=True)
    out = loss.mse_loss(a, Tensor(np.float32(1.0)))
    assert out.shape == () and out.item() == 1.0
    out.backward()
    assert a.grad is not None and a.grad.item() == 2.0
    logits = Tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    ce = loss.cross_entropy(logits, Tensor(np.array(2)))  # unbatched (C,) with a 0-d target
    ref = -3.0 + np.log(np.exp([1.0, 2.0, 3.0]).sum())
    assert ce.item() == pytest.approx(ref, rel=1e-6)
