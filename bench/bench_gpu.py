"""PyTorch LeNet-5 training speed on a GPU, through the course's own training loop.

    python bench/bench_gpu.py [--batch 128 256 512] [--epochs 3] [--images 60000] [--variant modern]

Trains ``cnnlab.torch_ref.LeNet5`` with ``cnnlab.torch_ref.train`` (the loop notebook 07 uses:
data moved to the device once, shuffled batches, SGD with momentum, no progress bar) on
``--images`` random 1x32x32 float32 images with random labels (only the speed is measured), one
warm-up epoch and then ``--epochs`` timed epochs per batch size; CUDA is synchronised before
the clock stops. Prints images/s per batch size against the goal of the performance issue
(>= 50,000 images/s) and the card's name, for the README.

Without a CUDA device it says so and exits 0 (the goal applies where a GPU is available);
``--cpu`` runs the same measurement on the CPU, for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import goal_line, machine  # noqa: I001 - also puts the repo on sys.path

GOAL = 50_000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--variant", default="modern")
    parser.add_argument("--cpu", action="store_true", help="measure on the CPU instead (no goal)")
    args = parser.parse_args(argv)

    import torch

    from cnnlab import torch_ref

    print(machine())
    if args.cpu:
        dev, card = torch.device("cpu"), f"CPU, {torch.get_num_threads()} threads"
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
        card = f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"
    else:
        print("no CUDA GPU on this machine: the GPU goal (>= 50,000 images/s) cannot be measured here "
              "(--cpu measures the CPU instead)")
        return 0
    print(f"device: {card}, torch {torch.__version__}; LeNet-5 ({args.variant}), {args.images:,} images "
          f"1x32x32 float32, 1 warm-up + {args.epochs} timed epochs per batch size")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, 1, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.images,), generator=gen)
    best = 0.0
    print(f"{'batch':>6}{'images/s':>12}{'s/epoch':>10}")
    for batch in args.batch:
        model = torch_ref.LeNet5(args.variant, seed=0)
        torch_ref.train(model, (x, y), epochs=1, batch_size=batch, device=dev, progress=False)   # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch_ref.train(model, (x, y), epochs=args.epochs, batch_size=batch, device=dev, progress=False)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        rate = args.images * args.epochs / seconds
        best = max(best, rate)
        print(f"{batch:>6}{rate:>12,.0f}{seconds / args.epochs:>10.2f}")
    if dev.type == "cuda":
        print(goal_line("best PyTorch LeNet-5 training rate on the GPU", best / 1000, GOAL / 1000, True, "k images/s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
