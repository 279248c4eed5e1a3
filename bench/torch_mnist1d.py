#!/usr/bin/python3
"""torch_mnist1d.py - PyTorch reference for stride's MNIST-1D training-speed benchmark.

Trains the network of "Understanding Deep Learning" figure 10.8 the book's way (plain SGD,
learning rate 0.01, batch 100, cross-entropy, training set reshuffled every epoch) and
prints one JSON line with the training speed:

    {"impl": "pytorch", "model": "cnn", "steps": 20000, "seconds": 14.2, "steps_per_s": 1408.5, ...}

Models (--model):
  cnn  Conv1d(1,15,3,stride 2) ReLU Conv1d(15,15,3,stride 2) ReLU Conv1d(15,15,3,stride 2)
       ReLU Flatten Linear(60,10): 2,050 parameters
  mlp  40 -> 285 -> 135 -> 60 -> 10 with ReLU: 59,065 parameters

Data: train_x.npy (4000 x 40 float32) and train_y.npy (4000 labels) from --data DIR, or by
default from tests/data/mnist1d/ or ../shared/data/mnist1d/ beside the repository, or else
random data of the same shape (the speed does not depend on the values).

Run with Debian's PyTorch: /usr/bin/python3 bench/torch_mnist1d.py [--steps N] [--model cnn|mlp]
bench/run.sh sets OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=2 for it.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import blas_in_use  # noqa: E402  (the same check for both PyTorch sides)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = [os.path.join(REPO, "tests", "data", "mnist1d"),
                os.path.join(REPO, "..", "shared", "data", "mnist1d")]


def make_model(name):
    if name == "cnn":
        return nn.Sequential(
            nn.Conv1d(1, 15, 3, stride=2), nn.ReLU(),   # 40 -> 19
            nn.Conv1d(15, 15, 3, stride=2), nn.ReLU(),  # 19 -> 9
            nn.Conv1d(15, 15, 3, stride=2), nn.ReLU(),  # 9 -> 4
            nn.Flatten(), nn.Linear(60, 10))
    return nn.Sequential(
        nn.Linear(40, 285), nn.ReLU(), nn.Linear(285, 135), nn.ReLU(),
        nn.Linear(135, 60), nn.ReLU(), nn.Linear(60, 10))


def load_data(data_dir):
    """Returns (x, y, where): x float32 (N, 40), y int64 (N,), where = the folder or "random"."""
    dirs = [data_dir] if data_dir else DEFAULT_DATA
    for d in dirs:
        fx, fy = os.path.join(d, "train_x.npy"), os.path.join(d, "train_y.npy")
        if os.path.exists(fx) and os.path.exists(fy):
            x = torch.from_numpy(np.load(fx).astype(np.float32).reshape(-1, 40))
            y = torch.from_numpy(np.load(fy).astype(np.int64).reshape(-1))
            if x.shape[0] != y.shape[0]:
                sys.exit("torch_mnist1d: %s: %d signals but %d labels" % (d, x.shape[0], y.shape[0]))
            return x, y, os.path.normpath(d)
    if data_dir:
        sys.exit("torch_mnist1d: no train_x.npy and train_y.npy in %s" % data_dir)
    print("torch_mnist1d: MNIST-1D not found, timing on random data", file=sys.stderr)
    g = torch.Generator().manual_seed(0)
    return torch.randn(4000, 40, generator=g), torch.randint(0, 10, (4000,), generator=g), "random"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20000, help="timed SGD steps (default 20000)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed steps first (default 200)")
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--data", help="folder with train_x.npy and train_y.npy")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("torch_mnist1d: --steps and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y, where = load_data(args.data)
    n, batch = x.shape[0], 100
    if args.model == "cnn":
        x = x.reshape(n, 1, 40)  # (N, C, L)
    model = make_model(args.model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    perm, pos = None, n  # an epoch is one pass through a fresh permutation

    def step():
        nonlocal perm, pos
        if pos + batch > n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + batch]
        pos += batch
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "model": args.model, "steps": args.steps,
                      "seconds": round(seconds, 4), "steps_per_s": round(args.steps / seconds, 1),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": blas_in_use(), "data": where,
                      "final_loss": round(float(loss), 4)}))


if __name__ == "__main__":
    main()
