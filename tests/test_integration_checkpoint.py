"""A run resumed from a checkpoint is bit-identical to the uninterrupted run.

The checkpoint holds the model, optimizer, scheduler, data loader and RNG state; dropout
and shuffling draw random numbers, so every piece has to come back exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.core import get_rng_state, set_rng_state
from gradwise.nn.data import DataLoader, TensorDataset
from gradwise.optim.lr_scheduler import StepLR


def _setup() -> tuple[nn.Module, optim.Optimizer, StepLR, DataLoader]:
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=11)
    return model, optimizer, scheduler, loader


def _epoch(model: nn.Module, optimizer: optim.Optimizer, loader: DataLoader) -> None:
    criterion = loss.CrossEntropyLoss()
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        criterion(model(xb), yb).backward()
        optimizer.step()


def _run(epochs: int, checkpoint: Path | None = None, resume_at: int | None = None) -> nn.Module:
    ag.manual_seed(0)
    model, optimizer, scheduler, loader = _setup()
    for epoch in range(epochs):
        if resume_at is not None and epoch == resume_at:
            assert checkpoint is not None
            ag.manual_seed(12345)  # a fresh process would start from another state
            model, optimizer, scheduler, loader = _setup()
            ckpt = nn.load_checkpoint(checkpoint)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            loader.load_state_dict(ckpt["loader"])
            set_rng_state(ckpt["rng"])
            assert ckpt["epoch"] == epoch
        _epoch(model, optimizer, loader)
        scheduler.step()
        if checkpoint is not None and resume_at is None and epoch == 1:
            nn.save_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "loader": loader.state_dict(),
                    "rng": get_rng_state(),
                    "epoch": epoch + 1,
                },
                checkpoint,
            )
    return model


def test_resumed_training_is_bit_identical(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    straight = _run(5, checkpoint=path)
    resumed = _run(5, checkpoint=path, resume_at=2)
    a, b = straight.state_dict(), resumed.state_dict()
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key].data, b[key].data, err_msg=key)


def test_same_seed_gives_bit_identical_training() -> None:
    one, two = _run(3), _run(3)
    for key, value in one.state_dict().items():
        np.testing.assert_array_equal(value.data, two.state_dict()[key].data, err_msg=key)
