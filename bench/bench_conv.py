"""Benchmark cnnlab.numpy_ref's convolution (forward + backward) against PyTorch on the CPU.

Usage:  python bench/bench_conv.py [--rounds 15] [--number 3] [--naive-batch 2] [--dtype float32] [--no-naive]

For each case it times one forward + backward pass of
  - numpy fast:  conv_forward + conv_backward (im2col, blocked matrix products, col2im by slices),
  - torch CPU:   torch.nn.functional.conv2d forward + autograd backward (input, weight and bias
                 gradients, like conv_backward), PyTorch's default thread count (printed),
  - numpy naive: conv_forward_naive + conv_backward_naive (Python loops), timed on a reduced batch
                 of --naive-batch images and scaled linearly to the full batch (marked "scaled").
Each round times --number calls of numpy fast and of torch back to back (which goes first
alternates), so a burst of load from other processes hits both alike. A case's ratio is the median
over rounds of the per-round ratio numpy/torch; the spread across rounds is printed beside it.
Process settings are cnnlab's own (cnnlab._runtime, printed), as in a notebook.

Goals (issue 10): every case's ratio <= 2.0, and the median over the cases <= 1.5.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from _common import goal_line, load_now, load_warning, machine  # noqa: I001 - also puts the repo on sys.path

CASES: list[tuple[str, tuple[int, int, int, int], tuple[int, int, int, int], int]] = [
    ("LeNet C1", (128, 1, 32, 32), (6, 1, 5, 5), 0),
    ("LeNet C3", (128, 6, 14, 14), (16, 6, 5, 5), 0),
    ("CS231n 7x7 pad 3", (50, 3, 32, 32), (32, 3, 7, 7), 3),
]
CLOCK = time.perf_counter  # time.thread_time with --cpu-time
GOAL_EACH = 2.0
GOAL_MEDIAN = 1.5


def paired_times(fns: list[Callable[[], object]], rounds: int, number: int) -> np.ndarray:
    """(rounds, len(fns)) seconds per call: each round times ``number`` calls of every function.

    One warm-up call each first; the order within a round alternates (forward, then reversed).
    """
    for fn in fns:
        fn()
    out = np.empty((rounds, len(fns)))
    for r in range(rounds):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start = CLOCK()
            for _ in range(number):
                fns[i]()
            out[r, i] = (CLOCK() - start) / number
    return out


def main(argv: list[str] | None = None) -> list[float]:
    """Run every case, print the table and the goal lines; return the per-case ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=3, help="calls per timed block")
    parser.add_argument("--naive-batch", type=int, default=2, help="images for the loop version (result scaled)")
    parser.add_argument("--no-naive", action="store_true", help="skip the (slow) loop version")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="one thread on both sides, timed by the thread's CPU time: a per-core comparison that "
        "load from other processes barely moves (sets CNNLAB_NUMPY_THREADS=1, torch threads 1)",
    )
    args = parser.parse_args(argv)

    import os

    global CLOCK
    if args.cpu_time:
        os.environ["CNNLAB_NUMPY_THREADS"] = "1"
        args.torch_threads = 1
        CLOCK = time.thread_time

    import torch
    import torch.nn.functional as F

    from cnnlab import _runtime
    from cnnlab import numpy_ref as nr

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    dtype = np.dtype(args.dtype)
    print(f"machine: {machine()}")
    print(f"numpy {np.__version__}, torch {torch.__version__}; torch threads: {torch.get_num_threads()}; dtype: {dtype}")
    print(f"cnnlab runtime: {_runtime.describe()}")
    print("timing: " + ("CPU time of the one computing thread (--cpu-time)" if args.cpu_time else "wall clock"))
    print(f"{args.rounds} rounds of {args.number} calls each; naive times measured on {args.naive_batch} images, scaled to the batch")
    header = (
        f"{'case':<18} {'x':<16} {'w':<12} {'pad':>3} | {'numpy fast':>10} {'torch CPU':>10} {'naive':>9} |"
        f" {'fast/torch':>10} {'(min-max)':>11} {'naive/fast':>10}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    ratios = []
    for name, x_shape, w_shape, pad in CASES:
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        dout = rng.standard_normal(nr.conv_forward(x[:1], w, b, pad=pad)[0].shape[1:]).astype(dtype)
        dout = np.broadcast_to(dout, (x_shape[0], *dout.shape)).copy()

        def fast() -> None:
            _, cache = nr.conv_forward(x, w, b, pad=pad)
            nr.conv_backward(dout, cache)

        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tdout = torch.tensor(dout)

        def torch_cpu() -> None:
            tx.grad = tw.grad = tb.grad = None
            F.conv2d(tx, tw, tb, padding=pad).backward(tdout)

        t = paired_times([fast, torch_cpu], args.rounds, args.number)
        per_round = t[:, 0] / t[:, 1]
        ratio = float(np.median(per_round))
        ratios.append(ratio)
        naive_text, naive_ratio = "-", "-"
        if not args.no_naive:
            xs, ds = x[: args.naive_batch], dout[: args.naive_batch]

            def naive() -> None:
                _, cache = nr.conv_forward_naive(xs, w, b, pad=pad)
                nr.conv_backward_naive(ds, cache)

            t_naive = float(np.min(paired_times([naive], 2, 1))) * x_shape[0] / args.naive_batch
            naive_text, naive_ratio = f"{t_naive * 1e3:.0f} ms", f"{t_naive / np.median(t[:, 0]):.0f}x"
        print(
            f"{name:<18} {'x'.join(map(str, x_shape)):<16} {'x'.join(map(str, w_shape)):<12} {pad:>3} | "
            f"{np.median(t[:, 0]) * 1e3:>7.2f} ms {np.median(t[:, 1]) * 1e3:>7.2f} ms {naive_text:>9} | "
            f"{ratio:>9.2f}x {f'({per_round.min():.2f}-{per_round.max():.2f})':>11} {naive_ratio:>10}"
        )
    for (name, *_), ratio in zip(CASES, ratios):
        print(goal_line(f"{name}: numpy/torch time", ratio, GOAL_EACH, higher_is_better=False, unit="x"))
    print(goal_line("median over the cases", float(np.median(ratios)), GOAL_MEDIAN, higher_is_better=False, unit="x"))
    print(f"load average at the end: {load_now()}")
    warning = load_warning()
    if warning and not args.cpu_time:
        print(warning)
    return ratios


if __name__ == "__main__":
    main()
