"""Saving and loading tensors in the safetensors format, and training checkpoints.

``save(state_dict, path)`` writes a flat ``{name: tensor}`` mapping as a ``.safetensors``
file that PyTorch reads with ``safetensors.torch.load_file`` (and back); ``load(path)``
returns ``dict[str, Tensor]``. ``save_checkpoint`` / ``load_checkpoint`` store a nested
structure (model and optimizer state dicts, scheduler state, RNG state, epoch numbers)
in the same format: arrays as tensors, everything else as JSON in the header's metadata.

Nothing is ever unpickled. Every save is atomic: the bytes go to a temporary file in the
target's folder, which replaces the target only once it is complete, so a save that
fails midway leaves the previous file intact and no temporary file behind. ``load``
validates the header (length, JSON, dtypes, shapes, offsets) before any array is made,
so a truncated or hostile file raises ``ValueError`` naming the path, never
``MemoryError`` or a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from gradwise.autograd import Tensor
from gradwise.core.dtypes import Array

PathLike = str | os.PathLike[str]

# safetensors dtype names and the NumPy dtypes they are read as (little-endian)
_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
_SAVABLE = {np.dtype(d).newbyteorder("=") for d in _DTYPES.values()}

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Largest JSON header ``load`` accepts (safetensors' own limit)."""

_ORDER_KEY = "gradwise.order"
"""Metadata entry holding the saved key order (the format itself sorts entries)."""
_CHECKPOINT_KEY = "gradwise.checkpoint"
_CHECKPOINT_VERSION = 1


# ---- save ---------------------------------------------------------------------------------


def _array_for_saving(name: str, value: object, op: str) -> Array:
    if isinstance(value, Tensor):
        arr = value.data
    elif isinstance(value, np.ndarray):
        arr = value
    else:
        raise TypeError(
            f"{op}: value for key {name!r} must be a Tensor or NumPy array, got "
            f"{type(value).__name__}"
        )
    if arr.dtype.newbyteorder("=") not in _SAVABLE:
        raise TypeError(
            f"{op}: key {name!r} has dtype {arr.dtype}, which safetensors cannot store "
            "(bool, integers and float16/32/64 can be stored)"
        )
    return arr if arr.flags.c_contiguous else np.array(arr, order="C", copy=True)


def _write_atomically(path: PathLike, payload: bytes, op: str) -> None:
    """Write ``payload`` to a temporary file beside ``path``, then rename it over ``path``."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{op}: folder {str(folder)!r} does not exist (saving {target})")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            view = memoryview(payload)
            while view:
                written = f.write(view)
                view = view[written:]
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save(
    state_dict: Mapping[str, Tensor | Array],
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``{name: tensor}`` to ``path`` in the safetensors format, atomically.

    Args:
        state_dict: names mapped to Tensors or NumPy arrays (e.g. ``model.state_dict()``).
        path: the file to write; its folder must exist. An existing file is replaced only
            once the new one is complete.
        metadata: optional text-only entries for the header's ``__metadata__``.

    Raises:
        TypeError: a key is not a string, or a value is not a Tensor/array of a storable
            dtype.
        OSError: the file could not be written (the previous file, if any, is intact).
    """
    op = "save"
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{op}: expected a mapping of names to tensors, got {type(state_dict)}")
    arrays: dict[str, Array] = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"{op}: keys must be strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError(f"{op}: the key '__metadata__' is reserved by the format")
        arrays[name] = _array_for_saving(name, value, op)
    meta: dict[str, str] = {_ORDER_KEY: json.dumps(list(arrays))}
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"{op}: metadata keys and values must be strings, got {k!r}")
            meta[k] = v
    payload = safetensors.numpy.save(arrays, metadata=meta)
    _write_atomically(path, payload, op)


# ---- load ---------------------------------------------------------------------------------


def _bad(path: PathLike, why: str) -> ValueError:
    return ValueError(f"load: {os.fspath(path)!r} is not a valid safetensors file: {why}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for json: a key given twice is an error, not "last one wins"."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json(path: PathLike, text: str | bytes, what: str) -> Any:
    """Parse JSON from a file: any malformed, duplicate-keyed, absurdly nested or
    absurdly long-numbered text is a ``ValueError`` naming the path.
    """
    try:
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _bad(path, f"{what} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit, ours
        raise _bad(path, f"{what} is not valid JSON ({exc})") from None


def _parse_header(path: PathLike, data: bytes) -> tuple[dict[str, Any], int]:
    """Validate the header of a safetensors file; returns it and the data's start offset."""
    if len(data) < 8:
        raise _bad(path, f"it has {len(data)} bytes, fewer than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise _bad(path, f"header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + n > len(data):
        raise _bad(path, f"header length {n} runs past the end of the file ({len(data)} bytes)")
    header = _json(path, data[8 : 8 + n], "the header")
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    return header, 8 + n


def _check_entries(path: PathLike, header: dict[str, Any], buffer_len: int) -> None:
    """Dtypes known, shapes non-negative, offsets in range, sized right and not overlapping."""
    meta = header.get("__metadata__")
    if meta is not None and (
        not isinstance(meta, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        raise _bad(path, "__metadata__ must map strings to strings")
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise _bad(path, f"entry {name!r} is not a JSON object")
        dtype_name = info.get("dtype")
        if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
            raise _bad(path, f"entry {name!r} has unknown dtype {dtype_name!r}")
        shape = info.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise _bad(path, f"entry {name!r} has an invalid shape {shape!r}")
        offsets = info.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise _bad(path, f"entry {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= buffer_len:
            raise _bad(
                path,
                f"entry {name!r} has data_offsets [{begin}, {end}] outside the data "
                f"buffer of {buffer_len} bytes",
            )
        nbytes = math.prod(shape) * _DTYPES[dtype_name].itemsize
        if nbytes != end - begin:
            raise _bad(
                path,
                f"entry {name!r} of shape {tuple(shape)} and dtype {dtype_name} needs "
                f"{nbytes} bytes but its data_offsets span {end - begin}",
            )
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            what = "overlaps the previous entry" if begin < cursor else "leaves a gap before it"
            raise _bad(path, f"entry {name!r} at offset {begin} {what}")
        cursor = end
    if cursor != buffer_len:
        raise _bad(path, f"the entries cover {cursor} of the {buffer_len} data bytes")


def _read(path: PathLike) -> tuple[dict[str, Array], dict[str, str]]:
    """The validated arrays and metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    header, start = _parse_header(path, data)
    _check_entries(path, header, len(data) - start)
    try:
        arrays = safetensors.numpy.load(data)
    except Exception as exc:  # the parser's own error type; the header was checked already
        raise _bad(path, str(exc)) from None
    meta = header.get("__metadata__") or {}
    return arrays, meta


def load(path: PathLike) -> dict[str, Tensor]:
    """Read a safetensors file as ``{name: Tensor}`` (each array its own writeable copy).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is truncated, corrupt or not in the safetensors format; the
            message names the path and what is wrong.
    """
    arrays, meta = _read(path)
    return {name: Tensor._wrap(_owned(arrays[name])) for name in _key_order(arrays, meta)}


def _key_order(arrays: Mapping[str, Array], meta: Mapping[str, str]) -> list[str]:
    """The order the keys were saved in, when gradwise saved the file; else the file's."""
    try:
        order = json.loads(meta.get(_ORDER_KEY, "null"))
    except (ValueError, RecursionError):  # a foreign or damaged entry: keep the file's order
        order = None
    if isinstance(order, list) and sorted(map(str, order)) == sorted(arrays):
        return [str(k) for k in order]
    return list(arrays)


def _owned(arr: Array) -> Array:
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if not (arr.flags.writeable and arr.flags.owndata and arr.flags.c_contiguous):
        arr = np.array(arr, copy=True, order="C")
    return arr


# ---- checkpoints --------------------------------------------------------------------------


class _Flattener:
    """Splits a nested structure into JSON-able text and a flat ``{key: array}`` dict."""

    def __init__(self) -> None:
        self.arrays: dict[str, Array] = {}

    def encode(self, value: object, where: str) -> object:
        if isinstance(value, Tensor):
            key = f"{len(self.arrays)}:{where}"
            self.arrays[key] = _array_for_saving(where, value, "save_checkpoint")
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            key = f"{len(self.arrays)}:{where}"
            self.arrays[key] = _array_for_saving(where, value, "save_checkpoint")
            return {"__ndarray__": key}
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, float | np.floating):
            return float(value)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}.{i}") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            items = list(value.items())
            if all(isinstance(k, str) for k, _ in items) and not any(
                k.startswith("__") and k.endswith("__") for k, _ in items
            ):
                return {k: self.encode(v, f"{where}.{k}") for k, v in items}
            return {
                "__items__": [
                    [self.encode(k, f"{where}.key"), self.encode(v, f"{where}.{k}")]
                    for k, v in items
                ]
            }
        raise TypeError(
            f"save_checkpoint: cannot store {type(value).__name__} at {where!r}; a checkpoint "
            "holds tensors, arrays, numbers, strings, None, and lists, tuples and dicts of them"
        )


def _decode(value: object, arrays: Mapping[str, Array], path: PathLike) -> object:
    if isinstance(value, list):
        return [_decode(v, arrays, path) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in ("__tensor__", "__ndarray__"):
            if not isinstance(inner, str) or inner not in arrays:
                raise _bad(path, f"the checkpoint refers to a missing array {inner!r}")
            arr = _owned(arrays[inner])
            return Tensor._wrap(arr) if tag == "__tensor__" else arr
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(_decode(v, arrays, path) for v in inner)
        if tag == "__items__" and isinstance(inner, list):
            out: dict[Any, object] = {}
            for pair in inner:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise _bad(path, "a checkpoint dict entry is not a [key, value] pair")
                key = _decode(pair[0], arrays, path)
                try:
                    out[key] = _decode(pair[1], arrays, path)
                except TypeError:
                    raise _bad(path, f"unhashable checkpoint dict key {key!r}") from None
            return out
    return {k: _decode(v, arrays, path) for k, v in value.items()}


def save_checkpoint(checkpoint: Mapping[str, object], path: PathLike) -> None:
    """Write a nested training checkpoint to ``path`` (safetensors, atomic, no pickle).

    ``checkpoint`` is a dict such as ``{"model": model.state_dict(), "optimizer":
    optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng":
    gradwise.core.get_rng_state(), "epoch": 3}``: Tensors and arrays become tensors in the
    file; numbers, strings, None, lists, tuples and dicts (any hashable keys) are kept as
    JSON in the header. :func:`load_checkpoint` gives the same structure back.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"save_checkpoint: expected a dict, got {type(checkpoint).__name__}")
    flat = _Flattener()
    tree = flat.encode(checkpoint, "checkpoint")
    text = json.dumps({"version": _CHECKPOINT_VERSION, "tree": tree})
    payload = safetensors.numpy.save(flat.arrays, metadata={_CHECKPOINT_KEY: text})
    _write_atomically(path, payload, "save_checkpoint")


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`: the same nested structure,
    with Tensors where Tensors were saved and NumPy arrays where arrays were.
    """
    arrays, meta = _read(path)
    text = meta.get(_CHECKPOINT_KEY)
    if text is None:
        raise _bad(path, "it is a safetensors file but not a gradwise checkpoint")
    doc = _json(path, text, "the checkpoint metadata")
    if not isinstance(doc, dict) or doc.get("version") != _CHECKPOINT_VERSION:
        raise _bad(path, "unknown checkpoint version")
    try:
        tree = _decode(doc.get("tree"), arrays, path)
    except RecursionError:
        raise _bad(path, "the checkpoint is nested too deeply") from None
    if not isinstance(tree, dict):
        raise _bad(path, "the checkpoint's top level is not a dict")
    return tree
