"""Inspect the autograd graph of the digits MLP: summary, memory report, gradient flow, DOT/PNG.

    python examples/graph_digits.py                 # one batch of 64, writes runs/graph/
    python examples/graph_digits.py --batch-size 256 --out /tmp/graph

Builds ``MLP([64, 128, 64, 10])`` with a cross-entropy loss on one batch of
``examples/data/digits.npz``, then prints what ``gradwise.autograd.trace_graph`` sees:
node count, depth, ops, the bytes each node keeps for backward, and after
``backward()`` each parameter's gradient norm. Writes ``graph.dot`` and, when
Graphviz's ``dot`` is on PATH, renders ``graph.png``; otherwise it says how to get it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn

DATA = Path(__file__).resolve().parent / "data" / "digits.npz"

INSTALL_GRAPHVIZ = (
    "Graphviz's `dot` was not found, so graph.png was not rendered. Install Graphviz:\n"
    "  Debian/Ubuntu: sudo apt-get install graphviz\n"
    "  macOS:         brew install graphviz\n"
    "  conda:         conda install -c conda-forge graphviz\n"
    "then run: dot -Tpng {dot} -o {png}"
)


@dataclass
class Result:
    """What a run produced."""

    report: ag.GraphReport
    dot_path: Path
    png_path: Path | None
    loss: float


def load_batch(batch_size: int, path: Path = DATA) -> tuple[ag.Tensor, ag.Tensor]:
    """The first ``batch_size`` images as float32 rows scaled to [0, 1], and their labels."""
    with np.load(path) as f:
        images, labels = f["images"], f["labels"]
    x = images[:batch_size].reshape(-1, 64).astype(np.float32) / np.float32(16.0)
    return ag.tensor(x), ag.tensor(labels[:batch_size].astype(np.int64))


def render(dot_path: Path, png_path: Path) -> Path | None:
    """Render the DOT file with Graphviz when ``dot`` is installed; else print how to get it."""
    dot = shutil.which("dot")
    if dot is None:
        print(INSTALL_GRAPHVIZ.format(dot=dot_path, png=png_path))
        return None
    subprocess.run([dot, "-Tpng", str(dot_path), "-o", str(png_path)], check=True, timeout=120)
    print(f"rendered {png_path}")
    return png_path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=64, help="images in the batch")
    p.add_argument("--seed", type=int, default=0, help="seed for the initialisation")
    p.add_argument("--out", type=Path, default=Path("runs/graph"), help="output folder")
    p.add_argument("--no-render", action="store_true", help="write graph.dot only")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    ag.manual_seed(args.seed)
    x, y = load_batch(args.batch_size)
    model = nn.MLP([64, 128, 64, 10])
    criterion = loss.CrossEntropyLoss()
    out = criterion(model(x), y)
    params = dict(model.named_parameters())

    report = ag.trace_graph(out, names=params)
    print(report.summary())
    print()
    print(report.memory_report(top=8))
    print()

    out.backward()
    print("gradient flow after backward():")
    print(report.gradient_flow_summary())
    print()

    args.out.mkdir(parents=True, exist_ok=True)
    dot_path = args.out / "graph.dot"
    dot_path.write_text(report.to_dot("digits_mlp"))
    print(f"wrote {dot_path} ({report.node_count} nodes)")
    png_path = None if args.no_render else render(dot_path, args.out / "graph.png")
    return Result(report, dot_path, png_path, float(out.item()))


if __name__ == "__main__":
    main()
