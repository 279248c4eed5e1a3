#!/usr/bin/env python3
"""Writes PyTorch reference data for stride's `hourglass` zoo model (models.md A11).

The network is built here in PyTorch with the same state_dict names as
src/zoo_hourglass.c, in the small configuration
    hourglass:stacks=2,features=8,joints=3,depth=2,channels=1,size=32
(1 x 32 x 32 -> 3 x 8 x 8 heatmaps, 121,894 parameters, almost all of them in the stem,
whose widths 64 and 128 are fixed by A11), and written to tests/fixtures/models/:
  hourglass.weights.safetensors  the state_dict after two training-mode forwards (so the
                                 batch-norm running statistics are not trivial), every
                                 float rounded to float16 first and stored as F16: exact,
                                 and half the size
  hourglass.x.npy                an input batch of 2
  hourglass.target.npy           heatmap targets in [0, 1], shaped like one head's output
  hourglass.out.npy              eval-mode output: the last stack's heatmaps
  hourglass.mse.safetensors      training mode (batch statistics), the loss with
                                 intermediate supervision, sum over the stacks of
                                 F.mse_loss(heat_i, target): 'loss', 'input' (its
                                 gradient) and the gradients of every parameter with at
                                 most 1024 elements (the large stem convolutions are left
                                 out to keep the file small; the input gradient passes
                                 through them)
tests/cli.sh runs `stride run` and `stride grad --loss mse` on these files.

Run with Debian's PyTorch: /usr/bin/python3 scripts/gen_hourglass_fixtures.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_fixtures  # noqa: E402
from gen_fixtures import write_safetensors  # noqa: E402

# float16 tensors for the weights (stride reads F16 safetensors)
gen_fixtures._DTYPES.setdefault(np.dtype("<f2"), "F16")

STACKS, FEATURES, JOINTS, DEPTH, CHANNELS, SIZE, BATCH = 2, 8, 3, 2, 1, 32, 2
MAX_GRAD = 1024  # gradients of parameters with more elements are not stored


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-conv1x1 (out/2), BN-ReLU-conv3x3, BN-ReLU-conv1x1 (out)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout // 2, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout // 2), nn.Conv2d(cout // 2, cout // 2, 3, padding=1)
        self.bn3, self.conv3 = nn.BatchNorm2d(cout // 2), nn.Conv2d(cout // 2, cout, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return (self.skip(x) if self.skip is not None else x) + y


class Hourglass(nn.Module):
    def __init__(self, n, f):
        super().__init__()
        self.up1, self.low1 = Residual(f, f), Residual(f, f)
        self.low2 = Hourglass(n - 1, f) if n > 1 else Residual(f, f)
        self.low3 = Residual(f, f)

    def forward(self, x):
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up1(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class Pre(nn.Module):
    def __init__(self, channels, f):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(channels, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64)
        self.res1, self.res2, self.res3 = Residual(64, 128), Residual(128, 128), Residual(128, f)

    def forward(self, x):
        x = self.res1(F.relu(self.bn(self.conv(x))))
        return self.res3(self.res2(F.max_pool2d(x, 2)))


class Lin(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(f, f, 1), nn.BatchNorm2d(f)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Stack(nn.Module):
    def __init__(self, f, joints, last):
        super().__init__()
        self.res, self.lin, self.heat = Residual(f, f), Lin(f), nn.Conv2d(f, joints, 1)
        if not last:
            self.merge_ll, self.merge_heat = nn.Conv2d(f, f, 1), nn.Conv2d(joints, f, 1)


class StackedHourglass(nn.Module):
    def __init__(self, stacks, f, joints, depth, channels):
        super().__init__()
        self.stacks = stacks
        self.pre = Pre(channels, f)
        for s in range(stacks):
            setattr(self, f"hg{s}", Hourglass(depth, f))
        for s in range(stacks):
            setattr(self, f"stack{s}", Stack(f, joints, s + 1 == stacks))

    def forward(self, x):
        """The heatmaps of every stack (the last is the prediction)."""
        inter, heats = self.pre(x), []
        for s in range(self.stacks):
            st = getattr(self, f"stack{s}")
            ll = st.lin(st.res(getattr(self, f"hg{s}")(inter)))
            heat = st.heat(ll)
            heats.append(heat)
            if s + 1 < self.stacks:
                inter = inter + st.merge_ll(ll) + st.merge_heat(heat)
        return heats


def f32(t):
    return t.detach().contiguous().numpy().astype("<f4")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(11)
    model = StackedHourglass(STACKS, FEATURES, JOINTS, DEPTH, CHANNELS)
    x = torch.randn(BATCH, CHANNELS, SIZE, SIZE)
    model.train()
    with torch.no_grad():
        for _ in range(2):  # running statistics from two training batches
            model(torch.randn(BATCH, CHANNELS, SIZE, SIZE))
        for v in model.state_dict().values():  # float16-exact weights and statistics
            if v.is_floating_point():
                v.copy_(v.half().float())
    state = model.state_dict()
    base = os.path.join(out_dir, "hourglass")
    write_safetensors(base + ".weights.safetensors",
                      [(k, v.numpy() if v.dtype == torch.int64 else v.numpy().astype("<f2")) for k, v in state.items()],
                      {"torch": torch.__version__, "model": "hourglass:stacks=2,features=8,joints=3,depth=2,channels=1,size=32"})
    model.eval()
    with torch.no_grad():
        out = model(x)[-1]
    target = torch.rand(out.shape)
    np.save(base + ".x.npy", f32(x))
    np.save(base + ".target.npy", f32(target))
    np.save(base + ".out.npy", f32(out))
    model.train()
    xi = x.clone().requires_grad_(True)
    loss = sum(F.mse_loss(h, target) for h in model(xi))  # intermediate supervision
    loss.backward()
    tensors = [("loss", f32(loss.reshape(()))), ("input", f32(xi.grad))]
    tensors += [(k, f32(p.grad)) for k, p in model.named_parameters() if p.numel() <= MAX_GRAD]
    write_safetensors(base + ".mse.safetensors", tensors,
                      {"torch": torch.__version__, "loss": "sum over stacks of mse_loss(heat_i, target)"})
    kept = len(tensors) - 2
    print(f"hourglass: {sum(p.numel() for p in model.parameters())} parameters, batch {BATCH}, "
          f"loss {loss.item():.6f}, {kept} of {len(list(model.parameters()))} parameter gradients stored")


if __name__ == "__main__":
    main()
