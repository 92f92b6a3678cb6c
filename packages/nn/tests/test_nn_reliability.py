"""Reliability of gradwise.nn (issue 7): bad input for every public name, nn.init as an
in-place write caught at backward, float32 through every module, graphs freed without the
garbage collector, atomic saves under a full disk or a file-size limit, and a loader that
rejects hostile files with a ValueError naming the path.
"""

from __future__ import annotations

import errno
import gc
import importlib.util
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradwise.autograd as ag
from gradwise import nn
from gradwise.autograd import Tensor

ROOT = Path(__file__).resolve().parents[3]


def _x(*shape: int, dtype: Any = np.float32) -> Tensor:
    return Tensor(np.ones(shape, dtype=dtype))


def _lin() -> nn.Linear:
    return nn.Linear(2, 2)


BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("Linear in", lambda: nn.Linear(3, 2)(_x(4, 5)), ValueError, r"Linear.*\(4, 5\)"),
    ("Linear 0d", lambda: nn.Linear(3, 2)(_x()), ValueError, "Linear"),
    ("Linear neg", lambda: nn.Linear(-1, 2), ValueError, "Linear"),
    ("Linear str", lambda: nn.Linear("a", 2), TypeError, "Linear"),  # type: ignore[arg-type]
    ("Linear int x", lambda: nn.Linear(3, 2)(_x(4, 3, dtype=np.int64)), TypeError, "Linear"),
    ("Linear ndarray", lambda: nn.Linear(3, 2)(np.ones((4, 3))), TypeError, "Linear"),  # type: ignore[arg-type]
    ("Embedding oob", lambda: nn.Embedding(5, 2)(Tensor(np.array([5]))), IndexError, "Embedding"),
    ("Embedding neg", lambda: nn.Embedding(5, 2)(Tensor(np.array([-1]))), IndexError, "Embedding"),
    ("Embedding float", lambda: nn.Embedding(5, 2)(_x(2)), TypeError, "Embedding"),
    ("LayerNorm", lambda: nn.LayerNorm(4)(_x(4, 3)), ValueError, r"LayerNorm.*\(4, 3\)"),
    ("BatchNorm C", lambda: nn.BatchNorm1d(4)(_x(4, 3)), ValueError, "BatchNorm1d"),
    ("BatchNorm 1d", lambda: nn.BatchNorm1d(3)(_x(3)), ValueError, "BatchNorm1d"),
    ("BatchNorm N=1", lambda: nn.BatchNorm1d(3)(_x(1, 3)), ValueError, "BatchNorm1d"),
    ("BatchNorm N=0", lambda: nn.BatchNorm1d(3)(_x(0, 3)), ValueError, "BatchNorm1d"),
    ("Dropout p", lambda: nn.Dropout(2.0), ValueError, "Dropout"),
    ("Softmax axis", lambda: nn.Softmax(5)(_x(2, 3)), ValueError, "softmax"),
    ("LogSoftmax axis", lambda: nn.LogSoftmax(2)(_x(2, 3)), ValueError, "log_softmax"),
    ("Flatten", lambda: nn.Flatten(3)(_x(2, 3)), ValueError, "flatten"),
    ("MLP one size", lambda: nn.MLP([3]), ValueError, "MLP"),
    ("MLP neg", lambda: nn.MLP([3, -2]), ValueError, "Linear"),
    ("init int", lambda: nn.init.normal_(_x(3, dtype=np.int64)), TypeError, "normal_"),
    ("init 1-D fan", lambda: nn.init.xavier_uniform_(_x(3)), ValueError, "xavier_uniform_"),
    ("init 1-D kaiming", lambda: nn.init.kaiming_normal_(_x(3)), ValueError, "kaiming_normal_"),
    ("init str", lambda: nn.init.zeros_("a"), TypeError, "zeros_|constant_"),  # type: ignore[arg-type]
    ("init mode", lambda: nn.init.kaiming_uniform_(_x(3, 3), mode="x"), ValueError, "kaiming"),
    ("init a>b", lambda: nn.init.uniform_(_x(3, 3), 1, 0), ValueError, "uniform_"),
    ("init std<0", lambda: nn.init.normal_(_x(3, 3), 0, -1), ValueError, "normal_"),
    ("gain", lambda: nn.init.calculate_gain("nope"), ValueError, "nope"),
    ("clip str", lambda: nn.utils.clip_grad_norm_("ab", 1.0), TypeError, "clip_grad_norm_"),  # type: ignore[arg-type]
    (
        "TensorDataset len",
        lambda: nn.data.TensorDataset(_x(3, 2), _x(4)),
        ValueError,
        "TensorDataset",
    ),
    ("TensorDataset 0d", lambda: nn.data.TensorDataset(_x()), ValueError, "TensorDataset"),
    (
        "DataLoader 0",
        lambda: nn.data.DataLoader(nn.data.TensorDataset(_x(3, 2)), batch_size=0),
        ValueError,
        "DataLoader",
    ),
    (
        "DataLoader str",
        lambda: nn.data.DataLoader(nn.data.TensorDataset(_x(3, 2)), batch_size="a"),  # type: ignore[arg-type]
        TypeError,
        "DataLoader",
    ),
    (
        "load_state_dict shape",
        lambda: _lin().load_state_dict({"weight": _x(3, 3), "bias": _x(2)}),
        ValueError,
        r"weight.*\(3, 3\).*\(2, 2\)",
    ),
    (
        "load_state_dict shape non-strict",
        lambda: _lin().load_state_dict({"weight": _x(3, 3)}, strict=False),
        ValueError,
        "weight",
    ),
    (
        "load_state_dict str",
        lambda: _lin().load_state_dict({"weight": "a", "bias": _x(2)}),  # type: ignore[dict-item]
        TypeError,
        "load_state_dict",
    ),
    ("load_state_dict None", lambda: _lin().load_state_dict(None), TypeError, "load_state_dict"),  # type: ignore[arg-type]
    ("to str", lambda: _lin().to("foo"), TypeError, "dtype"),
    ("to int", lambda: _lin().to("int64"), TypeError, "to"),
    ("save non-str key", lambda: nn.save({1: _x(2)}, "/tmp/never.st"), TypeError, "save"),  # type: ignore[dict-item]
    ("save object", lambda: nn.save({"a": object()}, "/tmp/never.st"), TypeError, "save"),  # type: ignore[dict-item]
    ("save dict", lambda: nn.save([1], "/tmp/never.st"), TypeError, "save"),  # type: ignore[arg-type]
    (
        "save object array",
        lambda: nn.save({"a": np.array([None])}, "/tmp/never.st"),
        TypeError,
        "save",
    ),
    ("save reserved", lambda: nn.save({"__metadata__": _x(1)}, "/tmp/n.st"), ValueError, "save"),
]


def test_statedicterror_is_a_value_error() -> None:
    assert issubclass(nn.StateDictError, ValueError) or issubclass(nn.StateDictError, RuntimeError)


@pytest.mark.parametrize(("case", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_table(
    case: str, call: Callable[[], object], exc: type[Exception], match: str
) -> None:
    if case.startswith("load_state_dict shape"):
        exc = nn.StateDictError  # PyTorch raises RuntimeError; ours names key and shapes
    with pytest.raises(exc, match=match):
        call()
    assert not Path("/tmp/never.st").exists()


def test_failed_load_state_dict_installs_nothing() -> None:
    m = nn.Linear(2, 2)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    with pytest.raises(nn.StateDictError):
        m.load_state_dict({"weight": _x(2, 2) * 5, "bias": _x(3)})
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_empty_batches_and_zero_features() -> None:
    for layer, x in [
        (nn.Linear(3, 2), _x(0, 3)),
        (nn.Linear(0, 2), _x(4, 0)),
        (nn.LayerNorm(3), _x(0, 3)),
        (nn.Embedding(5, 2), Tensor(np.zeros(0, np.int64))),
        (nn.MLP([3, 4, 2]), _x(0, 3)),
        (nn.ReLU(), _x(0)),
        (nn.Softmax(1), _x(0, 3)),
    ]:
        if x.dtype.kind == "f":
            x.requires_grad_()
        y = layer(x)
        assert y.dtype == np.float32
        y.sum().backward()
    assert nn.Linear(0, 2)(_x(4, 0)).numpy().shape == (4, 2)


# ---------------------------------------------------------------------------------------
# in-place: nn.init between forward and backward


@pytest.mark.parametrize(
    "init",
    [
        nn.init.uniform_,
        nn.init.normal_,
        nn.init.zeros_,
        nn.init.ones_,
        nn.init.xavier_uniform_,
        nn.init.xavier_normal_,
        nn.init.kaiming_uniform_,
        nn.init.kaiming_normal_,
        lambda t: nn.init.constant_(t, 0.5),
    ],
)
def test_init_between_forward_and_backward_is_caught(init: Callable[[Tensor], Tensor]) -> None:
    m = nn.Linear(3, 2)
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    y = m(x).sum()
    v = m.weight.version_counter().value
    assert init(m.weight) is m.weight
    assert m.weight.version_counter().value == v + 1
    with pytest.raises(RuntimeError, match=rf"Backward.*version is now {v + 1}, expected {v}"):
        y.backward()


def test_clip_grad_norm_handles_nan_and_inf() -> None:
    p = nn.Parameter(Tensor(np.ones(3, np.float32)))
    p.grad = Tensor(np.array([np.inf, 1.0, 1.0], np.float32))
    norm = nn.utils.clip_grad_norm_([p], 1.0)
    assert norm.item() == np.inf and norm.dtype == np.float32
    p.grad = Tensor(np.array([np.nan, 1.0, 1.0], np.float32))
    assert np.isnan(nn.utils.clip_grad_norm_([p], 1.0).item())


# ---------------------------------------------------------------------------------------
# dtypes: float32 stays float32 through every module (and float64 after .to)


def _modules() -> list[tuple[nn.Module, Tensor]]:
    x = Tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6))
    return [
        (nn.Linear(6, 3), x),
        (nn.MLP([6, 5, 2], dropout=0.5), x),
        (nn.Sequential(nn.Linear(6, 4), nn.GELU(), nn.Linear(4, 2)), x),
        (nn.LayerNorm(6), x),
        (nn.BatchNorm1d(6), x),
        (nn.BatchNorm1d(2), x.reshape(2, 2, 6)),
        (nn.Embedding(10, 3), Tensor(np.array([[1, 2], [3, 9]]))),
        (nn.Dropout(0.3), x),
        (nn.Flatten(), x.reshape(4, 2, 3)),
        *((cls(), x) for cls in (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.Softplus)),
        (nn.GELU(approximate="tanh"), x),
        (nn.LeakyReLU(0.2), x),
        (nn.Softmax(1), x),
        (nn.LogSoftmax(1), x),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_through_every_module(dtype: Any) -> None:
    for m, x in _modules():
        m.to(dtype)
        if x.dtype.kind == "f":
            x = Tensor(x.numpy().astype(dtype), requires_grad=True)
        for mode in (m.train, m.eval):
            mode()
            y = m(x)
            assert y.dtype == dtype, type(m).__name__
            (y * np.float64(0.5) + np.array(1.0)).sum().backward()
        for name, p in m.named_parameters():
            assert p.dtype == dtype and p.grad is not None and p.grad.dtype == dtype, name


# ---------------------------------------------------------------------------------------
# memory: model and graph freed by reference counting alone


def test_model_keeps_no_reference_to_the_last_graph() -> None:
    loss = pytest.importorskip("gradwise.loss")  # not dependencies of gradwise-nn
    optim = pytest.importorskip("gradwise.optim")

    m = nn.MLP([6, 8, 3])
    opt = optim.Adam(m.parameters(), lr=1e-3)
    x = Tensor(np.ones((5, 6), np.float32))
    t = Tensor(np.array([0, 1, 2, 0, 1]))
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            out = loss.cross_entropy(m(x), t)
            refs: list[weakref.ref[Any]] = [weakref.ref(out), weakref.ref(out.grad_fn)]
            opt.zero_grad()
            out.backward()
            opt.step()
            del out
            assert all(r() is None for r in refs)
    finally:
        gc.enable()


# ---------------------------------------------------------------------------------------
# files: atomic saves


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_failing_midway_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    nn.save({"w": np.ones(4, np.float32)}, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfDisk:
        """A file whose disk fills up after the first 100 bytes."""

        def __init__(self, f: Any) -> None:
            self.f, self.left = f, 100

        def write(self, data: Any) -> int:
            if self.left <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = min(self.left, len(data))
            self.f.write(bytes(data[:n]))
            self.left -= n
            return n

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def __enter__(self) -> HalfDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfDisk(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        nn.save({"w": np.zeros(10_000, np.float32)}, path)
    with pytest.raises(OSError, match="No space left"):
        nn.save_checkpoint({"w": Tensor(np.zeros(10_000, np.float32))}, path)
    with pytest.raises(OSError, match="No space left"):
        nn.save({"w": np.zeros(10_000, np.float32)}, tmp_path / "new.safetensors")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.safetensors"]
    np.testing.assert_array_equal(nn.load(path)["w"].numpy(), np.ones(4))


def test_save_interrupted_by_keyboard_interrupt_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    nn.save({"w": np.ones(4, np.float32)}, path)

    def interrupt(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        nn.save({"w": np.zeros(4, np.float32)}, path)
    monkeypatch.undo()
    assert _listing(tmp_path) == ["m.safetensors"]
    np.testing.assert_array_equal(nn.load(path)["w"].numpy(), np.ones(4))


def test_save_over_a_real_file_size_limit(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes write() fail with EFBIG (SIGXFSZ ignored) partway through."""
    code = textwrap.dedent(
        f"""
        import resource, signal, numpy as np
        from pathlib import Path
        from gradwise import nn
        path = Path({str(tmp_path / "m.safetensors")!r})
        nn.save({{"w": np.ones(4, np.float32)}}, path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            nn.save({{"w": np.zeros(100_000, np.float32)}}, path)
        except OSError as exc:
            print("raised", exc.errno)
        else:
            print("no error")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["raised", str(errno.EFBIG)]
    assert _listing(tmp_path) == ["m.safetensors"]
    np.testing.assert_array_equal(nn.load(tmp_path / "m.safetensors")["w"].numpy(), np.ones(4))


# ---------------------------------------------------------------------------------------
# files: the loader validates everything


def _raw(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


F32_1 = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'

HOSTILE: list[tuple[str, bytes, str]] = [
    ("duplicate key", _raw(b'{"a": ' + F32_1 + b', "a": ' + F32_1 + b"}", b"\0" * 4), "duplicate"),
    ("deep arrays", _raw(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    ("deep objects", _raw(b'{"a":' * 50_000 + b"1" + b"}" * 50_000), "nested too deeply"),
    (
        "5000-digit dim",
        _raw(b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}'),
        "not valid JSON",
    ),
    (
        "huge dims",
        _raw(b'{"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}'),
        "needs",
    ),
    (
        "huge dim times 0",
        _raw(b'{"a": {"dtype": "F32", "shape": [4611686018427387904, 0], "data_offsets": [0, 0]}}'),
        "",
    ),
    ("NaN dim", _raw(b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 0]}}'), "shape"),
    (
        "bool dim",
        _raw(b'{"a": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}'),
        "shape",
    ),
    ("nested metadata", _raw(b'{"__metadata__": {"x": {"y": 1}}}'), "__metadata__"),
    ("metadata list", _raw(b'{"__metadata__": [1]}'), "__metadata__"),
    ("BOM", _raw(b"\xef\xbb\xbf{}"), "JSON"),
    ("NUL after header", _raw(b"{}\0"), "JSON"),
    ("lone surrogate key", _raw(b'{"\\ud800": ' + F32_1 + b"}", b"\0" * 4), ""),
    ("pickle", pickle.dumps({"a": np.ones(3)}), ""),
    ("float offsets", _raw(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}}'), ""),
]


@pytest.mark.parametrize(("case", "raw", "match"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_load_rejects_hostile_files_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, raw: bytes, match: str
) -> None:
    def no_unpickling(*args: object, **kwargs: object) -> object:
        raise AssertionError("load unpickled something")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    for fn in (nn.load, nn.load_checkpoint):
        with pytest.raises(ValueError, match=match or "not a valid safetensors") as info:
            fn(path)
        assert str(path) in str(info.value)


def test_load_zero_size_dims_and_damaged_order_metadata(tmp_path: Path) -> None:
    path = tmp_path / "z.safetensors"
    nn.save({"e": np.zeros((0, 5), np.float32), "s": np.full((), 2.0)}, path)
    out = nn.load(path)
    assert out["e"].shape == (0, 5) and out["e"].dtype == np.float32
    assert out["s"].shape == () and out["s"].item() == 2.0
    for order in ("[[[[", "[" * 100_000, "[" + "9" * 5000 + "]", '["x"]'):
        nn.save({"b": np.ones(1), "a": np.ones(2)}, path, metadata={"gradwise.order": "x"})
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = raw[8 : 8 + n].replace(b'"x"', ('"' + order.replace('"', '\\"') + '"').encode())
        path.write_bytes(_raw(header, raw[8 + n :]))
        assert sorted(nn.load(path)) == ["a", "b"]  # a damaged order hint is ignored


def test_checkpoint_deep_tree_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    nn.save_checkpoint({"a": 1}, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    import json

    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["gradwise.checkpoint"] = (
        '{"version": 1, "tree": {"a": ' + "[" * 900 + "]" * 900 + "}}"
    )
    path.write_bytes(_raw(json.dumps(header).encode(), raw[8 + n :]))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(950)  # the tree parses, but decoding it must not overflow
    try:
        outcome: object
        try:
            outcome = nn.load_checkpoint(path)["a"]
        except ValueError as exc:
            outcome = exc
    finally:
        sys.setrecursionlimit(limit)
    if isinstance(outcome, ValueError):
        assert str(path) in str(outcome)
    else:
        assert isinstance(outcome, list)


def _fuzz_module() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_load", ROOT / "scripts" / "fuzz_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzz_loader_short_run() -> None:
    """300 mutated files (scripts/fuzz_load.py runs 10,000+)."""
    counts, failures = _fuzz_module().fuzz(300, seed=7)
    assert failures == []
    assert counts["ok"] + counts["rejected"] == 300
    assert counts["ok"] > 0 and counts["rejected"] > 0


def test_dtype_stays_after_round_trip(tmp_path: Path) -> None:
    m = nn.MLP([3, 4, 2])
    path = tmp_path / "m.safetensors"
    nn.save(m.state_dict(), path)
    m2 = nn.MLP([3, 4, 2]).to(ag.float64)
    m2.load_state_dict(nn.load(path))
    assert all(p.dtype == np.float64 for p in m2.parameters())
    for (_, a), (_, b) in zip(m.named_parameters(), m2.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy().astype(np.float64), b.numpy())
