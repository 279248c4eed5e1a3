#!/usr/bin/env python3
"""PyTorch parity of the torchvision zoo at 224x224 (make test-zoo).

For each model: torchvision's randomly initialised weights (nothing is downloaded) with
batch-norm running statistics from two training batches, exported to safetensors under
their state_dict names, a random input batch, and torchvision's eval-mode logits, all
written to OUT_DIR. tests/zoo.sh then runs `stride run` on them and compares. The weights
are too large to commit (resnet18 alone is 47 MB), so they are made at test time.

Needs Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 scripts/zoo_parity.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_safetensors  # noqa: E402

MODELS = ["resnet18", "resnet50", "vgg11_bn", "alexnet"]


class DoubleConv(torch.nn.Sequential):
    """milesial/Pytorch-UNet's DoubleConv, same module names (double_conv.0..5)."""

    def __init__(self, cin, cout):
        super().__init__()
        nn = torch.nn
        self.double_conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                         nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                         nn.BatchNorm2d(cout), nn.ReLU())


class Down(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = torch.nn.Sequential(torch.nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNetSame(torch.nn.Module):
    """The transposed-conv U-Net of milesial/Pytorch-UNet (models.md A9.2), for sizes that
    are multiples of 16 (no padding of the upsampled maps needed)."""

    def __init__(self, channels=3, classes=2):
        super().__init__()
        self.inc = DoubleConv(channels, 64)
        self.down1, self.down2, self.down3, self.down4 = Down(64, 128), Down(128, 256), Down(256, 512), Down(512, 1024)
        self.up1, self.up2, self.up3, self.up4 = Up(1024, 512), Up(512, 256), Up(256, 128), Up(128, 64)
        self.outc = torch.nn.Module()
        self.outc.conv = torch.nn.Conv2d(64, classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(self.down4(x4), x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        return self.outc.conv(self.up4(x, x1))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(224)
    torch.set_num_threads(2)
    for name in MODELS + ["unet-same"]:
        m = UNetSame() if name == "unet-same" else getattr(torchvision.models, name)(weights=None)
        size = 64 if name == "unet-same" else 224
        m.train()
        with torch.no_grad():  # non-trivial running statistics
            for _ in range(2):
                m(torch.randn(2, 3, size, size))
        m.eval()
        tensors = [(k, v.numpy() if v.dtype == torch.int64 else v.detach().numpy().astype("<f4"))
                   for k, v in m.state_dict().items()]
        write_safetensors(os.path.join(out, name + ".safetensors"), tensors, {"torch": torch.__version__})
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            y = m(x)
        np.save(os.path.join(out, name + ".x.npy"), x.numpy())
        np.save(os.path.join(out, name + ".y.npy"), y.numpy())
        if name == "resnet18":
            # Training-mode gradients (batch statistics) of the cross-entropy, batch 2, computed
            # in float64 as the reference for the resnet18 gradient check of issue 3 (not yet
            # in tests/zoo.sh): PyTorch's own float32 gradients of this net were off by up to
            # 6e-3 (conv1.weight, where batch norm's backward makes the sum cancel), and
            # stride's float32 ones by 2e-6 to 1.5e-3 depending on the draw: float32
            # accumulation over 25k positions does not meet 1e-4 (1 + max|g|) reliably.
            m = m.double().train()
            xg = torch.randn(2, 3, 224, 224, dtype=torch.float64)
            xg = xg.float().double().requires_grad_(True)  # the float32 input stride reads
            labels = torch.tensor([3, 917])
            loss = torch.nn.functional.cross_entropy(m(xg), labels)
            loss.backward()
            grads = [("loss", loss.detach().numpy().astype("<f4"))]
            grads += [(k, p.grad.numpy().astype("<f4")) for k, p in m.named_parameters()]
            grads.append(("input", xg.grad.numpy().astype("<f4")))
            write_safetensors(os.path.join(out, name + ".grads.safetensors"), grads, {})
            np.save(os.path.join(out, name + ".gx.npy"), xg.detach().numpy().astype("<f4"))
            np.save(os.path.join(out, name + ".labels.npy"), labels.numpy())
        print(f"{name}: {sum(p.numel() for p in m.parameters())} parameters")


if __name__ == "__main__":
    main()
