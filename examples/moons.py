"""A nonlinear 2-D classifier: an MLP separates two interleaved half-moons.

    python examples/moons.py                # writes runs/moons/decision_boundary.png
    python examples/moons.py --epochs 300 --hidden 32

The data is generated here (two noisy half circles, as scikit-learn's make_moons draws
them); the plot shows the learned decision boundary over the points.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.core import Generator


def make_moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on two interleaved half circles with Gaussian noise; labels 0 and 1."""
    rng = Generator(seed)
    n_top = n // 2
    t_top = np.pi * rng.uniform((n_top,), dtype=np.float64)
    t_bottom = np.pi * rng.uniform((n - n_top,), dtype=np.float64)
    top = np.stack([np.cos(t_top), np.sin(t_top)], axis=1)
    bottom = np.stack([1.0 - np.cos(t_bottom), 0.5 - np.sin(t_bottom)], axis=1)
    x = np.concatenate([top, bottom]) + noise * rng.normal((n, 2), dtype=np.float64)
    y = np.concatenate([np.zeros(n_top, np.int64), np.ones(n - n_top, np.int64)])
    return x.astype(np.float32), y


def plot_boundary(model: nn.Module, x: np.ndarray, y: np.ndarray, path: Path) -> Path | None:
    """The model's class-1 probability over a grid, with the points on top, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; skipping the plot")
        return None
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    with ag.no_grad():
        prob = model(ag.tensor(grid)).softmax(axis=1).data[:, 1].reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.6)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=18)
    ax.set_title("gradwise MLP on two moons: decision boundary")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> tuple[float, Path | None]:
    p = argparse.ArgumentParser(description="Classify two half-moons with a gradwise MLP.")
    p.add_argument("--samples", type=int, default=400, help="points to generate")
    p.add_argument("--noise", type=float, default=0.15, help="std of the noise")
    p.add_argument("--epochs", type=int, default=200, help="full-batch Adam steps")
    p.add_argument("--hidden", type=int, default=16, help="width of the two hidden layers")
    p.add_argument("--lr", type=float, default=0.02, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0, help="seed for data and init")
    p.add_argument("--out", type=Path, default=Path("runs/moons"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    args = p.parse_args(argv)

    ag.manual_seed(args.seed)
    x_np, y_np = make_moons(args.samples, args.noise, args.seed)
    x, y = ag.tensor(x_np), ag.tensor(y_np)
    model = nn.MLP([2, args.hidden, args.hidden, 2], activation=nn.Tanh)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = loss.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        optimizer.zero_grad()
        logits = model(x)
        ce = criterion(logits, y)
        ce.backward()
        optimizer.step()
        if epoch % max(1, args.epochs // 5) == 0:
            acc = float((logits.data.argmax(axis=1) == y_np).mean())
            print(f"epoch {epoch:>4}: loss {ce.item():.4f}  accuracy {acc:.3f}")
    with ag.no_grad():
        accuracy = float((model(x).data.argmax(axis=1) == y_np).mean())
    print(f"training accuracy: {accuracy:.2%}")
    path = None
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        path = plot_boundary(model, x_np, y_np, args.out / "decision_boundary.png")
        if path:
            print(f"plot: {path}")
    return accuracy, path


if __name__ == "__main__":
    main()
