"""Train the digits MLP for many steps and report resident-set growth (issue 7).

Usage: ``python scripts/memory_soak.py [STEPS]`` (default 10,000). The model is
``nn.MLP([64, 128, 64, 10])`` with Adam and cross-entropy over shuffled batches of 64.
RSS is read from ``/proc/self/statm`` (``resource.getrusage`` peak where /proc is
missing) after a 500-step warm-up and then every 1,000 steps. Exit status 1 if RSS grew by
5 MB or more after the warm-up.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

import gradwise.autograd as ag
from gradwise import loss, nn, optim
from gradwise.nn.data import DataLoader, TensorDataset

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "data" / "digits.npz"
LIMIT = 5 * 1024 * 1024


def rss_bytes() -> int:
    """Current resident set size (peak RSS where /proc is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def main() -> int:
    """Run the soak; print RSS after warm-up, every 1,000 steps, and the growth."""
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    warm_up = min(500, steps // 10)
    with np.load(DIGITS) as f:
        x = f["images"].reshape(len(f["images"]), -1).astype(np.float32) / np.float32(16.0)
        y = f["labels"].astype(np.int64)
    ag.manual_seed(0)
    model = nn.MLP([64, 128, 64, 10])
    opt = optim.Adam(model.parameters(), lr=1e-3)
    crit = loss.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    start = time.perf_counter()
    done, base, last = 0, 0, 0.0
    samples: list[tuple[int, int]] = []
    while done < steps:
        for xb, yb in loader:
            opt.zero_grad()
            out = crit(model(xb), yb)
            out.backward()
            opt.step()
            done += 1
            if done == warm_up:
                gc.collect()
                base = rss_bytes()
                samples.append((done, base))
            elif done > warm_up and done % 1000 == 0:
                samples.append((done, rss_bytes()))
            if done == steps:
                last = out.item()
                break
    gc.collect()
    end = rss_bytes()
    seconds = time.perf_counter() - start
    for step, rss in samples:
        print(f"step {step:6d}: RSS {rss / 2**20:8.2f} MiB")
    growth = end - base
    print(
        f"memory_soak: {steps} steps in {seconds:.1f} s ({seconds / steps * 1e3:.2f} ms/step), "
        f"final loss {last:.4f}; RSS after warm-up {base / 2**20:.2f} MiB, at the end "
        f"{end / 2**20:.2f} MiB, growth {growth / 1024:.1f} KiB (limit {LIMIT // 1024} KiB)"
    )
    return 0 if growth < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
