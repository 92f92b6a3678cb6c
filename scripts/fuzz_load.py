"""Fuzz ``gradwise.nn.load`` and ``load_checkpoint`` with mutated safetensors files.

Usage: ``python scripts/fuzz_load.py [N] [SEED]`` (default 10,000 inputs). Every input is
a valid file mutated structurally (header fields, lengths, offsets, nesting, duplicate
keys) or byte-wise (flips, inserts, cuts, splices). Each must load or raise a
``ValueError`` naming the path; anything else (another exception, ``MemoryError``, a
crash) is counted as a failure and the first few are printed. Exit status 1 on failure.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from gradwise import nn
from gradwise.autograd import Tensor


def seeds(folder: Path) -> list[bytes]:
    """Valid files to mutate: state dicts of several dtypes and shapes, and a checkpoint."""
    out = []
    dicts: list[dict[str, Any]] = [
        {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(3, np.float64)},
        {"i": np.arange(5, dtype=np.int64), "m": np.array([True, False]), "e": np.zeros((0, 4))},
        {"s": np.full((), 1.5, np.float32), "h": np.ones(3, np.float16)},
    ]
    for i, d in enumerate(dicts):
        p = folder / f"seed{i}.safetensors"
        nn.save(d, p)
        out.append(p.read_bytes())
    p = folder / "ckpt.safetensors"
    nn.save_checkpoint(
        {"model": {"w": Tensor(np.ones((2, 2), np.float32))}, "epoch": 3, "t": (1, [2.5, None])},
        p,
    )
    out.append(p.read_bytes())
    return out


_NASTY: list[Any] = [
    -1, 0, 1, 2**31, 2**63, 2**64 + 1, 10**30, 1.5, float("nan"), True, None, "4", [], {},
    [2**62, 2**62], [0, 2**63], [-1, 4], "F32", "Q9", [[1]],
]  # fmt: skip


def _split(raw: bytes) -> tuple[dict[str, Any], bytes] | None:
    if len(raw) < 8:
        return None
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8 : 8 + n])
    except ValueError:
        return None
    return (header, raw[8 + n :]) if isinstance(header, dict) else None


def _pack(header_text: bytes, data: bytes) -> bytes:
    return struct.pack("<Q", len(header_text)) + header_text + data


def structural(raw: bytes, rng: random.Random) -> bytes:
    """Change one thing in the JSON header (or its length) of a valid file."""
    parts = _split(raw)
    if parts is None:
        return raw
    header, data = parts
    names = [k for k in header if k != "__metadata__"]
    choice = rng.randrange(9)
    if choice == 0 and names:  # a field gets a nasty value
        entry = header[rng.choice(names)]
        entry[rng.choice(["dtype", "shape", "data_offsets"])] = rng.choice(_NASTY)
    elif choice == 1 and names:  # one dimension changes
        entry = header[rng.choice(names)]
        if entry["shape"]:
            entry["shape"][rng.randrange(len(entry["shape"]))] = rng.choice([0, -1, 2**40, 7])
        else:
            entry["shape"] = [rng.choice([0, 1, 2**62])]
    elif choice == 2 and names:  # offsets move
        entry = header[rng.choice(names)]
        b, e = entry["data_offsets"]
        entry["data_offsets"] = [b + rng.randint(-8, 8), e + rng.randint(-8, 8)]
    elif choice == 3:  # metadata becomes nested / non-string
        header["__metadata__"] = rng.choice([{"a": {"b": 1}}, [1], {"gradwise.order": "[["}, 3])
    elif choice == 4:  # absurd nesting
        depth = rng.choice([50, 5000, 100000])
        return _pack(b"[" * depth + b"]" * depth, data)
    elif choice == 5 and names:  # duplicate key, spelled out in the text
        text = json.dumps(header)
        name = json.dumps(names[0])
        dup = text[:-1] + ", " + name + ": " + json.dumps(header[names[0]]) + "}"
        return _pack(dup.encode(), data)
    elif choice == 6:  # header length lies
        blob = json.dumps(header).encode()
        n = rng.choice([0, len(blob) - 1, len(blob) + 3, 2**32, 2**63, 100 * 2**20 + 1])
        return struct.pack("<Q", n) + blob + data
    elif choice == 7:  # a huge number literal
        return _pack(json.dumps(header).replace("[", "[" + "9" * 5000 + ", ", 1).encode(), data)
    else:  # checkpoint metadata mangled
        meta = header.setdefault("__metadata__", {})
        meta["gradwise.checkpoint"] = rng.choice(
            ['{"version": 1, "tree": {"__tensor__": "nope"}}', '{"version": 1, "tree": 3}',
             '{"version": 1, "tree": ' + "[" * 3000 + "]" * 3000 + "}",
             '{"version": 1, "tree": {"__items__": [[[1], 2]]}}', "{", '{"version": 9}'],
        )  # fmt: skip
    return _pack(json.dumps(header).encode(), data)


def bytewise(raw: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Flip, insert, delete, cut or splice bytes."""
    b = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[rng.randint(0, len(b)) : rng.randint(0, len(b))] = bytes(
                rng.randrange(256) for _ in range(rng.randint(1, 8))
            )
        elif op == 2 and b:
            i = rng.randrange(len(b))
            del b[i : i + rng.randint(1, 16)]
        elif op == 3:
            b = b[: rng.randint(0, len(b))]
        else:
            other = rng.choice(pool)
            i = rng.randint(0, len(b))
            b = b[:i] + other[rng.randint(0, len(other)) :]
    return bytes(b)


def check_one(path: Path, raw: bytes) -> str:
    """'ok', 'rejected' or a failure description."""
    path.write_bytes(raw)
    outcome = "ok"
    for fn in (nn.load, nn.load_checkpoint):
        try:
            result = fn(path)
        except ValueError as exc:
            if str(path) not in str(exc):
                return f"ValueError without the path: {exc}"
            outcome = "rejected" if fn is nn.load else outcome
        except Exception as exc:
            return f"{fn.__name__}: {type(exc).__name__}: {exc}"
        else:
            if fn is nn.load and not all(
                isinstance(k, str) and isinstance(v, Tensor) for k, v in result.items()
            ):
                return "load returned something other than dict[str, Tensor]"
    return outcome


def fuzz(n: int, seed: int = 0) -> tuple[Counter[str], list[str]]:
    """Run ``n`` inputs; return the outcome counts and the failures."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    failures: list[str] = []

    def no_pickle(*args: object, **kwargs: object) -> object:
        raise AssertionError("the loader tried to unpickle")

    saved = pickle.loads, pickle.load
    pickle.loads = pickle.load = no_pickle
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            pool = seeds(folder)
            target = folder / "fuzz.safetensors"
            for i in range(n):
                base = rng.choice(pool)
                raw = structural(base, rng) if i % 2 else bytewise(base, rng, pool)
                if rng.random() < 0.2:
                    raw = bytewise(raw, rng, pool)
                result = check_one(target, raw)
                counts["structural" if i % 2 else "bytewise"] += 1
                if result in ("ok", "rejected"):
                    counts[result] += 1
                else:
                    counts["failed"] += 1
                    failures.append(f"input {i}: {result}")
    finally:
        pickle.loads, pickle.load = saved
    return counts, failures


def main() -> int:
    """Run the fuzzer from the command line; exit status 1 if any input failed."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    start = time.perf_counter()
    counts, failures = fuzz(n, seed)
    elapsed = time.perf_counter() - start
    print(
        f"fuzz_load: {n} inputs ({counts['structural']} structural, {counts['bytewise']} "
        f"byte-wise) in {elapsed:.1f} s: {counts['ok']} loaded, {counts['rejected']} rejected "
        f"with ValueError naming the path, {counts['failed']} failures; pid {os.getpid()}"
    )
    for f in failures[:10]:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
