"""Time per MLP training step (forward, backward, update): gradwise, NumPy, PyTorch.

Three MLPs (ReLU between layers, softmax cross-entropy) in float32:

| config | sizes | batch |
|---|---|---|
| small | 64-128-64-10 (on the bundled digits) | 64 |
| medium | 784-512-256-10 | 256 |
| large | 784-2048-2048-10 | 512 |

each with SGD (momentum 0.9) and Adam. Contenders: gradwise, a hand-written NumPy MLP
(the forward, backward and update a person writes with NumPy expressions) and PyTorch
eager when importable. All three run in the same process, interleaved (their order
rotates every round), with a 0.25 s pause and one untimed step before each timed block;
the table gives the median and minimum per step and the ratios of medians.

    python benchmarks/train_mlp.py            # every config, 7 rounds
    python benchmarks/train_mlp.py --quick    # small and medium, 3 rounds
    python benchmarks/train_mlp.py --only small,large --rounds 9
    python benchmarks/train_mlp.py --startup --memory   # only those two tables

Then, in fresh processes: import plus the first training step of the small config with a
warm kernel cache and with an empty one (``NUMBA_CACHE_DIR`` pointing at a new folder),
and the peak resident memory that 5 steps of the large config add over the process after
its imports (gradwise against PyTorch). It reports; it does not fail.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import fmt_time, interleaved, try_import_torch

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.core import get_num_threads

Arr = np.ndarray[Any, Any]
Step = Callable[[], object]
DIGITS = Path(__file__).resolve().parents[1] / "examples" / "data" / "digits.npz"


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]
    batch: int


CONFIGS = [
    Config("small", (64, 128, 64, 10), 64),
    Config("medium", (784, 512, 256, 10), 256),
    Config("large", (784, 2048, 2048, 10), 512),
]
LR_SGD, MOMENTUM, LR_ADAM = 0.01, 0.9, 1e-3


def batch_for(cfg: Config) -> tuple[Arr, Arr]:
    """A fixed float32 batch and int64 labels (digits rows for the small config)."""
    rng = np.random.default_rng(0)
    if cfg.name == "small":
        with np.load(DIGITS) as f:
            x = f["images"].reshape(-1, 64)[: cfg.batch].astype(np.float32) / np.float32(16)
            y = f["labels"][: cfg.batch].astype(np.int64)
        return x, y
    x = rng.standard_normal((cfg.batch, cfg.sizes[0])).astype(np.float32)
    y = rng.integers(0, cfg.sizes[-1], cfg.batch).astype(np.int64)
    return x, y


def init_weights(sizes: tuple[int, ...]) -> list[tuple[Arr, Arr]]:
    """PyTorch-style U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights (out, in) and biases."""
    rng = np.random.default_rng(1)
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = 1.0 / math.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, n_out).astype(np.float32)
        layers.append((w, b))
    return layers


# ---- gradwise -----------------------------------------------------------------------------


def gradwise_step(cfg: Config, opt_name: str) -> Step:
    model = nn.MLP(list(cfg.sizes))
    with ag.no_grad():
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        for lin, (w, b) in zip(linears, init_weights(cfg.sizes), strict=True):
            lin.weight.data[...] = w
            assert lin.bias is not None
            lin.bias.data[...] = b
    params = list(model.parameters())
    opt: optim.Optimizer
    if opt_name == "sgd":
        opt = optim.SGD(params, lr=LR_SGD, momentum=MOMENTUM)
    else:
        opt = optim.Adam(params, lr=LR_ADAM)
    criterion = loss.CrossEntropyLoss()
    xa, ya = batch_for(cfg)
    x, y = ag.tensor(xa), ag.tensor(ya)

    def step() -> object:
        opt.zero_grad()
        out = criterion(model(x), y)
        out.backward()
        opt.step()
        return out

    return step


# ---- hand-written NumPy -------------------------------------------------------------------


def numpy_step(cfg: Config, opt_name: str) -> Step:
    layers = init_weights(cfg.sizes)
    params = [p for wb in layers for p in wb]
    state1 = [np.zeros_like(p) for p in params]
    state2 = [np.zeros_like(p) for p in params]
    x, y = batch_for(cfg)
    n = len(y)
    rows = np.arange(n)
    t = [0]
    b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)

    def step() -> object:
        acts = [x]
        h = x
        for i, (w, b) in enumerate(layers):
            h = h @ w.T + b
            if i < len(layers) - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        value = -np.log(p[rows, y]).mean()
        g = p
        g[rows, y] -= 1
        g /= n
        grads: list[Arr] = []
        for i in range(len(layers) - 1, -1, -1):
            w, _ = layers[i]
            a = acts[i]
            grads = [g.T @ a, g.sum(axis=0), *grads]
            if i:
                g = g @ w
                g *= a > 0
        t[0] += 1
        for j, (p_, g_) in enumerate(zip(params, grads, strict=True)):
            if opt_name == "sgd":
                buf = state1[j]
                if t[0] == 1:
                    buf[...] = g_
                else:
                    buf *= MOMENTUM
                    buf += g_
                p_ -= np.float32(LR_SGD) * buf
            else:
                m, v = state1[j], state2[j]
                m *= b1
                m += (1 - b1) * g_
                v *= b2
                v += (1 - b2) * g_ * g_
                step_size = LR_ADAM / (1 - 0.9 ** t[0])
                denom = np.sqrt(v) / np.float32(math.sqrt(1 - 0.999 ** t[0])) + eps
                p_ -= np.float32(step_size) * m / denom
        return value

    return step


# ---- PyTorch ------------------------------------------------------------------------------


def torch_step(torch: Any, cfg: Config, opt_name: str) -> Step:
    mods: list[Any] = []
    for i, (w, b) in enumerate(init_weights(cfg.sizes)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(cfg.sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=LR_SGD, momentum=MOMENTUM)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
    criterion = torch.nn.CrossEntropyLoss()
    xa, ya = batch_for(cfg)
    x, y = torch.from_numpy(xa), torch.from_numpy(ya)

    def step() -> object:
        opt.zero_grad()
        out = criterion(model(x), y)
        out.backward()
        opt.step()
        return out

    return step


# ---- start-up and memory, in fresh processes ---------------------------------------------

_STARTUP = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import numpy as np
    import gradwise.autograd as ag
    from gradwise import loss, nn, optim
    t1 = time.perf_counter()
    ag.manual_seed(0)
    model = nn.MLP([64, 128, 64, 10])
    opt = optim.{opt}(model.parameters(), lr=1e-3)
    x = ag.randn(64, 64)
    y = ag.tensor(np.arange(64) % 10)
    opt.zero_grad()
    loss.CrossEntropyLoss()(model(x), y).backward()
    opt.step()
    t2 = time.perf_counter()
    print(t1 - t0, t2 - t0)
    """
)

# The floor of any program whose kernels are Numba's: import NumPy and Numba, then load one
# trivial kernel from the disk cache (Numba sets up its typing and lowering registries on the
# first load). SciPy is hidden as gradwise hides it (see gradwise.core._config.import_hiding
# and _jit.numba_array_functions), so the two do the same non-optional work.
_NUMBA_FLOOR = textwrap.dedent(
    """
    import sys
    import time
    t0 = time.perf_counter()
    import numpy as np
    sys.modules["scipy"] = sys.modules["scipy.linalg"] = None
    import numba
    del sys.modules["scipy"]
    t1 = time.perf_counter()

    @numba.njit(cache=True)
    def total(x):
        s = 0.0
        for v in x:
            s += v
        return s

    total(np.ones(3))
    del sys.modules["scipy.linalg"]
    t2 = time.perf_counter()
    print(t1 - t0, t2 - t0)
    """
)

_NO_SCIPY = "import sys; sys.modules['scipy'] = None  # as on a machine without SciPy\n"

_MEMORY = textwrap.dedent(
    """
    import sys
    import numpy as np
    which = sys.argv[1]
    sizes, batch = (784, 2048, 2048, 10), 512
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((batch, 784)).astype(np.float32)
    ya = rng.integers(0, 10, batch).astype(np.int64)
    if which == "gradwise":
        import gradwise.autograd as ag
        from gradwise import loss, nn, optim
        build = lambda: nn.MLP(list(sizes))
        make_opt = lambda m: optim.Adam(m.parameters(), lr=1e-3)
        crit = loss.CrossEntropyLoss(); x, y = ag.tensor(xa), ag.tensor(ya)
        ag.manual_seed(0)
        m = nn.MLP([784, 16, 10]); o = make_opt(m)  # load the kernels (and numba) first
        o.zero_grad(); crit(m(x), y).backward(); o.step(); del m, o
    else:
        import torch
        torch.set_num_threads({threads})
        def build():
            layers = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(torch.nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers.append(torch.nn.ReLU())
            return torch.nn.Sequential(*layers)
        make_opt = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3)
        crit = torch.nn.CrossEntropyLoss(); x, y = torch.from_numpy(xa), torch.from_numpy(ya)
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1])
    base = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")
    model = build(); opt = make_opt(model)
    for _ in range(5):
        opt.zero_grad(); crit(model(x), y).backward(); opt.step()
    print(base, status("VmHWM:"))
    """
)


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    return [float(v) for v in out.stdout.split()]


def _python_file(path: str, env: dict[str, str]) -> list[float]:
    out = subprocess.run(
        [sys.executable, path], capture_output=True, text=True, env=env, check=True
    )
    return [float(v) for v in out.stdout.split()]


def run_startup(repeats: int) -> None:
    print(
        "\nstart-up: import, then import plus one training step (small MLP), fresh process;"
        "\n(bytecode caching on, as on a user's machine: PYTHONDONTWRITEBYTECODE is unset);"
        "\nNumba's floor, in the same rounds: NumPy and Numba imported, one cached kernel loaded"
    )
    for opt in ("SGD", "Adam"):
        code = _STARTUP.format(opt=opt)
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            floor_script = os.path.join(cache, "numba_floor.py")  # Numba caches only files
            with open(floor_script, "w") as f:
                f.write(_NUMBA_FLOOR)
            _python_file(floor_script, env=env)  # compiles and caches its kernel
            _python("import gradwise.nn, gradwise.optim, gradwise.loss", env=env)  # .pyc files
            cold = _python(code, env=env)
            warm, bare, floor = [], [], []
            for _ in range(repeats):  # interleaved
                warm.append(_python(code, env=env)[1])
                bare.append(_python(_NO_SCIPY + code, env=env)[1])
                floor.append(_python_file(floor_script, env=env)[1])
        print(
            f"  {opt:<5} cold (empty cache): import {cold[0]:.2f} s, first step done at "
            f"{cold[1]:.2f} s | warm: first step done at {_med_min(warm)}"
            f" | warm, SciPy hidden: {_med_min(bare)} | Numba's floor: {_med_min(floor)}"
        )
    print(
        "  (Numba's BLAS probe would import scipy.linalg, if installed, as it loads its first"
        "\n  kernel: about 0.2 s; gradwise skips that probe unless GRADWISE_NUMBA_BLAS_PROBE=1.)"
    )


def _med_min(seconds: list[float]) -> str:
    s = sorted(seconds)
    return f"median {s[len(s) // 2]:.2f} s (min {s[0]:.2f})"


def run_memory(torch_available: bool, threads: int) -> None:
    print(
        "\npeak memory, large MLP with Adam: peak RSS while building it and taking 5 steps,"
        "\nabove the RSS after imports (and, for gradwise, after its kernels are loaded)"
    )
    for which in ("gradwise", "torch") if torch_available else ("gradwise",):
        base, peak = _python(_MEMORY.format(threads=threads), which)
        print(f"  {which:<8} {(peak - base) / 1024:8.1f} MB above {base / 1024:.0f} MB")


# ---- main ---------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small and medium, 3 rounds")
    p.add_argument("--only", type=str, default="", help="configs, e.g. small,large")
    p.add_argument("--rounds", type=int, default=0, help="timed rounds per contender")
    p.add_argument("--optimizers", type=str, default="sgd,adam")
    p.add_argument("--startup", action="store_true", help="only the start-up table")
    p.add_argument("--memory", action="store_true", help="only the memory table")
    args = p.parse_args()
    if args.startup or args.memory:
        if args.startup:
            run_startup(repeats=5)
        if args.memory:
            run_memory(try_import_torch() is not None, get_num_threads())
        return
    rounds = args.rounds or (3 if args.quick else 7)
    names = args.only.split(",") if args.only else (["small", "medium"] if args.quick else [])
    configs = [c for c in CONFIGS if not names or c.name in names]
    torch = try_import_torch()
    threads = get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(
        f"train_mlp: float32, {threads} threads, {rounds} rounds, median (min) per step; "
        f"PyTorch {torch.__version__ if torch is not None else 'not installed'}"
    )
    header = f"{'config':<8} {'opt':<5} {'gradwise':>18} {'NumPy':>18}"
    header += f" {'PyTorch':>18} {'gw/NumPy':>9} {'gw/PyTorch':>11}" if torch is not None else ""
    print(header)
    for cfg in configs:
        for opt_name in args.optimizers.split(","):
            contenders = [gradwise_step(cfg, opt_name), numpy_step(cfg, opt_name)]
            if torch is not None:
                contenders.append(torch_step(torch, cfg, opt_name))
            block = 0.05 if cfg.name == "small" else 0.25
            times = interleaved(contenders, rounds=rounds, pause=0.25, block_seconds=block)
            cells = [f"{fmt_time(t.median)} ({fmt_time(t.minimum)})" for t in times]
            line = f"{cfg.name:<8} {opt_name:<5} " + " ".join(f"{c:>18}" for c in cells)
            line += f" {times[0].median / times[1].median:>9.2f}"
            if torch is not None:
                line += f" {times[0].median / times[2].median:>11.2f}"
            print(line, flush=True)
    if not args.quick:
        run_startup(repeats=5)
        run_memory(torch is not None, threads)


if __name__ == "__main__":
    main()
