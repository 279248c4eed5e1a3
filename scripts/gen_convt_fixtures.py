#!/usr/bin/env python3
"""gen_convt_fixtures.py - PyTorch reference values for stride's transposed convolution.

Usage:  /usr/bin/python3 scripts/gen_convt_fixtures.py tests/fixtures/conv_transpose.safetensors

Writes one .safetensors file (with write_safetensors from gen_fixtures.py) holding a
grid of conv_transpose1d/conv_transpose2d cases. Case i has tensors i.x, i.w, i.b (if
bias), i.y (forward), i.gy (random upstream gradient), i.gx, i.gw, i.gb (autograd
gradients of sum(y * gy)), and a metadata entry "i" holding a compact JSON string
  {"dim":1|2,"cin":..,"cout":..,"k":[kh,kw],"s":[sh,sw],"d":[dh,dw],"pad":[ph,pw],
   "op":[oph,opw],"groups":..,"bias":0|1,"n":..,"ih":..,"iw":..,"oh":..,"ow":..}
with w of shape (cin, cout/groups, kh, kw) (PyTorch's ConvTranspose layout). A 1D case
is described as 2D with H = 1 (kh = sh = dh = 1, ph = oph = 0, ih = oh = 1); its tensors
keep PyTorch's (N, C, L) layout. Metadata "count", "torch" and "generator" as in
gen_fixtures.py. Only valid output_padding values are drawn (op < stride or op <
dilation). Every case is also checked in this script against the input gradient of
conv1d/conv2d with the same arguments and against a float64 evaluation.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import write_safetensors, read_safetensors, f32, uniform  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SEED = 20240612
KERNELS = [1, 2, 3, 4, 5]
STRIDES = [1, 2, 3]
DILATIONS = [1, 2, 3]
PADS = [0, 1, 2]
OUT_PADS = [0, 1, 2]
GROUP_MODES = ["1", "2", "dw", "dw2"]  # groups 1, 2, depthwise (cout = cin), depthwise x2
TARGET = {1: 50, 2: 55}
MAX_W, MAX_X, MAX_Y = 400, 200, 700   # caps on weights and activations per case (file size)


def out_size(i, k, s, d, p, op):
    return (i - 1) * s - 2 * p + d * (k - 1) + op + 1


def channels(rng, mode):
    if mode == "1":
        return rng.randint(1, 5), rng.randint(1, 5), 1
    if mode == "2":
        return rng.choice([2, 4, 6]), rng.choice([2, 4, 6]), 2
    if mode == "dw":
        c = rng.randint(2, 5)
        return c, c, c
    c = rng.randint(1, 3)  # dw2: cout = 2 cin
    return c, 2 * c, c


def complete(c):
    """Adds oh, ow; None if the case is invalid."""
    o = []
    for a, ln in enumerate([c["ih"], c["iw"]]):
        if not (c["op"][a] < c["s"][a] or c["op"][a] < c["d"][a]):
            return None
        v = out_size(ln, c["k"][a], c["s"][a], c["d"][a], c["pad"][a], c["op"][a])
        if v < 1:
            return None
        o.append(v)
    c["oh"], c["ow"] = o
    return c


def draw_op(rng, s, d):
    lim = max(s, d)  # op < s or op < d  <=>  op < max(s, d)
    return rng.choice([v for v in OUT_PADS if v < lim])


def draw_case(rng, dim):
    mode = rng.choice(GROUP_MODES)
    cin, cout, groups = channels(rng, mode)
    if dim == 1:
        k = [1, rng.choice(KERNELS)]
        s = [1, rng.choice(STRIDES)]
        d = [1, rng.choice(DILATIONS)]
        pad = [0, rng.choice(PADS)]
        op = [0, draw_op(rng, s[1], d[1])]
        ih, iw = 1, rng.randint(2, 12)
    else:
        k = [rng.choice(KERNELS), rng.choice(KERNELS)]
        s = [rng.choice(STRIDES), rng.choice(STRIDES)]
        d = [rng.choice(DILATIONS), rng.choice(DILATIONS)]
        pad = [rng.choice(PADS), rng.choice(PADS)]
        op = [draw_op(rng, s[0], d[0]), draw_op(rng, s[1], d[1])]
        ih, iw = rng.randint(1, 6), rng.randint(1, 7)
    return {"dim": dim, "cin": cin, "cout": cout, "k": k, "s": s, "d": d, "pad": pad, "op": op,
            "groups": groups, "bias": rng.randint(0, 1), "n": 2, "ih": ih, "iw": iw}


def hand_cases():
    C = []

    def add(dim, cin, cout, groups, k, s, d, pad, op, bias, n, ih, iw):
        C.append(complete({"dim": dim, "cin": cin, "cout": cout, "k": k, "s": s, "d": d, "pad": pad,
                           "op": op, "groups": groups, "bias": bias, "n": n, "ih": ih, "iw": iw}))
    add(1, 1, 1, 1, [1, 3], [1, 1], [1, 1], [0, 0], [0, 0], 0, 1, 1, 4)   # plain full correlation
    add(1, 2, 3, 1, [1, 4], [1, 2], [1, 1], [0, 1], [0, 1], 1, 2, 1, 7)   # stride 2, op 1
    add(1, 3, 2, 1, [1, 3], [1, 3], [1, 1], [0, 1], [0, 2], 1, 2, 1, 5)   # op 2 < stride 3
    add(1, 2, 2, 1, [1, 3], [1, 1], [1, 2], [0, 0], [0, 1], 1, 2, 1, 6)   # op 1 >= stride, < dilation
    add(1, 2, 2, 1, [1, 2], [1, 1], [1, 3], [0, 2], [0, 2], 0, 2, 1, 6)   # op 2 >= stride, < dilation 3
    add(1, 4, 4, 4, [1, 5], [1, 2], [1, 1], [0, 2], [0, 1], 1, 2, 1, 8)   # depthwise
    add(1, 4, 6, 2, [1, 3], [1, 2], [1, 2], [0, 1], [0, 1], 1, 2, 1, 7)   # groups 2
    add(1, 3, 1, 1, [1, 1], [1, 1], [1, 1], [0, 0], [0, 0], 1, 2, 1, 1)   # length 1
    add(1, 2, 3, 1, [1, 2], [1, 3], [1, 1], [0, 2], [0, 0], 0, 2, 1, 2)   # padding eats the output
    add(2, 3, 2, 1, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], 1, 2, 4, 5)   # the usual upsampler
    add(2, 2, 3, 1, [4, 4], [2, 2], [1, 1], [1, 1], [0, 0], 1, 2, 3, 4)   # DCGAN-style 4x4 s2 p1
    add(2, 4, 6, 2, [3, 2], [2, 3], [2, 1], [1, 0], [1, 2], 1, 2, 3, 3)   # groups 2, non-square
    add(2, 3, 3, 3, [3, 3], [1, 1], [2, 2], [2, 2], [1, 1], 0, 2, 4, 4)   # depthwise, op < dilation
    add(2, 2, 4, 2, [2, 5], [3, 1], [1, 3], [0, 2], [2, 2], 1, 2, 3, 4)   # dw2, op 2 (< s 3; < d 3)
    add(2, 2, 2, 1, [1, 1], [3, 3], [1, 1], [0, 0], [2, 1], 1, 2, 2, 3)   # 1x1 kernel, stride 3
    add(2, 1, 2, 1, [5, 4], [1, 2], [3, 2], [2, 1], [2, 1], 1, 2, 2, 3)
    return C


def cases():
    rng = random.Random(SEED)
    cs = hand_cases()
    seen = {json.dumps(c, sort_keys=True) for c in cs}
    count = {1: sum(c["dim"] == 1 for c in cs), 2: sum(c["dim"] == 2 for c in cs)}
    for dim in (1, 2):
        while count[dim] < TARGET[dim]:
            c = complete(draw_case(rng, dim))
            if c is None:
                continue
            key = json.dumps(c, sort_keys=True)
            if key in seen:
                continue
            wsz = c["cin"] * (c["cout"] // c["groups"]) * c["k"][0] * c["k"][1]
            xsz = c["n"] * c["cin"] * c["ih"] * c["iw"]
            ysz = c["n"] * c["cout"] * c["oh"] * c["ow"]
            if wsz > MAX_W or xsz > MAX_X or ysz > MAX_Y:
                continue
            seen.add(key)
            cs.append(c)
            count[dim] += 1
    return cs


def coverage(cs):
    problems = []
    for dim in (1, 2):
        sub = [c for c in cs if c["dim"] == dim]
        ax = [1] if dim == 1 else [0, 1]
        vals = {p: {} for p in ("k", "s", "d", "pad", "op", "groups", "bias", "op>=s")}
        for c in sub:
            for a in ax:
                for p in ("k", "s", "d", "pad", "op"):
                    vals[p][c[p][a]] = vals[p].get(c[p][a], 0) + 1
                big = int(c["op"][a] >= c["s"][a])
                vals["op>=s"][big] = vals["op>=s"].get(big, 0) + 1
            gm = ("1" if c["groups"] == 1 else "dw2" if c["cout"] == 2 * c["cin"] and c["groups"] == c["cin"]
                  else "dw" if c["groups"] == c["cin"] and c["cout"] == c["cin"] else str(c["groups"]))
            vals["groups"][gm] = vals["groups"].get(gm, 0) + 1
            vals["bias"][c["bias"]] = vals["bias"].get(c["bias"], 0) + 1
        want = {"k": KERNELS, "s": STRIDES, "d": DILATIONS, "pad": PADS, "op": OUT_PADS,
                "groups": GROUP_MODES, "bias": [0, 1], "op>=s": [0, 1]}
        for p, vs in want.items():
            for v in vs:
                if vals[p].get(v, 0) < 2:
                    problems.append(f"{dim}D {p}={v}: {vals[p].get(v, 0)} cases")
        print(f"  {dim}D coverage: " + "; ".join(
            f"{p} " + ",".join(f"{v}:{n}" for v, n in sorted(d.items(), key=lambda t: str(t[0])))
            for p, d in vals.items()))
    if problems:
        raise SystemExit("coverage gaps: " + "; ".join(problems))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_convt_fixtures.py OUT.safetensors")
    path = sys.argv[1]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    cs = cases()
    coverage(cs)
    tensors, meta = [], {}
    for i, c in enumerate(cs):
        g = c["groups"]
        if c["dim"] == 1:
            xs = (c["n"], c["cin"], c["iw"])
            ws = (c["cin"], c["cout"] // g, c["k"][1])
            kw = dict(stride=c["s"][1], padding=c["pad"][1], dilation=c["d"][1], groups=g)
            convt = lambda x, w, b: F.conv_transpose1d(x, w, b, output_padding=c["op"][1], **kw)
            conv = lambda u, w: F.conv1d(u, w, None, **kw)
            ys = (c["n"], c["cout"], c["ow"])
        else:
            xs = (c["n"], c["cin"], c["ih"], c["iw"])
            ws = (c["cin"], c["cout"] // g, c["k"][0], c["k"][1])
            kw = dict(stride=tuple(c["s"]), padding=tuple(c["pad"]), dilation=tuple(c["d"]), groups=g)
            convt = lambda x, w, b: F.conv_transpose2d(x, w, b, output_padding=tuple(c["op"]), **kw)
            conv = lambda u, w: F.conv2d(u, w, None, **kw)
            ys = (c["n"], c["cout"], c["oh"], c["ow"])
        x = uniform(xs).requires_grad_(True)
        w = uniform(ws).requires_grad_(True)
        b = uniform((c["cout"],)).requires_grad_(True) if c["bias"] else None
        y = convt(x, w, b)
        assert tuple(y.shape) == ys, f"case {i}: shape {tuple(y.shape)} != {ys}"
        gy = uniform(ys)
        (y * gy).sum().backward()
        # independent checks: float64, and the input gradient of the mirror convolution
        with torch.no_grad():
            y64 = convt(x.double(), w.double(), b.double() if b is not None else None)
        assert torch.allclose(y.double(), y64, atol=1e-5), f"case {i}: float64"
        u = torch.zeros(ys, dtype=torch.float64, requires_grad=True)
        # (with output_padding >= stride the convolution has extra outputs; they are not ours)
        cu = conv(u, w.double().detach())[..., :c["ih"], :c["iw"]] if c["dim"] == 2 else \
            conv(u, w.double().detach())[..., :c["iw"]]
        (gu,) = torch.autograd.grad((cu * x.double().detach()).sum(), u)
        if b is not None:
            gu = gu + b.double().detach().view(1, -1, *([1] * c["dim"]))
        assert torch.allclose(gu, y64, atol=1e-9), f"case {i}: not the conv input gradient"
        tensors += [(f"{i}.x", f32(x)), (f"{i}.w", f32(w))]
        if b is not None:
            tensors += [(f"{i}.b", f32(b))]
        tensors += [(f"{i}.y", f32(y)), (f"{i}.gy", f32(gy)), (f"{i}.gx", f32(x.grad)),
                    (f"{i}.gw", f32(w.grad))]
        if b is not None:
            tensors += [(f"{i}.gb", f32(b.grad))]
        meta[str(i)] = json.dumps(c, separators=(",", ":"))
    meta["count"] = str(len(cs))
    meta["torch"] = torch.__version__
    meta["generator"] = "scripts/gen_convt_fixtures.py seed %d" % SEED
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    write_safetensors(path, tensors, meta)
    t, m = read_safetensors(path)
    assert int(m["count"]) == len(cs)
    print(f"{path}: {m['count']} cases, {len(t)} tensors, {os.path.getsize(path)} bytes, torch {m['torch']}")


if __name__ == "__main__":
    main()
