"""Train LeNet-5 on real MNIST, today's network and the 1998 one, and report their test errors against
the 1998 paper's 0.95% (the goal: at most 1.0%).

Usage:  CNNLAB_DATA=/path/to/data python bench/bench_mnist.py [--epochs 10] [--batch-size 64] [--lr 0.03]
                     [--variant modern|classic|lenet1998|both] [--threads N] [--train-size N]

``--variant both`` (the default) trains ``LeNet5("modern")`` (SGD, ``--lr``) and then
``LeNet1998`` (the paper's network: sparse C3, scaled tanh, trainable subsampling, RBF outputs;
Adam, ``--lr-1998``) on the same images, and prints one line per network and a goal line each.

The four original IDX files must be in ``$CNNLAB_DATA/mnist/`` (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``; their MD5
checksums are verified); nothing is downloaded. The 28x28 digits are padded to 32x32 (as in the paper),
scaled to [0, 1] and standardised with the training set's mean and standard deviation.

It trains ``cnnlab.torch_ref.LeNet5`` with ``cnnlab.torch_ref.train`` (SGD with momentum 0.9, cosine
learning-rate schedule, no augmentation) on ``device()`` (CUDA, MPS or CPU), and prints the machine,
the seconds and images per second of every epoch, the test error after every epoch, and a final line
to copy into the README. On a CPU, torch uses ``--threads`` threads (default 1: on a small shared
machine more threads than free cores are slower). LeNet-5 (1998) reached 0.95% test error without
distortions, after 20 passes over the training set with a hand-tuned learning-rate schedule and a
stochastic diagonal Levenberg-Marquardt method.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

PAPER_ERROR = 0.0095  # LeCun, Bottou, Bengio, Haffner (1998), LeNet-5 without distortions
GOAL_ERROR = 0.010    # this course's goal for the full comparison


def machine(dev) -> str:  # noqa: ANN001 - a torch.device
    """Describe where the run happens: the GPU's name, or the CPU and its cores."""
    import torch

    if dev.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{dev.type.upper()} {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})")


def load(train_size: int | None) -> tuple[np.ndarray, ...]:
    """Return MNIST padded to 32x32 and standardised: (X_train, y_train, X_test, y_test)."""
    from cnnlab import data

    try:
        (xtr, ytr), (xte, yte) = data.load_mnist("mnist", "train"), data.load_mnist("mnist", "test")
    except FileNotFoundError as err:
        sys.exit(f"bench_mnist: {err}\n(set CNNLAB_DATA to the folder that holds mnist/; now it is "
                 f"{os.environ.get('CNNLAB_DATA', 'unset, so ~/.cache/cnnlab is used')})")
    if train_size:
        xtr, ytr = xtr[:train_size], ytr[:train_size]

    def pad(images: np.ndarray) -> np.ndarray:
        out = np.zeros((len(images), 1, 32, 32), dtype=np.float32)
        out[:, 0, 2:30, 2:30] = images / np.float32(255)
        return out

    xtr, xte = pad(xtr), pad(xte)
    mean, std = xtr.mean(), xtr.std()
    return (xtr - mean) / std, ytr, (xte - mean) / std, yte


def run(variant: str, data: tuple[np.ndarray, ...], args: argparse.Namespace, dev) -> float:  # noqa: ANN001
    """Train one network on ``data``; print every epoch and a summary; return the final test error."""
    from cnnlab import torch_ref
    from cnnlab.torch_ref.models import LeNet1998

    X_train, y_train, X_test, y_test = data
    make = (lambda: LeNet1998(seed=args.seed)) if variant == "lenet1998" else \
        (lambda: torch_ref.LeNet5(variant, seed=args.seed))
    opt, lr = ("adam", args.lr_1998) if variant == "lenet1998" else ("sgd", args.lr)
    print(f"\nLeNet-5 ({variant}): {args.epochs} epochs, batch {args.batch_size}, {opt} lr {lr} (cosine)")
    # warm-up: one short pass so that the first epoch's time does not include start-up costs
    torch_ref.train(make(), (X_train[:256], y_train[:256]), epochs=1, batch_size=args.batch_size, device=dev,
                    progress=False, optimizer=opt, lr=lr)
    model = make()
    start = time.perf_counter()
    history = torch_ref.train(model, (X_train, y_train), (X_test, y_test), epochs=args.epochs, lr=lr,
                              batch_size=args.batch_size, device=dev, progress=sys.stdout.isatty(), seed=args.seed,
                              optimizer=opt)
    total = time.perf_counter() - start
    errors = [1 - acc for acc in history["test_acc"]]
    for epoch, (sec, train_s, err) in enumerate(zip(history["seconds"], history["train_seconds"], errors), start=1):
        print(f"epoch {epoch:>2}: {sec:6.1f} s ({len(X_train) / train_s:>8,.0f} training images/s), "
              f"train loss {history['loss'][epoch - 1]:.4f}, test error {err:.2%}")
    final = errors[-1] if errors else float("nan")
    verdict = "at or below" if final <= PAPER_ERROR else f"{final / PAPER_ERROR:.1f}x"
    per_epoch = float(np.median(history["seconds"])) if history["seconds"] else float("nan")
    print(f"test error {final:.2%} after {args.epochs} epochs ({verdict} the 1998 paper's {PAPER_ERROR:.2%}); "
          f"{per_epoch:.1f} s per epoch, {total:.0f} s in all")
    print(f"goal: test error at most {GOAL_ERROR:.1%}: {final:.2%} -> {'met' if final <= GOAL_ERROR else 'NOT met'}")
    print(f"README: LeNet-5 ({variant}) on MNIST: {final:.2%} test error after {args.epochs} epochs "
          f"(paper: 0.95%), {per_epoch:.1f} s/epoch on {machine(dev)}")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.03, help="SGD learning rate of the modern and classic nets")
    parser.add_argument("--lr-1998", type=float, default=1e-3, help="Adam learning rate of the 1998 net")
    parser.add_argument("--variant", choices=("modern", "classic", "lenet1998", "both"), default="both")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--train-size", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from cnnlab import torch_ref

    dev = torch_ref.device()
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    data = load(args.train_size)
    print(f"machine: {machine(dev)}, load average {os.getloadavg()[0]:.1f}")
    print(f"MNIST: {len(data[0]):,} training and {len(data[2]):,} test images (the paper's 10,000)")
    variants = ("modern", "lenet1998") if args.variant == "both" else (args.variant,)
    finals = {v: run(v, data, args, dev) for v in variants}
    if len(finals) > 1:
        print("\n" + "  ".join(f"{v}: {e:.2%}" for v, e in finals.items()) + f"  (paper {PAPER_ERROR:.2%}, goal <= {GOAL_ERROR:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
