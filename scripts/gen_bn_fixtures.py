#!/usr/bin/env python3
"""gen_bn_fixtures.py - PyTorch reference values for stride's batch-norm kernels.

Usage:  /usr/bin/python3 scripts/gen_bn_fixtures.py tests/fixtures

Writes tests/fixtures/batchnorm.safetensors (with write_cases from gen_fixtures.py).
Every case is one BatchNorm1d (input (N, C) or (N, C, L)) or BatchNorm2d (N, C, H, W)
module; stride sees it as (N, C, S) with S = 1, L or H*W. Case i has tensors (float32,
PyTorch's layout):
  i.x, i.gy       the input and a random upstream gradient (loss = sum(y * gy))
  i.gamma, i.beta (affine only) the module's weight and bias (random, not 1/0)
  i.rm0, i.rv0    (track only) running statistics before the first forward
  i.y, i.gx       forward output and dL/dx
  i.ggamma, i.gbeta (affine only) dL/dweight, dL/dbias
  i.y64, i.gx64, i.ggamma64, i.gbeta64  the same from a float64 copy of the module fed the
                  same (float32-valued) inputs, float64: the reference for the double kernels
train cases (module.train()) also have
  i.rm1, i.rv1    (track only) running statistics after the forward of x
  i.x2            a second, different batch; i.rm2, i.rv2 after its forward (track only)
eval cases (module.eval()): with track, y uses rm0/rv0 (random, positive variances);
without track PyTorch normalises with the batch statistics even in eval mode.
Metadata "i" is a compact JSON string
  {"mode":"train"|"eval","dim":1|2,"shape":[...],"n":N,"c":C,"s":S,"affine":0|1,
   "track":0|1,"momentum":0.1|0.3|-1 (-1 = None, cumulative),"eps":..,"nbt1":..,"nbt2":..}
nbt1/nbt2: num_batches_tracked after the first/second forward (0 when not tracked or eval).
Metadata "count", "torch" and "generator" as in gen_fixtures.py. Seeded and deterministic.
"""
import copy
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_cases  # noqa: E402

SEED = 20240921


def f32(t):
    return t.detach().cpu().contiguous().numpy().astype("<f4")


def f64(t):
    return t.detach().cpu().contiguous().numpy().astype("<f8")


def make_x(shape, gen):
    # per-channel offset and scale, so that the statistics matter
    c = shape[1]
    bshape = [1, c] + [1] * (len(shape) - 2)
    off = torch.randn(bshape, generator=gen) * 2
    scale = torch.rand(bshape, generator=gen) * 2 + 0.2
    return torch.randn(shape, generator=gen) * scale + off


def run_case(mode, shape, affine, track, momentum, eps, gen):
    dim = 2 if len(shape) == 4 else 1
    c = shape[1]
    cls = torch.nn.BatchNorm2d if dim == 2 else torch.nn.BatchNorm1d
    bn = cls(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    t = {}
    with torch.no_grad():
        if affine:
            bn.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
            bn.bias.copy_(torch.randn(c, generator=gen))
            t["gamma"], t["beta"] = f32(bn.weight), f32(bn.bias)
        if track:
            bn.running_mean.copy_(torch.randn(c, generator=gen))
            bn.running_var.copy_(torch.rand(c, generator=gen) * 2 + 0.1)
            t["rm0"], t["rv0"] = f32(bn.running_mean), f32(bn.running_var)
    bn64 = copy.deepcopy(bn).double()
    x = make_x(shape, gen).requires_grad_(True)
    if mode == "train":
        bn.train()
        bn64.train()
    else:
        bn.eval()
        bn64.eval()
    y = bn(x)
    gy = torch.randn(y.shape, generator=gen)
    (y * gy).sum().backward()
    # the same in float64 (from the same float32 values): the reference for stride's double
    # kernels, which a float32 result cannot be where N*S is tiny and var ~ eps
    x64 = x.detach().double().requires_grad_(True)
    y64 = bn64(x64)
    (y64 * gy.double()).sum().backward()
    t.update(y64=f64(y64), gx64=f64(x64.grad))
    if affine:
        t["ggamma64"], t["gbeta64"] = f64(bn64.weight.grad), f64(bn64.bias.grad)
    t.update(x=f32(x), gy=f32(gy), y=f32(y), gx=f32(x.grad))
    if affine:
        t["ggamma"], t["gbeta"] = f32(bn.weight.grad), f32(bn.bias.grad)
    nbt1 = nbt2 = 0
    if mode == "train":
        if track:
            t["rm1"], t["rv1"] = f32(bn.running_mean), f32(bn.running_var)
            nbt1 = int(bn.num_batches_tracked)
        x2 = make_x(shape, gen)
        with torch.no_grad():
            bn(x2)
        t["x2"] = f32(x2)
        if track:
            t["rm2"], t["rv2"] = f32(bn.running_mean), f32(bn.running_var)
            nbt2 = int(bn.num_batches_tracked)
    s = 1
    for d in shape[2:]:
        s *= d
    meta = {"mode": mode, "dim": dim, "shape": list(shape), "n": shape[0], "c": c, "s": s,
            "affine": int(affine), "track": int(track),
            "momentum": -1 if momentum is None else momentum, "eps": eps, "nbt1": nbt1, "nbt2": nbt2}
    return meta, t


def cases():
    rng = random.Random(SEED)
    shapes = [(8, 5), (2, 3), (16, 4), (4, 3, 7), (2, 6, 1), (1, 4, 9), (3, 2, 5),
              (2, 3, 4, 5), (1, 2, 3, 3), (4, 3, 2, 2), (2, 4, 1, 1), (3, 1, 6, 4)]
    out = []
    # train: affine x track x momentum in {0.1, 0.3, None}, shapes and eps sampled
    for affine in (True, False):
        for track in (True, False):
            for momentum in (0.1, 0.3, None):
                for _ in range(2):
                    out.append(dict(mode="train", shape=rng.choice(shapes), affine=affine, track=track,
                                    momentum=momentum, eps=rng.choice([1e-5, 1e-3])))
    # every shape at least once in train mode with the defaults
    for sh in shapes:
        out.append(dict(mode="train", shape=sh, affine=True, track=True, momentum=0.1, eps=1e-5))
    # eval
    for affine in (True, False):
        for track in (True, False):
            for _ in range(2):
                out.append(dict(mode="eval", shape=rng.choice(shapes), affine=affine, track=track,
                                momentum=0.1, eps=rng.choice([1e-5, 1e-3])))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    results = [run_case(c["mode"], c["shape"], c["affine"], c["track"], c["momentum"], c["eps"], gen) for c in cases()]
    write_cases(os.path.join(outdir, "batchnorm.safetensors"), results, "scripts/gen_bn_fixtures.py")


if __name__ == "__main__":
    main()
