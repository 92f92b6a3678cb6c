"""Integration: the namespace packages install side by side and work together."""

from __future__ import annotations

import importlib

import numpy as np

import gradwise.autograd as ag
from gradwise.core import ops


def test_every_package_imports_from_the_namespace() -> None:
    for name in ("core", "autograd", "nn", "loss", "optim"):
        module = importlib.import_module(f"gradwise.{name}")
        assert module.__name__ == f"gradwise.{name}"
    from gradwise import loss, nn, optim  # the form users write

    assert nn.__version__ == loss.__version__ == optim.__version__ == "0.1.0"


def test_autograd_runs_core_kernels_and_fused_optimizer_updates() -> None:
    ag.manual_seed(0)
    w = ag.randn(4, 3, requires_grad=True)
    x = ag.randn(8, 4)
    target = np.arange(8) % 3
    logp = (x @ w).log_softmax(axis=1)
    loss = -logp[np.arange(8), target].mean()
    loss.backward()
    assert w.grad is not None
    before = w.numpy().copy()
    m, v = np.zeros_like(before), np.zeros_like(before)
    with ag.no_grad():
        ops.adam_(w.numpy(), w.grad.numpy(), m, v, step=1, lr=0.1)
    assert not np.allclose(before, w.numpy())
    # the first Adam step moves every weight by about lr
    np.testing.assert_allclose(np.abs(before - w.numpy()), 0.1, rtol=1e-3)


def test_examples_run() -> None:
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    namespace = runpy.run_path(str(root / "examples" / "autograd_basics.py"))
    assert namespace["main"]() == (7.0, 2.0)
