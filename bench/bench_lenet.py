"""LeNet-5 training speed: the course's NumPy LeNet against PyTorch on the CPU, in one process.

    python bench/bench_lenet.py [--rounds 15] [--steps 8] [--batch 128] [--variant modern]

One training step is what ``cnnlab.numpy_ref.train_numpy`` does per batch (``lenet_loss`` forward
and backward, then ``sgd_momentum`` on every parameter) and what ``cnnlab.torch_ref.train`` does
(forward, cross-entropy, backward, ``torch.optim.SGD`` with momentum), float32, on the same
batches of the embedded digits. Each round times ``--steps`` NumPy steps and ``--steps`` PyTorch
steps back to back (which goes first alternates), so a burst of load from other processes hits
both alike; the figures are medians over rounds, with the spread of the per-round ratio. Each
round also times PyTorch after ``--rest`` seconds idle: PyTorch right after NumPy work should be
just as fast (busy-waiting BLAS threads made it 3-10 times slower before cnnlab._runtime).

Process settings are cnnlab's own (``cnnlab._runtime``, printed): what a notebook and a grading
kernel get. PyTorch keeps its default thread count (printed).

Goal (issue 10): NumPy images/s >= 0.50 x PyTorch CPU images/s.

To see the process without cnnlab's settings: ``CNNLAB_RUNTIME=0 python bench/bench_lenet.py``
(or ``CNNLAB_BLAS_THREADS=0 CNNLAB_NUMPY_THREADS=1`` to keep only the allocator setting).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import goal_line, load_now, load_warning, machine  # noqa: I001 - also puts the repo on sys.path

GOAL = 0.50


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark, print the table and the goal line; return the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=8, help="steps of each framework per round")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variant", choices=["modern", "classic"], default="modern")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="one thread on both sides, timed by the thread's CPU time: a per-core comparison that "
        "load from other processes barely moves (sets CNNLAB_NUMPY_THREADS=1, torch threads 1)",
    )
    parser.add_argument("--rest", type=float, default=0.3, help="seconds idle before the 'rested' PyTorch block")
    args = parser.parse_args(argv)

    import os

    if args.cpu_time:
        os.environ["CNNLAB_NUMPY_THREADS"] = "1"
        args.torch_threads = 1
    clock = time.thread_time if args.cpu_time else time.perf_counter

    import torch
    import torch.nn.functional as F

    from cnnlab import _runtime
    from cnnlab import numpy_ref as nr
    from cnnlab import torch_ref as tr
    from cnnlab.data import digits

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    X_all, y_all = digits()[:2]
    need = args.steps * args.batch
    reps = -(-need // len(X_all))
    X = np.concatenate([X_all] * reps)[:need].astype(np.float32)
    y = np.concatenate([y_all] * reps)[:need].astype(np.int64)
    batches = [(X[i : i + args.batch], y[i : i + args.batch]) for i in range(0, need, args.batch)]

    params = {k: v.astype(np.float32) for k, v in nr.lenet_init(args.variant, seed=0).items()}
    configs = {k: {"learning_rate": 0.01, "momentum": 0.9} for k in params}

    def numpy_step(xb: np.ndarray, yb: np.ndarray) -> None:
        _, grads = nr.lenet_loss(params, xb, yb, variant=args.variant)
        for k in params:
            params[k], configs[k] = nr.sgd_momentum(params[k], grads[k], configs[k])

    model = tr.LeNet5(args.variant, seed=0).to("cpu")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tbatches = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

    def torch_step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def block(step, data) -> float:  # images per second over one block of steps
        start = clock()
        for xb, yb in data:
            step(xb, yb)
        return need / (clock() - start)

    print(f"machine: {machine()}")
    print(f"numpy {np.__version__}, torch {torch.__version__}; torch threads: {torch.get_num_threads()}")
    print(f"cnnlab runtime: {_runtime.describe()}")
    print("timing: " + ("CPU time of the one computing thread (--cpu-time)" if args.cpu_time else "wall clock"))
    print(f"LeNet-5 {args.variant}, float32, batch {args.batch}, {args.steps} steps per framework per round, {args.rounds} rounds")
    block(numpy_step, batches[:2])  # warm-up: allocator, BLAS, autograd
    block(torch_step, tbatches[:2])
    np_rate, t_rate, t_after, t_rested = [], [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            np_rate.append(block(numpy_step, batches))
            t_rate.append(block(torch_step, tbatches))
            t_after.append(t_rate[-1])
        else:
            t_rate.append(block(torch_step, tbatches))
            np_rate.append(block(numpy_step, batches))
        time.sleep(args.rest)  # idle: any busy-waiting thread pool falls asleep
        t_rested.append(block(torch_step, tbatches))
    ratios = np.array(np_rate) / np.array(t_rate)
    after_vs_rested = float(np.median(t_after) / np.median(t_rested))
    med_np, med_t, med_ratio = float(np.median(np_rate)), float(np.median(t_rate)), float(np.median(ratios))
    print(f"{'':<14} {'median':>9} {'min':>9} {'max':>9}  images/s")
    print(f"{'numpy':<14} {med_np:>9.0f} {min(np_rate):>9.0f} {max(np_rate):>9.0f}")
    print(f"{'torch CPU':<14} {med_t:>9.0f} {min(t_rate):>9.0f} {max(t_rate):>9.0f}")
    print(f"{'numpy/torch':<14} {med_ratio:>9.2f} {ratios.min():>9.2f} {ratios.max():>9.2f}  (per-round ratio)")
    print(f"{'torch rested':<14} {np.median(t_rested):>9.0f} {min(t_rested):>9.0f} {max(t_rested):>9.0f}  (after {args.rest:g} s idle)")
    print(goal_line("NumPy / PyTorch images/s, median of rounds", med_ratio, GOAL, higher_is_better=True))
    if not args.cpu_time:  # busy-waiting threads cost wall time, not the computing thread's CPU time
        print(
            f"PyTorch images/s right after NumPy steps / after {args.rest:g} s idle: {after_vs_rested:.2f} "
            f"(1.00: NumPy leaves nothing behind that slows PyTorch; before cnnlab._runtime, busy-waiting BLAS threads gave 0.1-0.4)"
        )
    print(f"load average at the end: {load_now()}")
    warning = load_warning()
    if warning and not args.cpu_time:
        print(warning)
    return med_ratio


if __name__ == "__main__":
    main()
