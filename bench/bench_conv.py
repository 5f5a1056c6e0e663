"""Benchmark cnnlab.numpy_ref's convolution (forward + backward) against PyTorch on the CPU.

Usage:  python bench/bench_conv.py [--repeat 7] [--naive-batch 2] [--dtype float32]

For each case it prints the time of one forward + backward pass of
  - numpy fast:  conv_forward + conv_backward (im2col, one matrix product, col2im by slices),
  - numpy naive: conv_forward_naive + conv_backward_naive (Python loops), timed on a reduced batch
                 of --naive-batch images and scaled linearly to the full batch (marked "scaled"),
  - torch CPU:   torch.nn.functional.conv2d forward + autograd backward,
and the ratios fast/torch and naive/fast. Times are the best of --repeat rounds (each the mean of --number calls), numpy
and torch taking turns within a round: the least disturbed figure on a shared machine.
torch.set_num_threads is set to the number of CPU cores (printed); NumPy's BLAS uses its default.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab import numpy_ref as nr

CASES: list[tuple[str, tuple[int, int, int, int], tuple[int, int, int, int], int]] = [
    ("LeNet C1", (128, 1, 32, 32), (6, 1, 5, 5), 0),
    ("LeNet C3", (128, 6, 14, 14), (16, 6, 5, 5), 0),
    ("CS231n 7x7 pad 3", (50, 3, 32, 32), (32, 3, 7, 7), 3),
]


def best_times(fns: list[Callable[[], object]], repeat: int, number: int) -> list[float]:
    """Best over ``repeat`` rounds of the mean time of ``number`` calls of each function, in seconds.

    The functions take turns within every round (after one warm-up call each), so a burst of load
    from other processes hits all of them alike instead of skewing one.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / number)
    return best


def main(argv: list[str] | None = None) -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=3, help="calls per timed run")
    parser.add_argument("--naive-batch", type=int, default=2, help="images for the loop version (result scaled)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    dtype = np.dtype(args.dtype)
    print(f"cores: {cores}; torch threads: {torch.get_num_threads()}; dtype: {dtype}; numpy {np.__version__}, torch {torch.__version__}")
    print(f"naive times: measured on {args.naive_batch} images, scaled linearly to the full batch")
    header = f"{'case':<18} {'x':<16} {'w':<14} {'pad':>3} | {'numpy fast':>11} {'naive (scaled)':>15} {'torch CPU':>10} | {'fast/torch':>10} {'naive/fast':>10}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name, x_shape, w_shape, pad in CASES:
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        dout = rng.standard_normal(nr.conv_forward(x[:1], w, b, pad=pad)[0].shape[1:]).astype(dtype)
        dout = np.broadcast_to(dout, (x_shape[0], *dout.shape)).copy()

        def fast() -> None:
            _, cache = nr.conv_forward(x, w, b, pad=pad)
            nr.conv_backward(dout, cache)

        xs, ds = x[: args.naive_batch], dout[: args.naive_batch]

        def naive() -> None:
            _, cache = nr.conv_forward_naive(xs, w, b, pad=pad)
            nr.conv_backward_naive(ds, cache)

        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tdout = torch.tensor(dout)

        def torch_cpu() -> None:
            tx.grad = tw.grad = tb.grad = None
            F.conv2d(tx, tw, tb, padding=pad).backward(tdout)

        t_fast, t_torch = best_times([fast, torch_cpu], args.repeat, args.number)
        t_naive = best_times([naive], max(1, args.repeat // 3), 1)[0] * x_shape[0] / args.naive_batch
        print(
            f"{name:<18} {'x'.join(map(str, x_shape)):<16} {'x'.join(map(str, w_shape)):<14} {pad:>3} | "
            f"{t_fast * 1e3:>8.1f} ms {t_naive * 1e3:>12.0f} ms {t_torch * 1e3:>7.1f} ms | "
            f"{t_fast / t_torch:>9.2f}x {t_naive / t_fast:>9.0f}x"
        )


if __name__ == "__main__":
    main()
