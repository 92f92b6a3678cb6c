"""conv2d forward and forward+backward: gradwise against PyTorch and a NumPy im2col reference.

Batch 64, float32, 3x3 kernels with padding 1, on 8x8 and 28x28 inputs, for the two layers
of a small CNN: 1 -> 16 and 16 -> 32 channels. Contenders run interleaved with pauses
(``benchlib.interleaved``); the table gives medians, minimums and the ratios of gradwise's
median (and minimum) to each other contender's (< 1: gradwise is faster); on a shared
machine the ratio of minimums is the steadier one. The goal is a ratio to PyTorch
of at most 1.5 at 28x28.

    python benchmarks/conv.py             # 7 rounds
    python benchmarks/conv.py --quick     # 3 rounds, shorter pauses
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from benchlib import fmt_time, interleaved, try_import_torch
from numpy.lib.stride_tricks import sliding_window_view

import gradwise.core as gc
from gradwise.autograd import Tensor
from gradwise.nn.functional import conv2d

Arr = np.ndarray[Any, Any]


def numpy_forward(x: Arr, w: Arr, b: Arr) -> Arr:
    """im2col with a strided window view, then one GEMM (pad 1, stride 1)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # (N, C, OH, OW, kH, kW)
    n, _, oh, ow = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
    y = cols @ w.reshape(w.shape[0], -1).T + b
    out: Arr = y.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def numpy_forward_backward(x: Arr, w: Arr, b: Arr, g: Arr) -> tuple[Arr, Arr, Arr]:
    """Forward as above; backward dW = g^T cols, dx = full correlation of g with flipped W."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    n, _, oh, ow = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
    w2 = w.reshape(w.shape[0], -1)
    _ = cols @ w2.T + b
    g2 = g.transpose(0, 2, 3, 1).reshape(n * oh * ow, -1)
    dw = (g2.T @ cols).reshape(w.shape)
    db = g2.sum(axis=0)
    gp = np.pad(g, ((0, 0), (0, 0), (1, 1), (1, 1)))
    gwin = sliding_window_view(gp, w.shape[2:], axis=(2, 3))
    gcols = gwin.transpose(0, 2, 3, 1, 4, 5).reshape(n * x.shape[2] * x.shape[3], -1)
    wf = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(w.shape[1], -1)
    dx = (gcols @ wf.T).reshape(n, x.shape[2], x.shape[3], -1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(dx), dw, db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, pause = (3, 0.1) if args.quick else (7, 0.25)
    torch = try_import_torch()
    gc.warmup()
    rng = np.random.default_rng(0)
    print(
        f"threads: gradwise {gc.get_num_threads()}"
        + (f", torch {torch.get_num_threads()} (torch {torch.__version__})" if torch else "")
    )
    header = (
        f"{'case':34} {'gradwise':>10} {'(min)':>10} {'torch':>10} {'(min)':>10} "
        f"{'gw/torch':>8} {'(mins)':>7} {'numpy':>10} {'gw/numpy':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in (8, 28):
        for c_in, c_out in ((1, 16), (16, 32)):
            x = rng.standard_normal((64, c_in, size, size)).astype(np.float32)
            w = (rng.standard_normal((c_out, c_in, 3, 3)) * 0.1).astype(np.float32)
            b = rng.standard_normal(c_out).astype(np.float32)
            g = rng.standard_normal((64, c_out, size, size)).astype(np.float32)
            xg, wg, bg = Tensor(x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
            xr = Tensor(x, requires_grad=True)

            def gw_fwd(xg: Tensor = xg, wg: Tensor = wg, bg: Tensor = bg) -> object:
                from gradwise.autograd import no_grad

                with no_grad():
                    return conv2d(xg, wg, bg, padding=1)

            gg = Tensor(g)  # built once, as PyTorch's gradient below (Tensor() copies)

            def gw_bwd(
                xr: Tensor = xr, wg: Tensor = wg, bg: Tensor = bg, gg: Tensor = gg
            ) -> object:
                xr.grad = wg.grad = bg.grad = None
                y = conv2d(xr, wg, bg, padding=1)
                y.backward(gg)
                return y

            def np_fwd(x: Arr = x, w: Arr = w, b: Arr = b) -> object:
                return numpy_forward(x, w, b)

            def np_bwd(x: Arr = x, w: Arr = w, b: Arr = b, g: Arr = g) -> object:
                return numpy_forward_backward(x, w, b, g)

            runs: dict[str, list[Callable[[], object]]] = {
                "forward": [gw_fwd, np_fwd],
                "forward+backward": [gw_bwd, np_bwd],
            }
            if torch is not None:
                xt = torch.tensor(x)
                wt = torch.tensor(w, requires_grad=True)
                bt = torch.tensor(b, requires_grad=True)
                xtr = torch.tensor(x, requires_grad=True)
                gt = torch.tensor(g)

                def t_fwd(xt: Any = xt, wt: Any = wt, bt: Any = bt) -> object:
                    with torch.no_grad():
                        return torch.nn.functional.conv2d(xt, wt, bt, padding=1)

                def t_bwd(xtr: Any = xtr, wt: Any = wt, bt: Any = bt, gt: Any = gt) -> object:
                    xtr.grad = wt.grad = bt.grad = None
                    y = torch.nn.functional.conv2d(xtr, wt, bt, padding=1)
                    y.backward(gt)
                    return y

                runs["forward"].append(t_fwd)
                runs["forward+backward"].append(t_bwd)
            for what, fns in runs.items():
                times = interleaved(fns, rounds=rounds, pause=pause, block_seconds=0.1)
                gw, npy = times[0], times[1]
                name = f"{size}x{size} {c_in}->{c_out} {what}"
                row = f"{name:34} {fmt_time(gw.median):>10} {fmt_time(gw.minimum):>10} "
                if torch is not None:
                    tt = times[2]
                    row += (
                        f"{fmt_time(tt.median):>10} {fmt_time(tt.minimum):>10} "
                        f"{gw.median / tt.median:8.2f} {gw.minimum / tt.minimum:7.2f} "
                    )
                else:
                    row += f"{'-':>10} {'-':>10} {'-':>8} {'-':>7} "
                row += f"{fmt_time(npy.median):>10} {gw.median / npy.median:8.2f}"
                print(row, flush=True)


if __name__ == "__main__":
    main()
