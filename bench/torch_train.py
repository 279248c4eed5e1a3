#!/usr/bin/python3
"""torch_train.py - PyTorch side of stride's training-speed benchmarks (bench/train.sh).

Times training steps (forward, cross-entropy, backward, SGD with momentum 0.9) of the same
network stride builds, on random data of the benchmark's shape, and prints one JSON line:

    {"impl": "pytorch", "model": "lenet5", "batch": 64, "steps": 300, "seconds": 1.0, "images_per_s": 19000.0, ...}

Models (--model), as stride's zoo names them:
  lenet5          LeNet-5 for 28x28 (conv1 padding 2), 61,706 parameters
  resnet18-cifar  torchvision's resnet18 with the CIFAR stem (3x3 conv1, no max-pool), 10 classes
With --epoch-fashion-mnist the timed work is one epoch of lenet5 on the real Fashion-MNIST
training set (read from Debian's dataset-fashion-mnist, normalised, reshuffled), as
`stride train lenet5 --data fashion-mnist --epochs 1` does it.
Run with Debian's PyTorch: /usr/bin/python3 bench/torch_train.py --model lenet5 --batch 64 --steps 300
bench/train.sh sets OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=2 for it.
"""
import argparse
import gzip
import json
import time

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def make(name):
    if name == "lenet5":
        return LeNet5(), (1, 28, 28)
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m, (3, 32, 32)


def fashion_mnist():
    d = "/usr/share/datasets/fashion-mnist/"
    with gzip.open(d + "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    with gzip.open(d + "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = (x - x.mean()) / x.std()
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["lenet5", "resnet18-cifar"], required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epoch-fashion-mnist", action="store_true", help="time one epoch on Fashion-MNIST (lenet5)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, shape = make(args.model)
    model.train()
    x = torch.randn(args.batch, *shape)
    y = torch.randint(0, 10, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    if args.epoch_fashion_mnist:
        xs, ys = fashion_mnist()
        for _ in range(args.warmup):
            step()
        t0 = time.perf_counter()
        perm = torch.randperm(xs.shape[0])
        steps = 0
        for i in range(0, xs.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
            steps += 1
        sec = time.perf_counter() - t0
        print(json.dumps({"impl": "pytorch", "model": args.model, "batch": args.batch, "steps": steps,
                          "seconds": round(sec, 4), "images_per_s": round(xs.shape[0] / sec, 1),
                          "torch": torch.__version__, "threads": torch.get_num_threads()}))
        return
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sec = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "model": args.model, "batch": args.batch, "steps": args.steps,
                      "seconds": round(sec, 4), "images_per_s": round(args.batch * args.steps / sec, 1),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
