#!/usr/bin/env python3
"""gen_resample_fixtures.py - PyTorch reference values for stride's resampling kernels:
upsampling (nearest, linear, bilinear), max unpooling and local response normalisation.

Usage:  /usr/bin/python3 scripts/gen_resample_fixtures.py tests/fixtures

Writes tests/fixtures/resample.safetensors (with write_cases from gen_fixtures.py).
Case i has tensors
  i.x    input, (N, C, L) for 1D or (N, C, H, W) for 2D, float32 (unpool: the pooled values;
         lrn: (N, C, L) or (N, C, H, W))
  i.y    forward output
  i.idx  (unpool only) the MaxPool indices fed to MaxUnpool, int64, shaped like x
  i.gy   a random upstream gradient, shaped like y
  i.gx   autograd gradient of sum(y * gy) with respect to x
and a metadata entry "i" holding a compact JSON string
  {"op":"nearest"|"linear"|"unpool"|"lrn","dim":1|2,"n":..,"c":..,"ih":..,"iw":..,"oh":..,"ow":..,
   "sf":[sh,sw],"ac":0|1,"k":[kh,kw],"s":[sh,sw],"p":[ph,pw],"osz":0|1,
   "size":..,"alpha":..,"beta":..,"kk":..,"gxt":0|1}
"linear" means linear (1D) or bilinear (2D). A 1D case is described as 2D with H = 1
(ih = oh = 1, sf[0] = 0, k[0] = s[0] = 1, p[0] = 0). sf: the scale factors passed to
F.interpolate, 0 = the size was given instead. ac: align_corners. k, s, p: the MaxPool /
MaxUnpool geometry; osz = 1 when output_size was passed to MaxUnpool. For "lrn", ih x iw is
the trailing extent (S = ih*iw) and size/alpha/beta/kk are nn.LocalResponseNorm's arguments
(kk = k). gxt = 1 (nearest only) when PyTorch 1.13's
own backward is not the gradient of its forward (its backward shortcuts out == in and
out == 2 in even when the scale factor says otherwise); the case then also holds i.gxt, the
true gradient of PyTorch's forward, which is stride's reference there. Metadata "count", "torch" and "generator" as in gen_fixtures.py. Seeded.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_cases  # noqa: E402

SEED = 20240921
N, C = 2, 3


def f32(t):
    return t.detach().cpu().contiguous().numpy().astype("<f4")


def base_meta(op, dim, c, ih, iw, oh, ow):
    return {"op": op, "dim": dim, "n": N, "c": c, "ih": ih, "iw": iw, "oh": oh, "ow": ow,
            "sf": [0, 0], "ac": 0, "k": [1, 1], "s": [1, 1], "p": [0, 0], "osz": 0,
            "size": 0, "alpha": 0, "beta": 0, "kk": 0, "gxt": 0}


def upsample_case(mode, dim, ih, iw, size, sf, ac, gen):
    shape = (N, C, iw) if dim == 1 else (N, C, ih, iw)
    x = (torch.rand(shape, generator=gen) * 2 - 1).requires_grad_(True)
    tmode = mode if mode == "nearest" else ("linear" if dim == 1 else "bilinear")
    kw = {} if mode == "nearest" else {"align_corners": bool(ac)}
    if size is not None:
        y = F.interpolate(x, size=size if dim == 1 else tuple(size), mode=tmode, **kw)
    else:
        y = F.interpolate(x, scale_factor=sf if dim == 1 else tuple(sf), mode=tmode, **kw)
    gy = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * gy).sum().backward()
    oh, ow = (1, y.shape[-1]) if dim == 1 else (y.shape[-2], y.shape[-1])
    m = base_meta(mode, dim, C, 1 if dim == 1 else ih, iw, oh, ow)
    if sf is not None:
        m["sf"] = [0, sf] if dim == 1 else list(sf)
    m["ac"] = int(ac)
    t = {"x": f32(x), "y": f32(y), "gy": f32(gy), "gx": f32(x.grad)}
    if mode == "nearest":
        # PyTorch 1.13's nearest forward (with C > 1) uses floor(dst * scale), but its backward
        # shortcuts out == in (copy) and out == 2 in (dst / 2), so for a scale factor other than
        # out/in with such an output (1.1 on 3, 2.1 on 5) its gradient is not that of its
        # forward. Record the true gradient of the forward then: read the source of every
        # output off the forward of a ramp (C = 3 planes, like the data) and scatter-add gy.
        with torch.no_grad():
            ramp = torch.arange(x.numel() // (N * C), dtype=torch.float64).view((1, 1) + tuple(shape[2:]))
            ramp = ramp.expand((1, C) + tuple(shape[2:])).contiguous()
            if size is not None:
                src = F.interpolate(ramp, size=y.shape[2:], mode="nearest")
            else:
                src = F.interpolate(ramp, scale_factor=sf if dim == 1 else tuple(sf), mode="nearest")
            src = src[0, 0].long().reshape(-1)
            gt = torch.zeros(N, C, ramp[0, 0].numel(), dtype=torch.float64)
            gt.index_add_(2, src, gy.double().reshape(N, C, -1))
            gt = gt.view(x.shape).float()
        if not torch.allclose(gt, x.grad, rtol=1e-5, atol=1e-5):
            t["gxt"] = f32(gt)
            m["gxt"] = 1
    return m, t


def unpool_case(dim, ih, iw, k, s, p, osz, ties, gen):
    shape = (N, C, iw) if dim == 1 else (N, C, ih, iw)
    if ties:
        src = torch.randint(-2, 3, shape, generator=gen).float() * 0.5
    else:
        src = torch.rand(shape, generator=gen) * 2 - 1
    if dim == 1:
        v, idx = F.max_pool1d(src, k[1], s[1], p[1], return_indices=True)
    else:
        v, idx = F.max_pool2d(src, tuple(k), tuple(s), tuple(p), return_indices=True)
    x = v.detach().clone().requires_grad_(True)
    if dim == 1:
        y = F.max_unpool1d(x, idx, k[1], s[1], p[1], output_size=[iw] if osz else None)
    else:
        y = F.max_unpool2d(x, idx, tuple(k), tuple(s), tuple(p), output_size=[ih, iw] if osz else None)
    gy = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * gy).sum().backward()
    pih, piw = (1, x.shape[-1]) if dim == 1 else (x.shape[-2], x.shape[-1])
    oh, ow = (1, y.shape[-1]) if dim == 1 else (y.shape[-2], y.shape[-1])
    m = base_meta("unpool", dim, C, pih, piw, oh, ow)
    m.update(k=list(k), s=list(s), p=list(p), osz=int(osz))
    return m, {"x": f32(x), "y": f32(y), "idx": idx.numpy().astype("<i8"), "gy": f32(gy),
               "gx": f32(x.grad)}


def lrn_case(c, sp, size, alpha, beta, k, amp, gen):
    shape = (N, c) + tuple(sp)
    x = ((torch.rand(shape, generator=gen) * 2 - 1) * amp).requires_grad_(True)
    y = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)
    gy = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * gy).sum().backward()
    if len(sp) == 1:
        ih, iw, dim = 1, sp[0], 1
    else:
        ih, iw, dim = sp[0], sp[1], 2
    m = base_meta("lrn", dim, c, ih, iw, ih, iw)
    m.update(size=size, alpha=alpha, beta=beta, kk=k)
    return m, {"x": f32(x), "y": f32(y), "gy": f32(gy), "gx": f32(x.grad)}


def cases(gen):
    out = []
    # nearest, 1D: (L, size, scale_factor)
    for L, size, sf in [(5, 8, None), (5, 3, None), (5, None, 1.5), (5, None, 2.5), (4, None, 2.0),
                        (7, 4, None), (5, None, 0.6), (6, 12, None), (3, None, 3.0), (5, 5, None),
                        (3, None, 1.1), (5, None, 2.1)]:
        out.append(upsample_case("nearest", 1, 1, L, size, sf, 0, gen))
    # nearest, 2D
    for ih, iw, size, sf in [((5), 5, (8, 3), None), (4, 6, None, (2.0, 2.0)), (5, 4, None, (1.5, 2.5)),
                             (6, 6, (3, 4), None), (3, 5, None, (1.1, 1.1)), (5, 3, (7, 9), None),
                             (4, 4, None, (3.0, 0.5)), (2, 3, (5, 5), None),
                             (4, 3, None, (2.1, 1.1))]:
        out.append(upsample_case("nearest", 2, ih, iw, size, sf, 0, gen))
    # linear 1D, both align_corners
    for ac in (0, 1):
        for L, size, sf in [(5, 8, None), (5, 3, None), (5, None, 1.5), (5, None, 2.5), (4, None, 2.0),
                            (6, 1, None), (7, 13, None), (5, None, 0.6), (1, 4, None)]:
            out.append(upsample_case("linear", 1, 1, L, size, sf, ac, gen))
    # bilinear 2D, both align_corners
    for ac in (0, 1):
        for ih, iw, size, sf in [(5, 5, (8, 3), None), (4, 6, None, (2.0, 2.0)), (5, 4, None, (2.5, 2.5)),
                                 (5, 4, None, (1.5, 2.5)), (6, 6, (3, 4), None), (3, 5, (7, 9), None),
                                 (4, 4, None, (3.0, 0.5)), (3, 5, None, (1.1, 1.1)), (2, 3, (1, 5), None),
                                 (7, 7, (14, 14), None)]:
            out.append(upsample_case("linear", 2, ih, iw, size, sf, ac, gen))
    # max unpool: (dim, ih, iw, k, s, p, output_size?, ties)
    for dim, ih, iw, k, s, p, osz, ties in [
            (2, 7, 7, [2, 2], [2, 2], [0, 0], 1, 0),   # 7 -> 3 -> 7 (the default would be 6)
            (2, 6, 6, [2, 2], [2, 2], [0, 0], 0, 0),
            (2, 7, 7, [3, 3], [2, 2], [1, 1], 0, 0),
            (2, 8, 6, [3, 2], [2, 2], [1, 0], 1, 0),
            (2, 5, 5, [3, 3], [1, 1], [0, 0], 0, 1),   # overlapping windows: duplicate indices
            (2, 9, 7, [3, 3], [3, 3], [0, 0], 1, 0),
            (2, 6, 6, [2, 2], [2, 2], [0, 0], 0, 1),
            (1, 1, 7, [1, 2], [1, 2], [0, 0], 1, 0),
            (1, 1, 8, [1, 2], [1, 2], [0, 0], 0, 0),
            (1, 1, 9, [1, 3], [1, 2], [0, 1], 0, 0),
            (1, 1, 10, [1, 3], [1, 1], [0, 1], 0, 1),
            (1, 1, 11, [1, 4], [1, 3], [0, 2], 1, 0)]:
        out.append(unpool_case(dim, ih, iw, k, s, p, osz, ties, gen))
    # local response norm: (C, spatial, size, alpha, beta, k, amplitude)
    for c, sp, size, alpha, beta, k, amp in [
            (6, (5,), 2, 1e-4, 0.75, 1.0, 1.0), (6, (5,), 3, 1e-4, 0.75, 1.0, 1.0),
            (6, (5,), 4, 1e-4, 0.75, 1.0, 1.0), (6, (5,), 5, 1e-4, 0.75, 1.0, 1.0),
            (7, (3, 4), 2, 1.0, 0.75, 1.0, 2.0), (7, (3, 4), 3, 1.0, 0.75, 1.0, 2.0),
            (7, (3, 4), 4, 1.0, 0.75, 1.0, 2.0), (7, (3, 4), 5, 1.0, 0.75, 1.0, 2.0),
            (8, (3, 3), 5, 5e-4, 0.75, 2.0, 10.0),     # AlexNet paper constants in PyTorch's form
            (8, (3, 3), 5, 1e-4, 0.75, 2.0, 10.0),
            (5, (4,), 3, 0.5, 0.5, 2.0, 3.0), (5, (4,), 4, 2.0, 1.0, 0.5, 1.0),
            (4, (2, 3), 7, 1.0, 0.75, 1.0, 2.0),       # window larger than C
            (1, (6,), 3, 1.0, 0.75, 1.0, 2.0), (6, (1,), 1, 1.0, 0.75, 1.0, 2.0),
            (9, (2, 2), 6, 0.3, 1.5, 1.0, 2.0)]:
        out.append(lrn_case(c, sp, size, alpha, beta, k, amp, gen))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    results = cases(gen)
    write_cases(os.path.join(outdir, "resample.safetensors"), results, "scripts/gen_resample_fixtures.py")


if __name__ == "__main__":
    main()
