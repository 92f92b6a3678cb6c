import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradwise.autograd import Tensor
from gradwise.nn.serialization import load, load_checkpoint, save, save_checkpoint


def _state() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "0.weight": Tensor(rng.standard_normal((4, 3)).astype(np.float32)),
        "0.bias": Tensor(rng.standard_normal(4).astype(np.float32)),
        "bn.running_var": Tensor(rng.standard_normal(4)),  # float64
        "bn.num_batches_tracked": Tensor(np.array(7, dtype=np.int64)),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 5), dtype=np.float32),
    }


def _raw(header: dict[str, Any], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_nn_save_load_round_trip_keeps_names_values_dtypes(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "m.safetensors"
    save(state, path)
    back = load(path)
    assert list(back) == list(state)
    for name, value in state.items():
        arr = value.data if isinstance(value, Tensor) else value
        assert isinstance(back[name], Tensor)
        assert back[name].dtype == arr.dtype
        assert back[name].shape == arr.shape
        np.testing.assert_array_equal(back[name].data, arr)
        assert back[name].data.flags.writeable


def test_nn_save_accepts_non_contiguous_and_big_endian(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    be = np.arange(5, dtype=">f8")
    save({"t": x.T, "be": be}, tmp_path / "a.safetensors")
    back = load(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(back["t"].data, x.T)
    np.testing.assert_array_equal(back["be"].data, be)
    assert back["be"].dtype == np.float64


def test_nn_saved_file_loads_in_pytorch_and_back(tmp_path: Path) -> None:
    torch_st = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.safetensors"
    state = _state()
    del state["empty"]
    save(state, path)
    loaded = torch_st.load_file(str(path))
    assert set(loaded) == set(state)
    for name, value in state.items():
        arr = value.data if isinstance(value, Tensor) else value
        np.testing.assert_array_equal(loaded[name].numpy(), arr)
    loaded["extra"] = torch.arange(3, dtype=torch.float32)
    torch_st.save_file(loaded, str(tmp_path / "t.safetensors"))
    back = load(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(back["extra"].data, np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(back["0.weight"].data, state["0.weight"].data)


def test_nn_save_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="key 'a'"):
        save({"a": [1.0, 2.0]}, tmp_path / "x.safetensors")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="keys must be strings"):
        save({1: np.zeros(2)}, tmp_path / "x.safetensors")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="complex"):
        save({"c": np.zeros(2, dtype=np.complex64)}, tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save({"a": np.zeros(2)}, tmp_path / "missing" / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_nn_save_is_atomic_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    save({"w": np.ones(3, dtype=np.float32)}, path)
    before = path.read_bytes()

    def fail_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail_fsync)
    with pytest.raises(OSError, match="No space left"):
        save({"w": np.zeros(1000, dtype=np.float32)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_nn_save_replaces_and_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save({"w": np.ones(3)}, path)
    os.chmod(path, 0o640)
    save({"w": np.zeros(3)}, path)
    assert (path.stat().st_mode & 0o777) == 0o640
    np.testing.assert_array_equal(load(path)["w"].data, np.zeros(3))


def test_nn_load_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")


def _bad_files() -> list[tuple[str, bytes, str]]:
    good = np.arange(4, dtype=np.float32).tobytes()
    entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    return [
        ("empty", b"", "fewer than the 8-byte"),
        ("short", b"\x01\x00", "fewer than the 8-byte"),
        ("huge header", struct.pack("<Q", 2**62) + b"{}", "exceeds the limit"),
        ("past end", struct.pack("<Q", 100) + b"{}", "runs past the end"),
        ("not json", struct.pack("<Q", 3) + b"{x}", "not valid JSON"),
        ("not utf8", struct.pack("<Q", 2) + b"\xff\xfe", "not valid JSON"),
        ("list header", _raw([], b""), "not a JSON object"),  # type: ignore[arg-type]
        ("unknown dtype", _raw({"a": {**entry, "dtype": "Q7"}}, good), "unknown dtype"),
        ("negative shape", _raw({"a": {**entry, "shape": [-4]}}, good), "invalid shape"),
        ("float shape", _raw({"a": {**entry, "shape": [4.0]}}, good), "invalid shape"),
        ("huge shape", _raw({"a": {**entry, "shape": [2**40, 2**40]}}, good), "needs"),
        ("offsets out", _raw({"a": {**entry, "data_offsets": [0, 64]}}, good), "outside"),
        ("offsets reversed", _raw({"a": {**entry, "data_offsets": [16, 0]}}, good), "outside"),
        ("wrong size", _raw({"a": {**entry, "shape": [3]}}, good), "needs 12 bytes"),
        (
            "overlap",
            _raw(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                good,
            ),
            "overlaps",
        ),
        ("gap", _raw({"a": {**entry, "shape": [2], "data_offsets": [8, 16]}}, good), "gap"),
        ("truncated data", _raw({"a": entry}, good[:10]), "outside"),
        ("trailing bytes", _raw({"a": entry}, good + b"xx"), "cover 16 of the 18"),
        ("entry not object", _raw({"a": 3}, b""), "not a JSON object"),
        ("bad metadata", _raw({"__metadata__": {"k": 1}}, b""), "__metadata__"),
    ]


@pytest.mark.parametrize(("name", "raw", "message"), _bad_files(), ids=[c[0] for c in _bad_files()])
def test_nn_load_rejects_corrupt_files_naming_the_path(
    tmp_path: Path, name: str, raw: bytes, message: str
) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_nn_load_truncated_real_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save({"w": np.ones((10, 10), dtype=np.float32)}, path)
    data = path.read_bytes()
    for cut in (0, 5, 8, 20, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            load(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200), st.integers(0, 300))
def test_nn_load_fuzz_never_crashes(tmp_path: Path, noise: bytes, cut: int) -> None:
    path = tmp_path / "fuzz.safetensors"
    base = _raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    for raw in (noise, base[:cut] + noise, struct.pack("<Q", len(noise)) + noise):
        path.write_bytes(raw)
        try:
            load(path)
        except ValueError as exc:
            message = str(exc)
        else:
            continue
        assert str(path) in message


def test_nn_checkpoint_round_trip_keeps_structure(tmp_path: Path) -> None:
    rng_state = {"seed": 3, "bit_generator": {"state": {"state": 2**100 + 7, "inc": 11}}}
    ckpt: dict[str, Any] = {
        "model": {"0.weight": Tensor(np.ones((2, 3), dtype=np.float32))},
        "optimizer": {
            "state": {0: {"step": 4, "exp_avg": np.full(3, 0.5)}, 1: {}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "epoch": 3,
        "note": None,
        "inf": float("inf"),
        "tricky": {"__tensor__": "not a tensor"},
        "rng": rng_state,
    }
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(ckpt, path)
    back = load_checkpoint(path)
    assert isinstance(back["model"]["0.weight"], Tensor)
    np.testing.assert_array_equal(back["model"]["0.weight"].data, np.ones((2, 3)))
    state = back["optimizer"]["state"]
    assert set(state) == {0, 1}
    assert state[0]["step"] == 4
    assert isinstance(state[0]["exp_avg"], np.ndarray)
    np.testing.assert_array_equal(state[0]["exp_avg"], np.full(3, 0.5))
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["epoch"] == 3
    assert back["note"] is None
    assert back["inf"] == float("inf")
    assert back["tricky"] == {"__tensor__": "not a tensor"}
    assert back["rng"] == rng_state


def test_nn_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot store object"):
        save_checkpoint({"x": object()}, tmp_path / "c.safetensors")
    plain = tmp_path / "plain.safetensors"
    save({"w": np.ones(2)}, plain)
    with pytest.raises(ValueError, match="not a gradwise checkpoint"):
        load_checkpoint(plain)
