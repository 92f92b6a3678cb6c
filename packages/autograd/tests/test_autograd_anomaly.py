"""detect_anomaly: names the op and the user's line; clean graphs pass; off by default."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import anomaly


def test_nan_in_backward_raises_naming_the_op_and_the_line() -> None:
    x = ag.tensor([0.0, 4.0], requires_grad=True)
    with ag.detect_anomaly():
        y = x.sqrt()  # the line to be named
        loss = (y * 0.0 + y).sum()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    msg = str(info.value)
    assert "SqrtBackward produced Inf" in msg
    assert "test_autograd_anomaly.py:" in msg
    lineno = int(msg.split("test_autograd_anomaly.py:")[1].split()[0])
    src = Path(__file__).read_text().splitlines()[lineno - 1]
    assert "x.sqrt()" in src


def test_nan_produced_by_log_at_zero() -> None:
    x = ag.tensor([2.0, 1.0], requires_grad=True)
    with ag.detect_anomaly():
        y = (x * 0.0).log().exp()  # exp's gradient is 0, then log's is 0 / 0 = NaN
        with pytest.raises(RuntimeError, match=r"LogBackward produced NaN.*test_autograd_anomaly"):
            y.sum().backward()


def test_clean_graph_passes_with_the_same_gradients() -> None:
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with ag.detect_anomaly():
        (x.exp() * x).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))


def test_off_by_default_and_outside_the_context() -> None:
    assert not ag.is_anomaly_enabled()
    x = ag.tensor([0.0], requires_grad=True)
    y = x.sqrt()
    with np.errstate(divide="ignore"):
        y.backward()  # no check: the Inf just lands in .grad
    assert x.grad is not None and np.isinf(x.grad.numpy()).all()
    assert "outside detect_anomaly" in anomaly.creation_site(y.grad_fn)  # type: ignore[arg-type]


def test_decorator_and_nesting_restore_the_flag() -> None:
    @ag.detect_anomaly()
    def inside() -> bool:
        return ag.is_anomaly_enabled()

    assert inside() and not ag.is_anomaly_enabled()
    with ag.detect_anomaly():
        with ag.detect_anomaly():
            pass
        assert ag.is_anomaly_enabled()
    assert not ag.is_anomaly_enabled()


def test_anomaly_mode_is_per_thread() -> None:
    seen: list[bool] = []
    with ag.detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(ag.is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [False]


def test_nan_in_a_double_backward_is_caught() -> None:
    x = ag.tensor([0.0], dtype="float64", requires_grad=True)
    with ag.detect_anomaly():
        y = x.sqrt() * 1.0
        with pytest.raises(RuntimeError, match="produced Inf"):
            ag.grad(y.sum(), x, create_graph=True)
