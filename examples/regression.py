"""Fit y = 2x + 1 with one Linear layer and SGD: the smallest training loop.

python examples/regression.py
python examples/regression.py --steps 500 --lr 0.05
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gradwise.autograd as ag
from gradwise import loss, nn, optim


def main(argv: Sequence[str] | None = None) -> tuple[float, float, float]:
    p = argparse.ArgumentParser(description="Fit y = 2x + 1 with gradwise.")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    p.add_argument("--noise", type=float, default=0.05, help="std of the noise added to y")
    p.add_argument("--seed", type=int, default=0, help="seed for data and init")
    args = p.parse_args(argv)

    ag.manual_seed(args.seed)
    x = ag.rand(256, 1) * 4.0 - 2.0  # x in [-2, 2)
    y = 2.0 * x + 1.0 + args.noise * ag.randn(256, 1)

    model = nn.Linear(1, 1)
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    criterion = loss.MSELoss()
    for step in range(1, args.steps + 1):
        optimizer.zero_grad()
        mse = criterion(model(x), y)
        mse.backward()
        optimizer.step()
        if step % max(1, args.steps // 5) == 0:
            print(f"step {step:>4}: mse {mse.item():.5f}")

    assert model.bias is not None
    w, b = model.weight.item(), model.bias.item()
    final = criterion(model(x), y).item()
    print(f"learned y = {w:.3f} x + {b:.3f}  (true: y = 2 x + 1), mse {final:.5f}")
    return w, b, final


if __name__ == "__main__":
    main()
