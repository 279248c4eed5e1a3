#!/usr/bin/env python3
"""PyTorch parity of the torchvision zoo at 224x224 (make test-zoo), and of re-implementations
of unet-same (64x64), alexnet2012 (227x227) and preact-resnet18/50 (64x64) with stride's names.

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

    def __init__(self, cin, cout, mid=None):
        super().__init__()
        nn = torch.nn
        mid = mid or cout
        self.double_conv = nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
                                         nn.ReLU(), nn.Conv2d(mid, cout, 3, padding=1, bias=False),
                                         nn.BatchNorm2d(cout), nn.ReLU())


class Down(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = torch.nn.Sequential(torch.nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(torch.nn.Module):
    def __init__(self, cin, cout, bilinear=False):
        super().__init__()
        if bilinear:
            self.up = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = torch.nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNetSame(torch.nn.Module):
    """The U-Net of milesial/Pytorch-UNet (models.md A9.2), transposed convolutions or
    (bilinear=True) bilinear upsampling, for sizes that are multiples of 16 (no padding of
    the upsampled maps needed)."""

    def __init__(self, channels=3, classes=2, bilinear=False, width=64):
        super().__init__()
        f, w = 2 if bilinear else 1, width
        self.inc = DoubleConv(channels, w)
        self.down1, self.down2, self.down3 = Down(w, 2 * w), Down(2 * w, 4 * w), Down(4 * w, 8 * w)
        self.down4 = Down(8 * w, 16 * w // f)
        self.up1, self.up2 = Up(16 * w, 8 * w // f, bilinear), Up(8 * w, 4 * w // f, bilinear)
        self.up3, self.up4 = Up(4 * w, 2 * w // f, bilinear), Up(2 * w, w, bilinear)
        self.outc = torch.nn.Module()
        self.outc.conv = torch.nn.Conv2d(w, classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(self.down4(x4), x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        return self.outc.conv(self.up4(x, x1))


# Training-mode gradient checks: model -> (input shape, number of classes). The input is
# small enough that a draw with no ReLU input and no max-pool runner-up within MARGIN of
# the kink exists: where a pre-activation is ~1e-7 from zero, float32 and float64 take
# different sides and the gradient jumps by a whole term (at 224x224 with 4.5 million ReLU
# inputs some always are; that, not float32 accumulation, is what broke the first attempt).
GRAD_CHECKS = {"resnet18": ((2, 3, 64, 64), 1000), "unet-same": ((1, 3, 32, 32), 2)}
MARGIN = 5e-6


def kink_free_input(model, shape, seed0):
    """A float32-representable input whose forward pass (float64, training mode) keeps every
    ReLU input and every max-pool winner's lead over the runner-up at least MARGIN away
    from a tie, so float32 rounding cannot flip a decision."""
    gaps = []

    def relu_hook(mod, inp, out):
        gaps.append(inp[0].detach().abs().min().item())

    def pool_hook(mod, inp, out):
        k, st, p = mod.kernel_size, mod.stride, mod.padding
        k, st, p = (k, k) if isinstance(k, int) else k, (st, st) if isinstance(st, int) else st, (p, p) if isinstance(p, int) else p
        x = torch.nn.functional.pad(inp[0].detach(), (p[1], p[1], p[0], p[0]), value=-float("inf"))
        u = x.unfold(2, k[0], st[0]).unfold(3, k[1], st[1])
        u = u.reshape(*u.shape[:4], -1)
        top = u.topk(2, dim=-1).values
        lead = (top[..., 0] - top[..., 1])[top[..., 0] > 0]  # ties among ReLU zeros are exact
        gaps.append(lead.min().item() if lead.numel() else float("inf"))

    handles = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
            handles.append(mod.register_forward_hook(relu_hook))
        if isinstance(mod, torch.nn.MaxPool2d):
            handles.append(mod.register_forward_hook(pool_hook))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    found = None
    for seed in range(seed0, seed0 + 200):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(*shape, generator=g).float().double()
        gaps.clear()
        with torch.no_grad():
            model(x)
        model.load_state_dict(state)  # undo the running-statistics update
        if min(gaps) > MARGIN:
            found = x
            break
    for h in handles:
        h.remove()
    if found is None:
        raise RuntimeError(f"no input without near-ties in 200 draws for {shape}")
    return found


def write_gradients(out, name, model, shape, classes):
    """float64 training-mode gradients of the mean cross-entropy (per pixel for U-Net) for a
    kink-free input: NAME.grads.safetensors, NAME.gx.npy, NAME.labels.npy."""
    m = model.double().train()
    x = kink_free_input(m, shape, 1000)
    out_shape = (shape[0],) if classes == 1000 else (shape[0], shape[2], shape[3])
    g = torch.Generator().manual_seed(7)
    labels = torch.randint(0, classes, out_shape, generator=g)
    x.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(m(x), labels)
    loss.backward()
    grads = [("loss", loss.detach().numpy().astype("<f4"))]
    grads += [(k, p.grad.numpy().astype("<f4")) for k, p in m.named_parameters()]
    grads.append(("input", x.grad.numpy().astype("<f4")))
    write_safetensors(os.path.join(out, name + ".grads.safetensors"), grads, {})
    np.save(os.path.join(out, name + ".gx.npy"), x.detach().numpy().astype("<f4"))
    np.save(os.path.join(out, name + ".labels.npy"), labels.numpy())


class AlexNet2012(torch.nn.Module):
    """The paper's two-GPU AlexNet (models.md A4) with the Caffe layer names of stride's
    alexnet2012. The paper's LRN (k=2, n=5, alpha=1e-4 not divided by n, beta=0.75) is
    LocalResponseNorm(5, alpha=5e-4, ...), since PyTorch divides alpha by size."""

    def __init__(self, classes=1000):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.fc6, self.fc7, self.fc8 = nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, classes)
        self.lrn = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        r = torch.relu
        x = self.pool(self.lrn(r(self.conv1(x))))
        x = self.pool(self.lrn(r(self.conv2(x))))
        x = self.pool(r(self.conv5(r(self.conv4(r(self.conv3(x)))))))
        x = r(self.fc6(self.drop(torch.flatten(x, 1))))
        x = r(self.fc7(self.drop(x)))
        return self.fc8(x)


class PreActBlock(torch.nn.Module):
    """fb.resnet.torch's preresnet block, basic or bottleneck. mode 'none': no
    pre-activation (layer1.0); 'both': BN-ReLU of the input feeds the residual branch and
    the projection (first block of layers 2-4); 'residual': only the branch is
    pre-activated. bnK normalises convK's input; projections have no BN; no ReLU after +."""

    def __init__(self, cin, width, stride, bottleneck, mode):
        super().__init__()
        nn = torch.nn
        self.mode, self.bottleneck = mode, bottleneck
        cout = width * (4 if bottleneck else 1)
        if mode != "none":
            self.bn1 = nn.BatchNorm2d(cin)
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False))

    def forward(self, x):
        r = torch.relu
        pre = x if self.mode == "none" else r(self.bn1(x))
        shortcut = pre if self.mode == "both" else x
        out = self.conv2(r(self.bn2(self.conv1(pre))))
        if self.bottleneck:
            out = self.conv3(r(self.bn3(out)))
        return out + (self.downsample(shortcut) if self.downsample is not None else shortcut)


class PreActResNet(torch.nn.Module):
    """fb.resnet.torch's ImageNet preresnet (models.md A8) with stride's names."""

    DEPTHS = {18: (False, [2, 2, 2, 2]), 34: (False, [3, 4, 6, 3]), 50: (True, [3, 4, 6, 3]),
              101: (True, [3, 4, 23, 3]), 152: (True, [3, 8, 36, 3]), 200: (True, [3, 24, 36, 3])}

    def __init__(self, depth, classes=1000):
        super().__init__()
        nn = torch.nn
        bottleneck, blocks = self.DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for stage, n in enumerate(blocks):
            layer = []
            for b in range(n):
                mode = "none" if stage == 0 and b == 0 else "both" if b == 0 else "residual"
                layer.append(PreActBlock(cin, 64 << stage, 2 if stage > 0 and b == 0 else 1, bottleneck, mode))
                cin = (64 << stage) * (4 if bottleneck else 1)
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*layer))
        self.bn_final = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.relu(self.bn_final(x)).mean((2, 3))
        return self.fc(x)


def reference(name):
    """The PyTorch model for a name of tests/zoo.sh, and its input size."""
    if name == "unet-same":
        return UNetSame(), 64
    if name == "unet-bilinear":
        return UNetSame(bilinear=True), 64
    if name == "alexnet2012":
        return AlexNet2012(), 227
    if name.startswith("preact-resnet"):
        return PreActResNet(int(name[len("preact-resnet"):])), 64
    return getattr(torchvision.models, name)(weights=None), 224


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(224)
    torch.set_num_threads(2)
    for name in MODELS + ["unet-same", "unet-bilinear", "alexnet2012", "preact-resnet18", "preact-resnet50"]:
        m, size = reference(name)
        m.train()
        with torch.no_grad():  # non-trivial running statistics
            for _ in range(2):
                m(torch.randn(2, 3, size, size))
        m.eval()
        tensors = [(k, v.numpy() if v.dtype == torch.int64 else v.detach().numpy().astype("<f4"))
                   for k, v in m.state_dict().items()]
        write_safetensors(os.path.join(out, name + ".safetensors"), tensors, {"torch": torch.__version__})
        x = torch.randn(1, 3, size, size)
        if name == "alexnet2012":  # large enough activations that the LRN's sum matters next to k=2
            x *= 30
        with torch.no_grad():
            y = m(x)
        np.save(os.path.join(out, name + ".x.npy"), x.numpy())
        np.save(os.path.join(out, name + ".y.npy"), y.numpy())
        if name in GRAD_CHECKS:
            write_gradients(out, name, m, *GRAD_CHECKS[name])
        print(f"{name}: {sum(p.numel() for p in m.parameters())} parameters")
    # parameter counts of the re-implementations at every depth, for tests/zoo.sh to compare
    # (last: building them draws random numbers, which would change the weights above)
    with open(os.path.join(out, "counts.txt"), "w") as f:
        f.write("alexnet2012 %d\n" % sum(p.numel() for p in AlexNet2012().parameters()))
        for depth in PreActResNet.DEPTHS:
            f.write("preact-resnet%d %d\n" % (depth, sum(p.numel() for p in PreActResNet(depth).parameters())))
        for ch, bil, w in ((3, 0, 64), (1, 0, 64), (3, 1, 64), (1, 1, 64), (1, 0, 16), (3, 1, 8)):
            n = sum(p.numel() for p in UNetSame(channels=ch, bilinear=bool(bil), width=w).parameters())
            f.write("unet-same:channels=%d,bilinear=%d,width=%d %d\n" % (ch, bil, w, n))


if __name__ == "__main__":
    main()
