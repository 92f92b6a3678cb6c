"""Train a small CNN on the bundled handwritten digits (1,797 images of 8x8 pixels).

    python examples/cnn_digits.py                    # conv 1->16, conv 16->32, pool, linear
    python examples/cnn_digits.py --epochs 5 --lr 3e-3
    python examples/cnn_digits.py --help

The same seeded 80/20 split of ``examples/data/digits.npz`` as ``train_digits.py``; pixels
standardised with the training set's mean and standard deviation; two 3x3 convolutions
(padding 1) with ReLU, a 2x2 max pool, dropout and a linear head; Adam with a cosine
schedule; a progress bar per epoch, the final test accuracy and wall time. Writes the
model as ``model.safetensors`` (PyTorch's key names and weight layout) and a
loss/accuracy plot as ``training.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.core import Generator
from gradwise.nn.data import DataLoader, TensorDataset
from gradwise.optim.lr_scheduler import CosineAnnealingLR

DATA = Path(__file__).resolve().parent / "data" / "digits.npz"


@dataclass
class History:
    """Per-epoch training loss and accuracies."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


@dataclass
class Result:
    """What a run produced."""

    test_accuracy: float
    seconds: float
    history: History
    model_path: Path
    plot_path: Path | None


def load_images(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 ``(N, 1, 8, 8)`` scaled to [0, 1], and int64 labels."""
    with np.load(path) as f:
        images, labels = f["images"], f["labels"]
    x = images.reshape(len(images), 1, 8, 8).astype(np.float32) / np.float32(16.0)
    return x, labels.astype(np.int64)


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded random train/test split (the MLP example's split)."""
    perm = Generator(seed).permutation(n)
    n_test = round(n * test_fraction)
    return perm[n_test:], perm[:n_test]


def build_model(channels: tuple[int, int] = (16, 32), dropout: float = 0.25) -> nn.Sequential:
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> maxpool 2 -> flatten -> dropout -> linear."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(c2 * 4 * 4, 10),
    )


def accuracy(model: nn.Module, x: ag.Tensor, y: np.ndarray) -> float:
    """Share of images whose largest logit is the label."""
    with ag.no_grad():
        logits = model(x)
    return float((logits.data.argmax(axis=1) == y).mean())


def plot(history: History, path: Path) -> Path | None:
    """Loss and accuracy per epoch as a PNG (skipped when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; skipping the plot")
        return None
    epochs = np.arange(1, len(history.train_loss) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history.train_loss, marker="o", markersize=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(epochs, history.train_acc, label="train", marker="o", markersize=3)
    ax_acc.plot(epochs, history.test_acc, label="test", marker="o", markersize=3)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    fig.suptitle("gradwise: CNN on the digits data set")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15, help="passes over the training set")
    p.add_argument("--lr", type=float, default=3e-3, help="initial learning rate (Adam)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per step")
    p.add_argument("--channels", type=str, default="16,32", help="channels of the two convolutions")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, init and shuffle")
    p.add_argument("--out", type=Path, default=Path("runs/cnn_digits"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    from tqdm import tqdm

    start = time.perf_counter()
    ag.manual_seed(args.seed)
    x, y = load_images()
    train_idx, test_idx = split(len(x), 0.2, args.seed)
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = ((x - mean) / std).astype(np.float32)
    x_train, y_train = ag.tensor(x[train_idx]), y[train_idx]
    x_test, y_test = ag.tensor(x[test_idx]), y[test_idx]

    c1, c2 = (int(c) for c in args.channels.split(","))
    model = build_model((c1, c2))
    optimizer = optim.Adam(list(model.parameters()), lr=args.lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(1, args.epochs))
    criterion = loss.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True, seed=args.seed
    )

    history = History()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total, correct, seen = 0.0, 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch:>3}/{args.epochs}", leave=False, disable=args.quiet)
        for xb, yb in bar:
            logits = model(xb)
            batch_loss = criterion(logits, yb)
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            n = len(yb)
            total += batch_loss.item() * n
            correct += int((logits.data.argmax(axis=1) == yb.data).sum())
            seen += n
            bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
        scheduler.step()
        model.eval()
        history.train_loss.append(total / seen)
        history.train_acc.append(correct / seen)
        history.test_acc.append(accuracy(model, x_test, y_test))
        if not args.quiet:
            tqdm.write(
                f"epoch {epoch:>3}: loss {history.train_loss[-1]:.4f}  "
                f"train acc {history.train_acc[-1]:.3f}  test acc {history.test_acc[-1]:.3f}"
            )

    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.safetensors"
    nn.save(model.state_dict(), model_path)
    plot_path = None if args.no_plot else plot(history, args.out / "training.png")
    test_acc = history.test_acc[-1] if history.test_acc else accuracy(model, x_test, y_test)
    print(f"test accuracy: {test_acc:.2%} ({len(test_idx)} images)")
    print(f"wall time: {seconds:.1f} s for {args.epochs} epochs (including kernel start-up)")
    print(f"model: {model_path}" + (f"\nplot: {plot_path}" if plot_path else ""))
    return Result(test_acc, seconds, history, model_path, plot_path)


if __name__ == "__main__":
    main()
