#!/usr/bin/env python3
"""PyTorch reference for the zoo's lenet5-classic (LeNet-5 of 1998, models.md A2).

Builds the network in PyTorch with stride's state_dict names (c1, s2, c3.0 .. c3.15, s4, c5,
f6, and the buffer rbf.centers), with PyTorch's default random weights, and writes
  tests/fixtures/models/lenet5-classic.weights.safetensors   weights and the RBF centres
  tests/fixtures/models/lenet5-classic.x.npy                 an input batch (2, 1, 32, 32)
  tests/fixtures/models/lenet5-classic.labels.npy            int64 class targets
  tests/fixtures/models/lenet5-classic.out.npy               eval-mode output (negated distances)
  tests/fixtures/models/lenet5-classic.ce.safetensors        cross-entropy: 'loss', every
                                                             parameter gradient, 'input'
The RBF centres are read from the character art in src/lenet_ops.c, so that the two
implementations share one drawing. tests/cli.sh runs `stride run` and `stride grad` on them.

Run with Debian's PyTorch: /usr/bin/python3 scripts/gen_lenet_fixtures.py tests/fixtures/models
"""
import os
import re
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# C3's connection table (models.md A2): which S2 maps feed each C3 map
C3_TABLE = [[(i + k) % 6 for k in range(3)] for i in range(6)] + \
           [[(i + k) % 6 for k in range(4)] for i in range(6)] + \
           [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4, 5]]


def digit_centers():
    """The 10 x 84 centres (+1 '#', -1 '.') from the 12 art rows in src/lenet_ops.c."""
    src = open(os.path.join(ROOT, "src", "lenet_ops.c")).read()
    block = src[src.index("digit_art[ST_DIGIT_H]"):]
    rows = re.findall(r'"([#. ]{79})"', block)[:12]
    assert len(rows) == 12, "could not read the 12 rows of digit art"
    w = np.array([[1.0 if rows[r][d * 8 + c] == "#" else -1.0 for r in range(12) for c in range(7)]
                  for d in range(10)], dtype=np.float32)
    return torch.from_numpy(w)


class ScaledTanh(nn.Module):
    """LeCun's f(a) = A tanh(S a), A = 1.7159, S = 2/3 (in float32, as stride)."""

    def forward(self, x):
        return 1.7159 * torch.tanh((2.0 / 3.0) * x)


class Rbf(nn.Module):
    """y_i = -sum_j (x_j - w_ij)^2 with fixed centres w (a buffer)."""

    def __init__(self, centers):
        super().__init__()
        self.register_buffer("centers", centers)

    def forward(self, x):
        return -((x[:, None, :] - self.centers[None, :, :]) ** 2).sum(-1)


class LeNet5Classic(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = nn.Conv2d(6, 6, 1, groups=6)        # per-map coefficient and bias
        self.c3 = nn.ModuleList([nn.Conv2d(len(t), 1, 5) for t in C3_TABLE])
        self.s4 = nn.Conv2d(16, 16, 1, groups=16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.rbf = Rbf(digit_centers())
        self.act = ScaledTanh()

    def forward(self, x):
        x = self.act(self.c1(x))
        x = self.act(self.s2(F.avg_pool2d(x, 2)))
        x = torch.cat([conv(torch.index_select(x, 1, torch.tensor(t))) for conv, t in zip(self.c3, C3_TABLE)], 1)
        x = self.act(x)
        x = self.act(self.s4(F.avg_pool2d(x, 2)))
        x = self.act(self.c5(x))
        x = self.act(self.f6(x.flatten(1)))
        return self.rbf(x)


def f32(t):
    return t.detach().contiguous().numpy().astype("<f4")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(1998)
    model = LeNet5Classic()
    params = sum(p.numel() for p in model.parameters())
    assert params == 60000, params
    # a digit-like input in [-0.1, 1.175] as in the paper (background -0.1, ink 1.175)
    x = torch.rand(2, 1, 32, 32) * 1.275 - 0.1
    labels = torch.tensor([3, 7], dtype=torch.int64)
    model.eval()
    with torch.no_grad():
        out = model(x)
    base = os.path.join(out_dir, "lenet5-classic")
    write_safetensors(base + ".weights.safetensors", [(k, f32(v)) for k, v in model.state_dict().items()],
                      {"torch": torch.__version__})
    np.save(base + ".x.npy", f32(x))
    np.save(base + ".labels.npy", labels.numpy())
    np.save(base + ".out.npy", f32(out))
    model.zero_grad()
    xi = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xi), labels)
    loss.backward()
    tensors = [("loss", f32(loss.reshape(())))]
    tensors += [(k, f32(p.grad)) for k, p in model.named_parameters()]
    tensors.append(("input", f32(xi.grad)))
    write_safetensors(base + ".ce.safetensors", tensors, {"torch": torch.__version__})
    print(f"lenet5-classic: {params} parameters, batch {x.shape[0]}, loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
