"""Every example runs (smoke tests with tiny settings), and the main one reaches its goal."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import gradwise.nn as nn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gradwise_example_{name}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_example_autograd_basics() -> None:
    assert _example("autograd_basics.py").main() == (7.0, 2.0)


def test_example_train_digits_smoke(tmp_path: Path) -> None:
    result = _example("train_digits.py").main(
        ["--epochs", "2", "--hidden", "16", "--out", str(tmp_path), "--quiet"]
    )
    assert len(result.history.train_loss) == 2
    assert result.history.train_loss[1] < result.history.train_loss[0]
    assert result.model_path.is_file()
    assert result.plot_path is not None
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = nn.load(result.model_path)
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert state["0.weight"].shape == (16, 64)


def test_example_train_digits_reaches_97_percent(tmp_path: Path) -> None:
    result = _example("train_digits.py").main(["--out", str(tmp_path), "--quiet", "--no-plot"])
    assert result.test_accuracy >= 0.97


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_example_train_digits_optimizers(tmp_path: Path, optimizer: str) -> None:
    lr = {"sgd": "0.05", "adamw": "0.003", "rmsprop": "0.001", "adagrad": "0.05"}[optimizer]
    result = _example("train_digits.py").main(
        ["--epochs", "3", "--optimizer", optimizer, "--lr", lr, "--out", str(tmp_path), "--quiet"]
    )
    assert result.test_accuracy > 0.5


def test_example_train_digits_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _example("train_digits.py").main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--lr", "--batch-size", "--hidden", "--optimizer", "--seed", "--out"):
        assert flag in text


def test_example_regression_recovers_the_line() -> None:
    w, b, mse = _example("regression.py").main(["--steps", "200"])
    assert w == pytest.approx(2.0, abs=0.05)
    assert b == pytest.approx(1.0, abs=0.05)
    assert mse < 0.01


def test_example_moons(tmp_path: Path) -> None:
    accuracy, path = _example("moons.py").main(["--epochs", "150", "--out", str(tmp_path)])
    assert accuracy > 0.95
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_example_mnist_on_small_idx_files(tmp_path: Path) -> None:
    mnist = _example("mnist.py")
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()

    # two separable "digits": bright top half or bright bottom half of a 6x6 image
    def images(labels: np.ndarray) -> np.ndarray:
        out = rng.integers(0, 60, size=(len(labels), 6, 6)).astype(np.uint8)
        for i, c in enumerate(labels):
            out[i, :3] += 150 if c == 0 else 0
            out[i, 3:] += 150 if c == 1 else 0
        return out

    train_y = rng.integers(0, 2, 200).astype(np.uint8)
    test_y = rng.integers(0, 2, 50).astype(np.uint8)
    mnist.write_idx(data / "train-images-idx3-ubyte.gz", images(train_y))
    mnist.write_idx(data / "train-labels-idx1-ubyte.gz", train_y)
    mnist.write_idx(data / "t10k-images-idx3-ubyte", images(test_y))
    mnist.write_idx(data / "t10k-labels-idx1-ubyte", test_y)
    loaded = mnist.load_mnist(data)
    assert loaded["train_images"].shape == (200, 36)
    assert loaded["train_images"].dtype == np.float32
    np.testing.assert_array_equal(loaded["test_labels"], test_y)
    out = tmp_path / "out"
    args = f"--data {data} --epochs 5 --lr 0.01 --hidden 16 --batch-size 32 --out {out} --quiet"
    acc = mnist.main(args.split())
    assert acc > 0.9
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert (tmp_path / "out" / "training.png").is_file()


def test_example_mnist_rejects_bad_idx(tmp_path: Path) -> None:
    mnist = _example("mnist.py")
    bad = tmp_path / "x-idx1-ubyte"
    bad.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="bad magic"):
        mnist.read_idx(bad)
    bad.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match="expected 18"):
        mnist.read_idx(bad)
    with pytest.raises(FileNotFoundError, match="neither"):
        mnist.find(tmp_path, "train-images-idx3-ubyte")


def test_example_graph_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    example = _example("graph_digits.py")
    result = example.main(["--batch-size", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = result.report
    # Linear, ReLU, Linear, ReLU, Linear, CrossEntropy + 6 parameters
    assert report.node_count == 12 and report.depth == 7
    assert report.op_names["AccumulateGrad"] == 6
    assert report.saved_bytes > 0
    assert "saved for backward" in out and "0.weight" in out
    summary = report.gradient_flow_summary()
    assert summary.missing == [] and summary.nonfinite == []
    dot = result.dot_path.read_text()
    assert dot.startswith('digraph "digits_mlp" {') and dot.count(" -> ") == 12
    if shutil.which("dot") is None:
        assert result.png_path is None and "apt-get install graphviz" in out
    else:
        assert result.png_path is not None
        assert result.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(shutil, "which", lambda name: None)  # as without Graphviz
    again = example.main(["--batch-size", "16", "--out", str(tmp_path / "no_dot")])
    assert again.png_path is None
    assert "brew install graphviz" in capsys.readouterr().out


def test_example_cnn_digits_smoke(tmp_path: Path) -> None:
    result = _example("cnn_digits.py").main(
        ["--epochs", "2", "--channels", "4,8", "--out", str(tmp_path), "--quiet"]
    )
    assert len(result.history.train_loss) == 2
    assert result.history.train_loss[1] < result.history.train_loss[0]
    assert result.plot_path is not None
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = nn.load(result.model_path)
    # PyTorch's keys and weight layout (out_channels, in_channels, kH, kW)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "0.weight": (4, 1, 3, 3),
        "0.bias": (4,),
        "2.weight": (8, 4, 3, 3),
        "2.bias": (8,),
        "7.weight": (10, 128),
        "7.bias": (10,),
    }


def test_example_cnn_digits_reaches_98_percent(tmp_path: Path) -> None:
    result = _example("cnn_digits.py").main(["--out", str(tmp_path), "--quiet", "--no-plot"])
    assert result.test_accuracy >= 0.98
