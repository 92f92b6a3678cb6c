"""Train an MLP on MNIST read from IDX files in a folder you give.

    python examples/mnist.py --data ~/datasets/mnist
    python examples/mnist.py --data ~/datasets/mnist --epochs 5 --hidden 512,256

The folder holds the four files of the MNIST distribution, gzipped or not:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally with ``.gz``). Nothing is downloaded.
Writes ``model.safetensors`` and ``training.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.nn.data import DataLoader, TensorDataset

# IDX type codes and the big-endian NumPy dtypes they hold
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped if its name ends in .gz) as a NumPy array in native byte order."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {expected} for shape {shape}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` (uint8) as an IDX file, gzipped if the name ends in .gz (for tests)."""
    data = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, data.ndim]) + b"".join(d.to_bytes(4, "big") for d in data.shape)
    raw = header + data.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def find(folder: Path, stem: str) -> Path:
    """The file ``stem`` or ``stem.gz`` in ``folder``."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: neither {stem} nor {stem}.gz is there")


def load_mnist(folder: Path) -> dict[str, np.ndarray]:
    """Images as float32 rows scaled to [0, 1] and int64 labels, for train and test."""
    out = {}
    for key, stem in FILES.items():
        arr = read_idx(find(folder, stem))
        if key.endswith("images"):
            out[key] = arr.reshape(len(arr), -1).astype(np.float32) / np.float32(255.0)
        else:
            out[key] = arr.astype(np.int64)
    for part in ("train", "test"):
        if len(out[f"{part}_images"]) != len(out[f"{part}_labels"]):
            raise ValueError(f"{folder}: {part} images and labels have different counts")
    return out


def main(argv: Sequence[str] | None = None) -> float:
    p = argparse.ArgumentParser(description="Train a gradwise MLP on MNIST IDX files.")
    p.add_argument("--data", type=Path, required=True, help="folder with the four IDX files")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=128, help="samples per step")
    p.add_argument("--hidden", type=str, default="512,256", help="hidden sizes, comma-separated")
    p.add_argument("--seed", type=int, default=0, help="seed for init and shuffle")
    p.add_argument("--out", type=Path, default=Path("runs/mnist"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from tqdm import tqdm

    start = time.perf_counter()
    ag.manual_seed(args.seed)
    data = load_mnist(args.data)
    n_in = data["train_images"].shape[1]
    n_classes = int(max(data["train_labels"].max(), data["test_labels"].max())) + 1
    hidden = [int(h) for h in args.hidden.split(",") if h]
    model = nn.MLP([n_in, *hidden, max(n_classes, 10)])
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = loss.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(data["train_images"], data["train_labels"]),
        batch_size=args.batch_size,
        shuffle=True,
        seed=args.seed,
    )
    x_test = ag.tensor(data["test_images"])
    losses: list[float] = []
    accs: list[float] = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False, disable=args.quiet)
        for xb, yb in bar:
            optimizer.zero_grad()
            batch_loss = criterion(model(xb), yb)
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(yb)
            seen += len(yb)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        model.eval()
        with ag.no_grad():
            pred = model(x_test).data.argmax(axis=1)
        losses.append(total / seen)
        accs.append(float((pred == data["test_labels"]).mean()))
        if not args.quiet:
            tqdm.write(f"epoch {epoch}: loss {losses[-1]:.4f}  test acc {accs[-1]:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    nn.save(model.state_dict(), args.out / "model.safetensors")
    if not args.no_plot:
        _plot(losses, accs, args.out / "training.png")
    print(f"test accuracy: {accs[-1]:.2%}; wall time {time.perf_counter() - start:.1f} s")
    return accs[-1]


def _plot(losses: list[float], accs: list[float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; skipping the plot")
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(losses) + 1)
    a.plot(epochs, losses, marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    b.plot(epochs, accs, marker="o")
    b.set_xlabel("epoch")
    b.set_ylabel("test accuracy")
    fig.suptitle("gradwise: MLP on MNIST")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
