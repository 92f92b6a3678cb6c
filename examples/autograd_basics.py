"""The smallest gradwise program: a graph, its backward, and the gradients.

python examples/autograd_basics.py
"""

from __future__ import annotations

import gradwise.autograd as ag


def main() -> tuple[float, float]:
    x = ag.tensor(2.0, requires_grad=True)
    y = ag.tensor(3.0, requires_grad=True)
    z = x * y + x**2  # z = 10
    z.backward()
    assert x.grad is not None
    assert y.grad is not None
    print(f"z = {z.item()}, dz/dx = {x.grad.item()} (y + 2x), dz/dy = {y.grad.item()} (x)")
    return x.grad.item(), y.grad.item()


if __name__ == "__main__":
    main()
