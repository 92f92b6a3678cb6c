"""gradwise.core kernels against the NumPy expression a user would write (and PyTorch).

For every kernel: median time at 1K, 64K, 1M and 16M elements (float32, all threads),
the ratio to NumPy (< 1 means gradwise is faster) and to PyTorch when importable, and
GB/s against a measured STREAM-triad bandwidth. Then fused Adam on 6M float32 parameters
against a NumPy-expression Adam, and cold/warm ``import`` + ``warmup()`` times in fresh
processes.

    python benchmarks/kernels.py            # the full table (a few minutes)
    python benchmarks/kernels.py --quick    # 64K and 1M only, shorter pauses
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numba
import numpy as np
from benchlib import fmt_time, interleaved, try_import_torch

import gradwise.core as gc
from gradwise.core import ops

Arr = np.ndarray[Any, Any]
Fn = Callable[[], object]

try:
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - scipy is in the dev group
    _erf = None


def _triad_py(a: Arr, b: Arr, c: Arr, s: float) -> None:
    for i in numba.prange(a.size):
        a[i] = b[i] + s * c[i]


# numba is untyped: state the compiled kernel's signature.
_triad = cast(
    Callable[[Arr, Arr, Arr, float], None], numba.njit(parallel=True, cache=True)(_triad_py)
)


def triad_bandwidth(rounds: int, pause: float) -> float:
    """STREAM triad a = b + s c on 3 x 64 MB float64 arrays, GB/s (24 bytes per element)."""
    n = 8 * 1024 * 1024
    a, b, c = np.zeros(n), np.ones(n), np.ones(n)
    t = interleaved([lambda: _triad(a, b, c, 3.0)], rounds=rounds, pause=pause, block_seconds=0.2)[
        0
    ]
    return 24 * n / t.minimum / 1e9


@dataclass
class Case:
    """One kernel: how to build inputs of n elements and run each contender on them."""

    name: str
    make: Callable[[int, np.random.Generator], dict[str, Any]]
    gradwise: Callable[[dict[str, Any]], object]
    numpy: Callable[[dict[str, Any]], object] | None
    torch: Callable[[dict[str, Any]], object] | None
    streams: int  # arrays of n elements read or written once: bytes moved = streams * n * 4


def _unary(n: int, rng: np.random.Generator) -> dict[str, Any]:
    x = rng.standard_normal(n).astype(np.float32) * 3
    g = rng.standard_normal(n).astype(np.float32)
    return {"x": x, "g": g, "y": ops.sigmoid(x), "t": ops.tanh(x)}


def _rows(cols: int) -> Callable[[int, np.random.Generator], dict[str, Any]]:
    def make(n: int, rng: np.random.Generator) -> dict[str, Any]:
        r = max(1, n // cols)
        x = rng.standard_normal((r, cols)).astype(np.float32) * 3
        g = rng.standard_normal((r, cols)).astype(np.float32)
        t = rng.integers(0, cols, r)
        _losses, lse, _ = ops.softmax_cross_entropy(x, t)
        return {
            "x": x,
            "g": g,
            "y": ops.softmax(x),
            "ly": ops.log_softmax(x),
            "t": t,
            "lse": lse,
            "gl": np.full(r, 1.0 / r),
            "lse32": lse.astype(np.float32),
        }

    return make


def _sig(x: Arr) -> Arr:
    return 1 / (1 + np.exp(-x))


K = math.sqrt(2 / math.pi)


def _cases() -> list[Case]:
    s2 = math.sqrt(2.0)
    cases = [
        Case(
            "relu",
            _unary,
            lambda a: ops.relu(a["x"]),
            lambda a: np.maximum(a["x"], 0),
            lambda a: a["T"].relu(a["tx"]),
            2,
        ),
        Case(
            "relu_backward",
            _unary,
            lambda a: ops.relu_backward(a["x"], a["g"]),
            lambda a: a["g"] * (a["x"] > 0),
            lambda a: a["tg"] * (a["tx"] > 0),
            3,
        ),
        Case(
            "leaky_relu",
            _unary,
            lambda a: ops.leaky_relu(a["x"], 0.01),
            lambda a: np.where(a["x"] > 0, a["x"], 0.01 * a["x"]),
            lambda a: a["F"].leaky_relu(a["tx"], 0.01),
            2,
        ),
        Case(
            "leaky_relu_backward",
            _unary,
            lambda a: ops.leaky_relu_backward(a["x"], a["g"], 0.01),
            lambda a: np.where(a["x"] > 0, a["g"], 0.01 * a["g"]),
            None,
            3,
        ),
        Case(
            "sigmoid",
            _unary,
            lambda a: ops.sigmoid(a["x"]),
            lambda a: _sig(a["x"]),
            lambda a: a["T"].sigmoid(a["tx"]),
            2,
        ),
        Case(
            "sigmoid_backward",
            _unary,
            lambda a: ops.sigmoid_backward(a["y"], a["g"]),
            lambda a: a["g"] * a["y"] * (1 - a["y"]),
            None,
            3,
        ),
        Case(
            "tanh",
            _unary,
            lambda a: ops.tanh(a["x"]),
            lambda a: np.tanh(a["x"]),
            lambda a: a["T"].tanh(a["tx"]),
            2,
        ),
        Case(
            "tanh_backward",
            _unary,
            lambda a: ops.tanh_backward(a["t"], a["g"]),
            lambda a: a["g"] * (1 - a["t"] * a["t"]),
            None,
            3,
        ),
        Case(
            "gelu",
            _unary,
            lambda a: ops.gelu(a["x"]),
            (lambda a: 0.5 * a["x"] * (1 + _erf(a["x"] / s2))) if _erf else None,
            lambda a: a["F"].gelu(a["tx"]),
            2,
        ),
        Case(
            "gelu_backward",
            _unary,
            lambda a: ops.gelu_backward(a["x"], a["g"]),
            (
                lambda a: (
                    a["g"]
                    * (
                        0.5 * (1 + _erf(a["x"] / s2))
                        + a["x"] * np.exp(-0.5 * a["x"] ** 2) / math.sqrt(2 * math.pi)
                    )
                )
            )
            if _erf
            else None,
            None,
            3,
        ),
        Case(
            "gelu_tanh",
            _unary,
            lambda a: ops.gelu(a["x"], "tanh"),
            lambda a: 0.5 * a["x"] * (1 + np.tanh(K * (a["x"] + 0.044715 * a["x"] ** 3))),
            lambda a: a["F"].gelu(a["tx"], approximate="tanh"),
            2,
        ),
        Case(
            "silu",
            _unary,
            lambda a: ops.silu(a["x"]),
            lambda a: a["x"] * _sig(a["x"]),
            lambda a: a["F"].silu(a["tx"]),
            2,
        ),
        Case(
            "silu_backward",
            _unary,
            lambda a: ops.silu_backward(a["x"], a["g"]),
            lambda a: (lambda s: a["g"] * s * (1 + a["x"] * (1 - s)))(_sig(a["x"])),
            None,
            3,
        ),
        Case(
            "softplus",
            _unary,
            lambda a: ops.softplus(a["x"]),
            lambda a: np.logaddexp(0, a["x"]),
            lambda a: a["F"].softplus(a["tx"]),
            2,
        ),
        Case(
            "softplus_backward",
            _unary,
            lambda a: ops.softplus_backward(a["x"], a["g"]),
            lambda a: a["g"] * _sig(a["x"]),
            None,
            3,
        ),
        Case(
            "sum",
            _unary,
            lambda a: ops.sum(a["x"]),
            lambda a: a["x"].sum(),
            lambda a: a["tx"].sum(),
            1,
        ),
        Case(
            "sum_axis0",
            _rows(256),
            lambda a: ops.sum(a["x"], 0),
            lambda a: a["x"].sum(axis=0),
            lambda a: a["tx"].sum(0),
            1,
        ),
        Case(
            "mean_rows",
            _rows(256),
            lambda a: ops.mean(a["x"], 1),
            lambda a: a["x"].mean(axis=1),
            lambda a: a["tx"].mean(1),
            1,
        ),
        Case(
            "max",
            _unary,
            lambda a: ops.max(a["x"]),
            lambda a: a["x"].max(),
            lambda a: a["tx"].max(),
            1,
        ),
        Case(
            "max_axis0",
            _rows(256),
            lambda a: ops.max(a["x"], 0),
            lambda a: a["x"].max(axis=0),
            lambda a: a["tx"].amax(0),
            1,
        ),
        Case(
            "var",
            _unary,
            lambda a: ops.var(a["x"]),
            lambda a: a["x"].var(),
            lambda a: a["tx"].var(correction=0),
            1,
        ),
        Case(
            "var_rows",
            _rows(256),
            lambda a: ops.var(a["x"], 1),
            lambda a: a["x"].var(axis=1),
            lambda a: a["tx"].var(1, correction=0),
            1,
        ),
        Case(
            "softmax",
            _rows(100),
            lambda a: ops.softmax(a["x"]),
            lambda a: (lambda e: e / e.sum(-1, keepdims=True))(
                np.exp(a["x"] - a["x"].max(-1, keepdims=True))
            ),
            lambda a: a["tx"].softmax(-1),
            2,
        ),
        Case(
            "softmax_backward",
            _rows(100),
            lambda a: ops.softmax_backward(a["y"], a["g"]),
            lambda a: a["y"] * (a["g"] - (a["g"] * a["y"]).sum(-1, keepdims=True)),
            None,
            3,
        ),
        Case(
            "log_softmax",
            _rows(100),
            lambda a: ops.log_softmax(a["x"]),
            lambda a: (lambda z: z - np.log(np.exp(z).sum(-1, keepdims=True)))(
                a["x"] - a["x"].max(-1, keepdims=True)
            ),
            lambda a: a["tx"].log_softmax(-1),
            2,
        ),
        Case(
            "log_softmax_backward",
            _rows(100),
            lambda a: ops.log_softmax_backward(a["ly"], a["g"]),
            lambda a: a["g"] - np.exp(a["ly"]) * a["g"].sum(-1, keepdims=True),
            None,
            3,
        ),
        Case(
            "logsumexp",
            _rows(100),
            lambda a: ops.logsumexp(a["x"], -1),
            lambda a: (lambda m: m[:, 0] + np.log(np.exp(a["x"] - m).sum(-1)))(
                a["x"].max(-1, keepdims=True)
            ),
            lambda a: a["tx"].logsumexp(-1),
            1,
        ),
        Case(
            "cross_entropy",
            _rows(100),
            lambda a: ops.softmax_cross_entropy(a["x"], a["t"]),
            lambda a: (
                lambda m: (
                    m[:, 0]
                    + np.log(np.exp(a["x"] - m).sum(-1))
                    - a["x"][np.arange(len(a["t"])), a["t"]]
                )
            )(a["x"].max(-1, keepdims=True)),
            lambda a: a["F"].cross_entropy(a["tx"], a["tt"], reduction="none"),
            1,
        ),
        Case(
            "cross_entropy_backward",
            _rows(100),
            lambda a: ops.softmax_cross_entropy_backward(a["x"], a["t"], a["lse"], a["gl"]),
            _np_ce_backward,
            None,
            2,
        ),
    ]
    return cases


def _np_ce_backward(a: dict[str, Any]) -> Arr:
    x, t = a["x"], a["t"]
    p: Arr = np.exp(x - a["lse32"][:, None])
    p[np.arange(len(t)), t] -= 1
    p *= a["gl"][:, None].astype(np.float32)
    return p


def run_kernels(
    sizes: list[int], rounds: int, pause: float, bandwidth: float, torch: Any, only: set[str]
) -> None:
    rng = np.random.default_rng(0)
    head = f"{'kernel':24} {'n':>9} {'gradwise':>10} {'min':>10} {'numpy':>10} {'gw/np':>6}"
    if torch is not None:
        head += f" {'torch':>10} {'gw/pt':>6}"
    head += f" {'GB/s':>6} {'%triad':>6}"
    print(head)
    print("-" * len(head))
    for case in _cases():
        if only and case.name not in only:
            continue
        for n in sizes:
            args = case.make(n, rng)

            def gw_fn(c: Case = case, a: dict[str, Any] = args) -> object:
                return c.gradwise(a)

            contenders: list[Fn] = [gw_fn]
            numpy_fn = case.numpy
            if numpy_fn is not None:

                def np_fn(
                    f: Callable[[dict[str, Any]], object] = numpy_fn, a: dict[str, Any] = args
                ) -> object:
                    return f(a)

                contenders.append(np_fn)
            if torch is not None and case.torch is not None:
                targs = {**args, "T": torch, "F": torch.nn.functional}
                targs["tx"] = torch.from_numpy(args["x"])
                targs["tg"] = torch.from_numpy(args["g"])
                if "t" in args and args["t"].dtype == np.int64:
                    targs["tt"] = torch.from_numpy(args["t"])

                def pt_fn(
                    f: Callable[[dict[str, Any]], object] = case.torch, a: dict[str, Any] = targs
                ) -> object:
                    return f(a)

                contenders.append(pt_fn)
            with np.errstate(all="ignore"):
                times = interleaved(contenders, rounds=rounds, pause=pause)
            gw = times[0]
            elems = args["x"].size
            gbs = case.streams * elems * 4 / gw.median / 1e9
            row = f"{case.name:24} {elems:9d} {fmt_time(gw.median):>10} {fmt_time(gw.minimum):>10}"
            if numpy_fn is not None:
                row += f" {fmt_time(times[1].median):>10} {gw.median / times[1].median:6.2f}"
            else:
                row += f" {'-':>10} {'-':>6}"
            if torch is not None:
                if case.torch is not None:
                    pt = times[-1]
                    row += f" {fmt_time(pt.median):>10} {gw.median / pt.median:6.2f}"
                else:
                    row += f" {'-':>10} {'-':>6}"
            row += f" {gbs:6.1f} {100 * gbs / bandwidth:6.0f}"
            print(row, flush=True)


def run_adam(rounds: int, pause: float, bandwidth: float) -> None:
    n = 6_000_000
    rng = np.random.default_rng(1)
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    state = {"t": 0}

    def fused() -> None:
        state["t"] += 1
        ops.adam_(p, g, m, v, step=min(state["t"], 1000), lr=lr)

    def numpy_adam() -> None:
        # What a careful NumPy user writes: in-place moments, one temporary per expression.
        t = 10
        np.multiply(m2, np.float32(b1), out=m2)
        m2.__iadd__(np.float32(1 - b1) * g)
        np.multiply(v2, np.float32(b2), out=v2)
        v2.__iadd__(np.float32(1 - b2) * g * g)
        denom = np.sqrt(v2) / np.float32(math.sqrt(1 - b2**t)) + np.float32(eps)
        p2.__isub__(np.float32(lr / (1 - b1**t)) * m2 / denom)

    t_fused, t_np = interleaved(
        [fused, numpy_adam], rounds=max(rounds, 5), pause=pause, block_seconds=0.1
    )
    gbs = 28 * n / t_fused.median / 1e9
    print(
        f"\nfused Adam, 6M float32 params: gradwise {fmt_time(t_fused.median)} "
        f"(min {fmt_time(t_fused.minimum)}), "
        f"NumPy expression {fmt_time(t_np.median)}: {t_np.median / t_fused.median:.1f}x faster; "
        f"{gbs:.1f} GB/s at 28 B/param = {100 * gbs / bandwidth:.0f}% of triad"
    )


STARTUP = """
import time
t0 = time.perf_counter()
import gradwise.core as gc
t1 = time.perf_counter()
r = gc.warmup()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, r.compiled_seconds(), r.cached_seconds())
"""


def run_startup(cold: bool) -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        runs = (
            [("cold (empty cache)", env), ("warm (cached)", env)]
            if cold
            else [("warm (cached)", dict(os.environ))]
        )
        print()
        for label, e in runs:
            out = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(STARTUP)],
                capture_output=True,
                text=True,
                env=e,
                check=True,
            )
            imp, wu, comp, cached = (float(v) for v in out.stdout.split())
            print(
                f"import + warmup(), {label:19}: import {imp:.2f} s, warmup {wu:.2f} s "
                f"(compiling {comp:.2f} s, loading {cached:.2f} s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="64K and 1M only, short pauses, warm start-up only"
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--pause", type=float, default=None, help="seconds between timed blocks")
    parser.add_argument(
        "--no-torch", action="store_true", help="leave PyTorch out even if importable"
    )
    parser.add_argument("--only", default="", help="comma-separated kernel names to run")
    parser.add_argument("--sizes", default="", help="comma-separated element counts")
    args = parser.parse_args()
    sizes = [2**16, 2**20] if args.quick else [2**10, 2**16, 2**20, 2**24]
    if args.sizes:
        sizes = [int(v) for v in args.sizes.split(",")]
    only = {v for v in args.only.split(",") if v}
    rounds = args.rounds or (3 if args.quick else 5)
    pause = args.pause if args.pause is not None else (0.02 if args.quick else 0.25)
    torch = None if args.no_torch else try_import_torch()
    print(
        f"gradwise.core kernels, float32, {gc.get_num_threads()} threads, "
        f"numpy {np.__version__}, numba {numba.__version__}"
        + (f", torch {torch.__version__}" if torch is not None else ", torch not installed")
    )
    report = gc.warmup(dtypes=("float32",))
    print(
        f"warmup: {report.seconds:.2f} s (compiled {report.compiled_seconds():.2f} s, "
        f"cached {report.cached_seconds():.2f} s)"
    )
    bandwidth = triad_bandwidth(rounds, pause)
    print(f"triad bandwidth: {bandwidth:.1f} GB/s\n")
    run_kernels(sizes, rounds, pause, bandwidth, torch, only)
    if not only:
        run_adam(rounds, pause, bandwidth)
        run_startup(cold=not args.quick)


if __name__ == "__main__":
    main()
