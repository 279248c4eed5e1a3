#!/usr/bin/env python3
"""Writes PyTorch reference outputs and gradients for whole built-in models.

For each of mnist1d-cnn and mnist1d-mlp (built here in PyTorch with the same
state_dict names as stride's zoo) and the model files NAME.net in tests/fixtures/models
(convt1d, convt2d, lenet5, pool1d, deconv2d, deconv1d, bn, softmax), with PyTorch's default random weights:
  tests/fixtures/models/NAME.weights.safetensors   the weights (state_dict names)
  tests/fixtures/models/NAME.x.npy                 an input batch
  tests/fixtures/models/NAME.labels.npy            int64 class targets (ce)
  tests/fixtures/models/NAME.target.npy            float targets shaped like the output (mse)
  tests/fixtures/models/NAME.out.npy               eval-mode output
  tests/fixtures/models/NAME.ce.safetensors        'loss', every parameter gradient, 'input'
  tests/fixtures/models/NAME.mse.safetensors       the same with the MSE loss
  tests/fixtures/models/NAME.bce.safetensors       the same with BCE on logits against NAME.probs.npy
  tests/fixtures/models/NAME.{sgd,momentum,nesterov}.safetensors
                                                   weights after 3 SGD steps (settings in metadata)
The C tests (tests/cli.sh) run `stride run` and `stride grad` on these files.

Run with Debian's PyTorch: /usr/bin/python3 scripts/gen_model_fixtures.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_safetensors  # noqa: E402


class Cnn(nn.Module):
    """UDL figure 10.7: three valid conv1d (k3, s2) with ReLU, then linear 60 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 15, 3, stride=2)
        self.conv2 = nn.Conv1d(15, 15, 3, stride=2)
        self.conv3 = nn.Conv1d(15, 15, 3, stride=2)
        self.fc = nn.Linear(60, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.fc(x.flatten(1))


class Mlp(nn.Module):
    """40 -> 285 -> 135 -> 60 -> 10 with ReLU (59,065 parameters)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(40, 285)
        self.fc2 = nn.Linear(285, 135)
        self.fc3 = nn.Linear(135, 60)
        self.fc4 = nn.Linear(60, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.fc4(x)


class Convt1d(nn.Module):
    """tests/fixtures/models/convt1d.net"""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1, output_padding=1)
        self.down = nn.Conv1d(3, 2, 3, stride=2)
        self.fc = nn.Linear(18, 4)

    def forward(self, x):
        return self.fc(self.down(torch.tanh(self.up(x))).flatten(1))


class Convt2d(nn.Module):
    """tests/fixtures/models/convt2d.net"""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 4, (3, 2), stride=(2, 3), padding=(1, 0), dilation=(2, 1), groups=2)
        self.fc = nn.Linear(4 * 11 * 17, 3)

    def forward(self, x):
        return self.fc(F.leaky_relu(self.up(x), 0.1).flatten(1))


class Lenet5(nn.Module):
    """tests/fixtures/models/lenet5.net (61,706 parameters)"""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class Pool1d(nn.Module):
    """tests/fixtures/models/pool1d.net"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(3, 4, 3, padding=1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.max_pool1d(self.c(x), 3, stride=2, padding=1, ceil_mode=True)
        x = F.avg_pool1d(x, 2, padding=1, count_include_pad=False)
        return self.fc(F.adaptive_avg_pool1d(x, 3).flatten(1))


class Deconv2d(nn.Module):
    """tests/fixtures/models/deconv2d.net"""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.lrn = nn.LocalResponseNorm(3, alpha=0.001, beta=0.75, k=2.0)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(4, 3, 3, padding=1)
        self.fc = nn.Linear(189, 5)

    def forward(self, x):
        p, idx = F.max_pool2d(F.relu(self.conv1(x)), 2, return_indices=True)
        u = F.max_unpool2d(self.conv2(self.lrn(p)), idx, 2, output_size=(12, 10))
        u = F.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)
        u = F.interpolate(self.conv3(u), size=(7, 9), mode="nearest")
        return self.fc(u.flatten(1))


class Deconv1d(nn.Module):
    """tests/fixtures/models/deconv1d.net"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(2, 3, 3, padding=1)
        self.fc = nn.Linear(48, 4)

    def forward(self, x):
        p, idx = F.max_pool1d(self.c(x), 3, stride=2, return_indices=True)
        u = F.max_unpool1d(p, idx, 3, stride=2, output_size=(11,))
        u = F.interpolate(u, scale_factor=1.5, mode="linear", align_corners=True)
        return self.fc(u.flatten(1))


class Bn(nn.Module):
    """tests/fixtures/models/bn.net"""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.bn2 = nn.BatchNorm1d(36, momentum=None, eps=1e-3)
        self.fc = nn.Linear(36, 3)
        # random affine parameters, and running statistics from three training batches
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
        for _ in range(3):
            self(torch.randn(5, 2, 6, 6) * 2 + 0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(self.bn2(x.flatten(1)))


class Softmax(nn.Module):
    """tests/fixtures/models/softmax.net"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(3, 4, 2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(F.softmax(self.c(x), dim=1).flatten(1))


class Seg(nn.Module):
    """tests/fixtures/models/seg.net: per-pixel logits"""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))


def segmentation(out_dir):
    """Per-pixel cross-entropy with ignore_index 255 (seg.*): weights, x, labels, gradients."""
    model = Seg()
    x = torch.randn(3, 2, 8, 8)
    labels = torch.randint(0, 3, (3, 8, 8), dtype=torch.int64)
    labels[torch.rand(3, 8, 8) < 0.2] = 255
    base = os.path.join(out_dir, "seg")
    write_safetensors(base + ".weights.safetensors", [(k, f32(v)) for k, v in model.state_dict().items()],
                      {"torch": torch.__version__})
    np.save(base + ".x.npy", f32(x))
    np.save(base + ".labels.npy", labels.numpy())
    xi = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xi), labels, ignore_index=255)
    loss.backward()
    tensors = [("loss", f32(loss.reshape(())))] + [(k, f32(p.grad)) for k, p in model.named_parameters()]
    tensors.append(("input", f32(xi.grad)))
    write_safetensors(base + ".ce.safetensors", tensors, {"torch": torch.__version__, "ignore_index": "255"})
    print("seg: per-pixel cross-entropy, ignore_index 255")


def f32(t):
    return t.detach().contiguous().numpy().astype("<f4")


def one(name, model, x, out_dir, classes=10):
    n = x.shape[0]
    labels = torch.randint(0, classes, (n,), dtype=torch.int64)
    model.eval()
    with torch.no_grad():
        out = model(x)
    target = torch.randn_like(out)
    base = os.path.join(out_dir, name)
    write_safetensors(base + ".weights.safetensors",
                      [(k, v.numpy() if v.dtype == torch.int64 else f32(v)) for k, v in model.state_dict().items()],
                      {"torch": torch.__version__})
    np.save(base + ".x.npy", f32(x))
    np.save(base + ".labels.npy", labels.numpy())
    np.save(base + ".target.npy", f32(target))
    np.save(base + ".out.npy", f32(out))
    start = {k: v.clone() for k, v in model.state_dict().items()}  # (buffers too)
    model.train()
    # BCE targets in [0, 1] from their own generator, so the other fixtures keep their values
    probs = torch.rand(out.shape, generator=torch.Generator().manual_seed(n * 1000 + out.shape[1]))
    np.save(base + ".probs.npy", f32(probs))
    for loss_name in ("ce", "mse", "bce"):
        model.zero_grad()
        xi = x.clone().requires_grad_(True)
        y = model(xi)
        if loss_name == "ce":
            loss = F.cross_entropy(y, labels)
        elif loss_name == "mse":
            loss = F.mse_loss(y, target)
        else:
            loss = F.binary_cross_entropy_with_logits(y, probs)
        loss.backward()
        tensors = [("loss", f32(loss.reshape(())))]
        tensors += [(k, f32(p.grad)) for k, p in model.named_parameters()]
        tensors.append(("input", f32(xi.grad)))
        write_safetensors(base + "." + loss_name + ".safetensors", tensors, {"torch": torch.__version__})
    # three SGD steps from these weights on this batch, for each optimiser setting
    for tag, kw in (("sgd", dict(lr=0.1)),
                    ("momentum", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                    ("nesterov", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))):
        model.load_state_dict(start)
        opt = torch.optim.SGD(model.parameters(), **kw)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            opt.step()
        write_safetensors(base + "." + tag + ".safetensors",
                          [(k, v.numpy() if v.dtype == torch.int64 else f32(v)) for k, v in model.state_dict().items()],
                          {"torch": torch.__version__, **{k: str(v) for k, v in kw.items()}})
    model.load_state_dict(start)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, batch {n}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(2050)
    one("mnist1d-cnn", Cnn(), torch.randn(7, 1, 40), out_dir)
    one("mnist1d-mlp", Mlp(), torch.randn(7, 40), out_dir)
    one("convt1d", Convt1d(), torch.randn(3, 2, 9), out_dir, classes=4)
    one("convt2d", Convt2d(), torch.randn(3, 2, 5, 6), out_dir, classes=3)
    one("lenet5", Lenet5(), torch.randn(3, 1, 28, 28), out_dir)
    one("pool1d", Pool1d(), torch.randn(4, 3, 17), out_dir, classes=5)
    one("deconv2d", Deconv2d(), torch.randn(3, 2, 12, 10), out_dir, classes=5)
    one("deconv1d", Deconv1d(), torch.randn(3, 2, 11), out_dir, classes=4)
    one("bn", Bn(), torch.randn(6, 2, 6, 6), out_dir, classes=3)
    one("softmax", Softmax(), torch.randn(4, 3, 5) * 2, out_dir, classes=3)
    segmentation(out_dir)


if __name__ == "__main__":
    main()
