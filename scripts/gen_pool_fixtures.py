#!/usr/bin/env python3
"""gen_pool_fixtures.py - PyTorch reference values for stride's pooling kernels.

Usage:  /usr/bin/python3 scripts/gen_pool_fixtures.py tests/fixtures

Writes tests/fixtures/pool.safetensors (with write_cases from gen_fixtures.py).
Case i has tensors
  i.x    input, (N, C, L) for 1D or (N, C, H, W) for 2D, float32
  i.y    forward output
  i.idx  (max pooling only) return_indices, int64: flat y*W + x in the unpadded plane
  i.gy   a random upstream gradient, shaped like y
  i.gx   autograd gradient of sum(y * gy) with respect to x
and a metadata entry "i" holding a compact JSON string
  {"op":"max"|"avg"|"adaptive","dim":1|2,"n":..,"c":..,"ih":..,"iw":..,"oh":..,"ow":..,
   "k":[kh,kw],"s":[sh,sw],"sdef":0|1,"p":[ph,pw],"d":[dh,dw],"ceil":0|1,"cip":0|1,
   "div":0|N,"ties":0|1,"nan":0|1}
A 1D case is described as 2D with H = 1 (kh = sh = dh = 1, ph = 0, ih = oh = 1); its
tensors keep PyTorch's (N, C, L) layout. "sdef" = 1 when the stride was left to its
default (= kernel); "s" then holds the kernel. For "adaptive" only ih, iw, oh, ow matter.
Metadata "count", "torch" and "generator" as in gen_fixtures.py. Seeded and deterministic.
"""
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_cases  # noqa: E402

SEED = 20240917
N, C = 2, 3


def f32(t):
    return t.detach().cpu().contiguous().numpy().astype("<f4")


def out_size(i, k, s, p, d, ceil):
    num = i + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= i + p:
        o -= 1
    return o


def make_input(shape, ties, nan, gen):
    if ties:  # few distinct values: many equal maxima in a window
        x = torch.randint(-2, 3, shape, generator=gen).float() * 0.5
    else:
        x = torch.rand(shape, generator=gen) * 2 - 1
    if nan:
        flat = x.view(-1)
        for j in range(0, flat.numel(), 7):
            flat[j] = float("nan")
    return x


def run_case(op, dim, ih, iw, k, s, sdef, p, d, ceil, cip, div, ties, nan, out_hw, gen):
    shape = (N, C, iw) if dim == 1 else (N, C, ih, iw)
    x = make_input(shape, ties, nan, gen).requires_grad_(True)
    idx = None
    if op == "max":
        if dim == 1:
            y, idx = F.max_pool1d(x, k[1], None if sdef else s[1], p[1], d[1], ceil_mode=bool(ceil),
                                  return_indices=True)
        else:
            y, idx = F.max_pool2d(x, tuple(k), None if sdef else tuple(s), tuple(p), tuple(d),
                                  ceil_mode=bool(ceil), return_indices=True)
    elif op == "avg":
        if dim == 1:
            y = F.avg_pool1d(x, k[1], None if sdef else s[1], p[1], ceil_mode=bool(ceil),
                             count_include_pad=bool(cip))
        else:
            y = F.avg_pool2d(x, tuple(k), None if sdef else tuple(s), tuple(p), ceil_mode=bool(ceil),
                             count_include_pad=bool(cip), divisor_override=div if div else None)
    else:
        if dim == 1:
            y = F.adaptive_avg_pool1d(x, out_hw[1])
        else:
            y = F.adaptive_avg_pool2d(x, tuple(out_hw))
    gy = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * gy).sum().backward()
    oh, ow = (1, y.shape[-1]) if dim == 1 else (y.shape[-2], y.shape[-1])
    meta = {"op": op, "dim": dim, "n": N, "c": C, "ih": ih, "iw": iw, "oh": oh, "ow": ow,
            "k": list(k), "s": list(s), "sdef": int(sdef), "p": list(p), "d": list(d),
            "ceil": int(ceil), "cip": int(cip), "div": int(div), "ties": int(ties), "nan": int(nan)}
    t = {"x": f32(x), "y": f32(y), "gy": f32(gy), "gx": f32(x.grad)}
    if idx is not None:
        t["idx"] = idx.detach().numpy().astype("<i8")
    return meta, t


def cases():
    rng = random.Random(SEED)
    out = []
    # pooling windows: (op, dim) x a sampled grid of kernel/stride/padding/dilation/ceil
    for op in ("max", "avg"):
        for dim in (1, 2):
            want = 40 if dim == 2 else 24
            seen = set()
            tries = 0
            while want > 0 and tries < 10000:
                tries += 1
                if dim == 2:
                    k = [rng.randint(1, 5), rng.randint(1, 5)]
                    if rng.random() < 0.5:
                        k[1] = k[0]
                    sdef = rng.random() < 0.2
                    s = list(k) if sdef else [rng.randint(1, 3), rng.randint(1, 3)]
                    p = [rng.randint(0, 2), rng.randint(0, 2)]
                    d = [rng.randint(1, 3), rng.randint(1, 3)] if op == "max" else [1, 1]
                    if op == "max" and rng.random() < 0.4:
                        d = [1, 1]
                    ih, iw = rng.randint(3, 9), rng.randint(3, 9)
                else:
                    k = [1, rng.randint(1, 5)]
                    sdef = rng.random() < 0.2
                    s = [1, k[1] if sdef else rng.randint(1, 3)]
                    p = [0, rng.randint(0, 2)]
                    d = [1, rng.randint(1, 3) if (op == "max" and rng.random() < 0.6) else 1]
                    ih, iw = 1, rng.randint(3, 14)
                ceil = rng.random() < 0.4
                cip = 1 if op == "max" else int(rng.random() < 0.5)
                div = rng.choice([1, 2, 5, 7]) if (op == "avg" and dim == 2 and rng.random() < 0.15) else 0
                ties = op == "max" and rng.random() < 0.35
                # PyTorch 1.13 wants pad <= kernel/2 (newer versions: effective kernel / 2)
                if p[0] > k[0] // 2 or p[1] > k[1] // 2:
                    continue
                if out_size(ih, k[0], s[0], p[0], d[0], ceil) < 1 or out_size(iw, k[1], s[1], p[1], d[1], ceil) < 1:
                    continue
                key = (tuple(k), tuple(s), tuple(p), tuple(d), ceil, cip, div)
                if key in seen:
                    continue
                seen.add(key)
                out.append(dict(op=op, dim=dim, ih=ih, iw=iw, k=k, s=s, sdef=sdef, p=p, d=d, ceil=ceil,
                                cip=cip, div=div, ties=ties, nan=False, out_hw=None))
                want -= 1
    # hand-picked: ceil mode windows that would start in the right padding, spec examples
    extra = [
        dict(op="avg", dim=2, ih=6, iw=6, k=[3, 3], s=[2, 2], p=[1, 1], ceil=True, cip=1),
        dict(op="avg", dim=2, ih=6, iw=6, k=[3, 3], s=[2, 2], p=[1, 1], ceil=True, cip=0),
        dict(op="avg", dim=2, ih=5, iw=5, k=[2, 2], s=[2, 2], p=[1, 1], ceil=True, cip=1),
        dict(op="avg", dim=2, ih=7, iw=4, k=[4, 2], s=[3, 3], p=[2, 1], ceil=True, cip=1, div=3),
        dict(op="avg", dim=1, ih=1, iw=4, k=[1, 2], s=[1, 2], p=[0, 1], ceil=True, cip=1),
        dict(op="max", dim=2, ih=5, iw=5, k=[3, 3], s=[2, 2], p=[1, 1], ceil=False),
        dict(op="max", dim=2, ih=6, iw=6, k=[3, 3], s=[2, 2], p=[1, 1], ceil=True),
        dict(op="max", dim=2, ih=5, iw=5, k=[2, 2], s=[2, 2], p=[1, 1], ceil=True, ties=True),
        dict(op="max", dim=2, ih=8, iw=7, k=[3, 2], s=[2, 2], p=[1, 1], d=[2, 3], ceil=True),
        dict(op="max", dim=2, ih=6, iw=6, k=[2, 2], s=[1, 1], p=[0, 0], ceil=False, ties=True),
        dict(op="max", dim=2, ih=7, iw=7, k=[3, 3], s=[2, 2], p=[1, 1], ceil=False, nan=True),
        dict(op="max", dim=1, ih=1, iw=11, k=[1, 3], s=[1, 2], p=[0, 1], ceil=True, nan=True),
    ]
    for e in extra:
        e.setdefault("d", [1, 1]); e.setdefault("cip", 1); e.setdefault("div", 0)
        e.setdefault("ties", False); e.setdefault("nan", False)
        e.update(sdef=False, out_hw=None)
        out.append(e)
    # adaptive average pooling
    for ih, iw, oh, ow in [(10, 10, 4, 4), (7, 7, 3, 3), (5, 5, 8, 8), (6, 9, 3, 3), (9, 6, 4, 5),
                           (8, 8, 1, 1), (7, 5, 7, 5), (4, 6, 6, 4), (11, 3, 5, 2), (3, 11, 2, 7),
                           (6, 6, 2, 3), (13, 13, 5, 6)]:
        out.append(dict(op="adaptive", dim=2, ih=ih, iw=iw, k=[1, 1], s=[1, 1], sdef=False, p=[0, 0],
                        d=[1, 1], ceil=False, cip=1, div=0, ties=False, nan=False, out_hw=[oh, ow]))
    for iw, ow in [(10, 4), (7, 3), (5, 8), (12, 5), (9, 9), (8, 1), (13, 6), (4, 7)]:
        out.append(dict(op="adaptive", dim=1, ih=1, iw=iw, k=[1, 1], s=[1, 1], sdef=False, p=[0, 0],
                        d=[1, 1], ceil=False, cip=1, div=0, ties=False, nan=False, out_hw=[1, ow]))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    results = [run_case(c["op"], c["dim"], c["ih"], c["iw"], c["k"], c["s"], c["sdef"], c["p"], c["d"], c["ceil"], c["cip"],
                        c["div"], c["ties"], c["nan"], c["out_hw"], gen) for c in cases()]
    write_cases(os.path.join(outdir, "pool.safetensors"), results, "scripts/gen_pool_fixtures.py")


if __name__ == "__main__":
    main()
