"""The leak sentinel: warns when live graph nodes keep growing, stays silent otherwise."""

from __future__ import annotations

import gc
import itertools
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise.autograd import GraphLeakWarning, LeakSentinel, Tensor, leak_sentinel
from gradwise.autograd.leak import live_graph_nodes


@pytest.fixture(autouse=True)
def _no_collection_midway() -> Iterator[None]:
    """Other tests' cyclic garbage (tracebacks holding graphs) freed by a collection in
    the middle of a test would change the node counts; collect it first, then hold off."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _model() -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(0)
    w = ag.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    x = ag.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    return w, x


class _SGD:
    """A stand-in optimizer (the autograd package does not depend on gradwise.optim)."""

    def __init__(self, params: list[Tensor], lr: float) -> None:
        self.params = params
        self.lr = lr
        self.steps = 0

    def step(self) -> str:
        with ag.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.data -= self.lr * p.grad.data
                    p.grad = None
        self.steps += 1
        return "stepped"


def test_live_graph_nodes_counts_op_nodes_only() -> None:
    w, x = _model()
    base = live_graph_nodes()
    y = (x @ w).relu().sum()  # MatMul, ReLU, Sum (the AccumulateGrad is not counted)
    assert live_graph_nodes() - base == 3
    del y
    assert live_graph_nodes() == base


def test_total_loss_tensor_accumulation_warns_and_names_it() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=4)

    def train() -> None:
        total_loss: Tensor | float = 0.0
        for _ in range(6):
            loss = (x @ w).relu().sum()
            loss.backward()
            # the classic mistake (written out: `+=` on a 0-d loss is refused today, see README)
            total_loss = total_loss + loss
            sentinel.step()

    with pytest.warns(GraphLeakWarning) as record:
        train()
    assert len(record) == 1 and sentinel.warnings == 1
    msg = str(record[0].message)
    assert "grew at each of the last 4 steps" in msg
    assert "`total_loss`" in msg
    assert "total_loss += loss.item()" in msg and "loss.detach()" in msg
    assert record[0].filename == __file__  # points at the user's line
    counts = sentinel.counts
    assert all(b > a for a, b in itertools.pairwise(counts))


def test_list_of_losses_warns_and_names_the_list() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=3)

    def train() -> None:
        losses = []
        for _ in range(5):
            loss = (x @ w).sum()
            loss.backward()
            losses.append(loss)
            sentinel.step()

    with pytest.warns(GraphLeakWarning, match="`losses`, a list of .* tensors with graphs"):
        train()


def test_correct_loop_is_silent() -> None:
    w, x = _model()
    opt = _SGD([w], lr=0.01)
    sentinel = LeakSentinel(patience=3)
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            loss = (x @ w).relu().sum()
            loss.backward()
            opt.step()
            total += loss.item()
            sentinel.step()
    assert sentinel.warnings == 0
    assert len(set(sentinel.counts)) == 1  # one graph alive at each step


def test_detached_accumulation_is_silent() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=2)
    total = ag.zeros(())
    for _ in range(10):
        loss = (x @ w).sum()
        loss.backward()
        total = total + loss.detach()
        sentinel.step()
    assert sentinel.warnings == 0
    assert total.grad_fn is None


def test_threshold_and_every() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=3, threshold=10_000)
    keep = []
    for _ in range(6):
        keep.append((x @ w).sum())
        sentinel.step()
    assert sentinel.warnings == 0  # grew, but by less than the threshold
    sparse = LeakSentinel(every=3)
    results = [sparse.step() for _ in range(7)]
    assert [r is None for r in results] == [False, True, True, False, True, True, False]
    assert len(sparse.counts) == 3


def test_warn_again_after_another_streak() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=2, warn_once=False)
    keep = []

    def train() -> None:
        for _ in range(7):
            keep.append((x @ w).sum())
            sentinel.step()

    with pytest.warns(GraphLeakWarning) as record:
        train()
    assert len(record) == 3 == sentinel.warnings


def test_context_manager_wraps_the_optimizer_step() -> None:
    w, x = _model()
    opt = _SGD([w], lr=0.01)

    def train() -> LeakSentinel:
        total: Tensor | float = 0.0
        with leak_sentinel(opt, patience=3) as s:
            for _ in range(5):
                loss = (x @ w).sum()
                loss.backward()
                total = total + loss
                assert opt.step() == "stepped"
        return s

    with pytest.warns(GraphLeakWarning, match="`total`"):
        s = train()
    assert len(s.counts) == 5
    assert "step" not in vars(opt)  # restored
    assert opt.steps == 5
    with leak_sentinel() as plain:
        plain.step()
    assert len(plain.counts) == 1


def test_fallback_message_without_a_named_holder() -> None:
    w, x = _model()
    sentinel = LeakSentinel(patience=2)
    holder: dict[str, object] = {}

    def train_step() -> None:
        loss = (x @ w).sum()
        prev = holder.get("t")
        holder["t"] = loss if prev is None else prev + loss

    def train() -> None:
        for _ in range(4):
            train_step()
            sentinel.step()

    with pytest.warns(GraphLeakWarning, match="a tensor that holds a graph is kept"):
        train()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="LeakSentinel: patience must be at least 1, got 0"):
        LeakSentinel(patience=0)
    with pytest.raises(ValueError, match="LeakSentinel: every must be at least 1, got 0"):
        LeakSentinel(every=0)
    with pytest.raises(ValueError, match="LeakSentinel: threshold must be at least 0, got -1"):
        LeakSentinel(threshold=-1)
