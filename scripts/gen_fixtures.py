#!/usr/bin/env python3
"""gen_fixtures.py - PyTorch reference values for stride's parity tests.

Usage:  /usr/bin/python3 scripts/gen_fixtures.py tests/fixtures

Writes two .safetensors files (by hand: 8-byte little-endian header length, JSON header
padded with spaces to a multiple of 8, raw little-endian data; no dependency on the
safetensors package):

  conv.safetensors   a grid of conv1d/conv2d cases. Case i has tensors
                     i.x, i.w, i.b (if bias), i.y (forward), i.gy (random upstream
                     gradient), i.gx, i.gw, i.gb (autograd gradients of sum(y * gy)), and
                     a metadata entry "i" holding a compact JSON string
                     {"dim":1|2,"cin":..,"cout":..,"k":[kh,kw],"s":[sh,sw],"d":[dh,dw],
                      "pad":[ph,pw] | "same" | "valid","groups":..,"bias":0|1,"n":..,
                      "ih":..,"iw":..}
                     A 1D case is described as 2D with H = 1 (kh = sh = dh = 1, ph = 0,
                     ih = 1); its tensors keep PyTorch's (N, C, L) layout.
  dense.safetensors  linear, activations, cross-entropy and MSE cases; metadata "i" is
                     {"op":"linear"|"act"|"ce"|"mse", ...} (see dense_cases()).

Both files carry metadata "count" (number of cases), "torch" (torch.__version__) and
"generator". Everything is float32 computed by PyTorch on the CPU (what users compare
against); labels are int64 (one CE case uses int32). Seeded and deterministic.
"""
import json
import os
import random
import struct
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611
KERNELS = [1, 2, 3, 4, 5, 7]
STRIDES = [1, 2, 3]
DILATIONS = [1, 2, 3]
PADS = [0, 1, 2, "same", "valid"]
GROUP_MODES = ["1", "2", "dw", "dw2"]  # groups 1, 2, depthwise (cout = cin), depthwise x2


# ------------------------------------------------------------------ safetensors writer
_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64",
           np.dtype("<i4"): "I32"}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); metadata: dict str -> str."""
    arrays = []
    for name, a in tensors:
        a = np.asarray(a, order="C")  # (ascontiguousarray would turn a 0-d scalar into shape (1,))
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype not in _DTYPES:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        arrays.append((name, a))
    # 8-byte types first so that every tensor is aligned to its element size.
    order = sorted(range(len(arrays)), key=lambda i: -arrays[i][1].dtype.itemsize)
    header, chunks, off = {}, [], 0
    for i in order:
        name, a = arrays[i]
        raw = a.tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def write_cases(path, results, generator):
    """Writes numbered fixture cases: results is a list of (metadata dict, {name: array});
    case i's arrays are stored as "i.name" and its metadata as compact JSON under "i"."""
    tensors, meta = [], {}
    for i, (m, t) in enumerate(results):
        meta[str(i)] = json.dumps(m, separators=(",", ":"))
        for name, a in t.items():
            tensors.append((f"{i}.{name}", a))
    n = len(meta)
    meta["count"] = str(n)
    meta["torch"] = torch.__version__
    meta["generator"] = generator
    write_safetensors(path, tensors, meta)
    print(f"{path}: {n} cases, {os.path.getsize(path)} bytes")


def read_safetensors(path):
    """A minimal reader, used only to check what was written."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    rev = {v: k for k, v in _DTYPES.items()}
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + a:8 + n + b], dtype=rev[e["dtype"]]).reshape(e["shape"])
    return out, meta


def f32(t):
    return t.detach().cpu().contiguous().numpy().astype("<f4")


def uniform(shape, lo=-1.0, hi=1.0):
    return (torch.rand(shape, dtype=torch.float32) * (hi - lo) + lo)


# ------------------------------------------------------------------ convolution cases
def out_size(i, k, s, d, p_total):
    return (i + p_total - d * (k - 1) - 1) // s + 1


def channels(rng, mode):
    if mode == "1":
        return rng.randint(1, 6), rng.randint(1, 6), None
    if mode == "2":
        return rng.choice([2, 4, 6]), rng.choice([2, 4, 6]), 2
    if mode == "dw":
        c = rng.randint(2, 6)
        return c, c, c
    c = rng.randint(1, 3)  # dw2: cout = 2 cin
    return c, 2 * c, c


def valid_case(c):
    if c["pad"] == "same":
        return c["s"] == [1, 1]
    ptot = [0, 0] if c["pad"] == "valid" else [2 * c["pad"][0], 2 * c["pad"][1]]
    for a in range(2):
        if out_size([c["ih"], c["iw"]][a], c["k"][a], c["s"][a], c["d"][a], ptot[a]) < 1:
            return False
    return True


def draw_case(rng, dim):
    mode = rng.choice(GROUP_MODES)
    cin, cout, groups = channels(rng, mode)
    if groups is None:
        groups = 1
    if dim == 1:
        k = [1, rng.choice(KERNELS)]
        s = [1, rng.choice(STRIDES)]
        d = [1, rng.choice(DILATIONS)]
        p = rng.choice(PADS)
        pad = p if isinstance(p, str) else [0, p]
        ih, iw = 1, rng.randint(4, 17)
    else:
        k = [rng.choice(KERNELS), rng.choice(KERNELS)]
        s = [rng.choice(STRIDES), rng.choice(STRIDES)]
        d = [rng.choice(DILATIONS), rng.choice(DILATIONS)]
        r = rng.random()
        pad = "same" if r < 0.2 else "valid" if r < 0.35 else [rng.choice([0, 1, 2]), rng.choice([0, 1, 2])]
        ih, iw = rng.randint(3, 9), rng.randint(3, 11)
    if pad == "same":
        s = [1, 1]
    return {"dim": dim, "cin": cin, "cout": cout, "k": k, "s": s, "d": d, "pad": pad,
            "groups": groups, "bias": rng.randint(0, 1), "n": rng.choice([1, 2, 2, 3, 3]),
            "ih": ih, "iw": iw}


def hand_cases():
    """Combinations worth having for sure (PyTorch's asymmetric 'same', depthwise, ...)."""
    C = []

    def add(dim, cin, cout, groups, k, s, d, pad, bias, n, ih, iw):
        C.append({"dim": dim, "cin": cin, "cout": cout, "k": k, "s": s, "d": d, "pad": pad,
                  "groups": groups, "bias": bias, "n": n, "ih": ih, "iw": iw})
    # the book's MNIST-1D CNN first layer: conv1d(1, 15, k=3, s=2, 'valid') on length 40
    # is too long for the size limits; the same shape rule on 17 samples:
    add(1, 1, 4, 1, [1, 3], [1, 2], [1, 1], "valid", 1, 3, 1, 17)
    add(1, 2, 3, 1, [1, 4], [1, 1], [1, 1], "same", 1, 2, 1, 9)    # even k: left 1, right 2
    add(1, 2, 3, 1, [1, 4], [1, 1], [1, 3], "same", 0, 2, 1, 10)   # left 4, right 5
    add(1, 2, 2, 1, [1, 2], [1, 1], [1, 2], "same", 1, 3, 1, 7)
    add(1, 3, 3, 3, [1, 5], [1, 1], [1, 1], "same", 1, 2, 1, 8)    # depthwise
    add(1, 3, 6, 3, [1, 3], [1, 3], [1, 2], [0, 2], 0, 3, 1, 16)   # depthwise x2, stride 3
    add(1, 4, 6, 2, [1, 7], [1, 2], [1, 1], [0, 1], 1, 2, 1, 15)
    add(1, 1, 1, 1, [1, 1], [1, 1], [1, 1], [0, 0], 0, 1, 1, 4)
    add(1, 5, 2, 1, [1, 7], [1, 1], [1, 2], [0, 0], 1, 2, 1, 13)   # output length 1
    add(2, 3, 4, 1, [3, 2], [2, 1], [1, 1], [1, 0], 1, 2, 7, 8)    # non-square k and s
    add(2, 2, 3, 1, [4, 2], [1, 1], [2, 3], "same", 1, 2, 9, 10)
    add(2, 4, 4, 4, [3, 3], [1, 1], [1, 1], "same", 1, 3, 6, 7)    # depthwise 3x3
    add(2, 2, 4, 2, [3, 5], [3, 2], [1, 1], [2, 1], 0, 2, 9, 11)
    add(2, 3, 6, 3, [2, 4], [2, 3], [2, 1], [1, 2], 1, 2, 8, 9)
    add(2, 1, 2, 1, [7, 7], [1, 1], [1, 1], "same", 1, 1, 5, 6)
    add(2, 6, 6, 1, [1, 1], [1, 1], [1, 1], "valid", 1, 2, 4, 5)    # 1x1 conv
    add(2, 2, 2, 1, [5, 3], [1, 2], [2, 3], "valid", 0, 3, 9, 11)
    add(2, 6, 4, 2, [2, 2], [2, 2], [1, 1], [0, 0], 1, 2, 8, 8)
    return C


def conv_cases():
    rng = random.Random(SEED)
    cases = hand_cases()
    seen = {json.dumps(c, sort_keys=True) for c in cases}
    target = {1: 80, 2: 80}
    count = {1: sum(c["dim"] == 1 for c in cases), 2: sum(c["dim"] == 2 for c in cases)}
    for dim in (1, 2):
        while count[dim] < target[dim]:
            c = draw_case(rng, dim)
            key = json.dumps(c, sort_keys=True)
            if not valid_case(c) or key in seen:
                continue
            # keep the file small: cap the number of weights and activations
            wsz = c["cout"] * (c["cin"] // c["groups"]) * c["k"][0] * c["k"][1]
            xsz = c["n"] * max(c["cin"], c["cout"]) * c["ih"] * c["iw"]
            if wsz > 800 or xsz > 1200:
                continue
            seen.add(key)
            cases.append(c)
            count[dim] += 1
    return cases


def coverage(cases):
    """Counts of every parameter value per dimension; fails loudly on a gap."""
    problems = []
    for dim in (1, 2):
        cs = [c for c in cases if c["dim"] == dim]
        ax = [1] if dim == 1 else [0, 1]
        vals = {"k": {}, "s": {}, "d": {}, "pad": {}, "groups": {}, "bias": {}, "n": {},
                "parity": {}}
        for c in cs:
            for a in ax:
                for p in ("k", "s", "d"):
                    vals[p][c[p][a]] = vals[p].get(c[p][a], 0) + 1
                pv = c["pad"] if isinstance(c["pad"], str) else c["pad"][a]
                vals["pad"][pv] = vals["pad"].get(pv, 0) + 1
                ln = [c["ih"], c["iw"]][a]
                vals["parity"][ln % 2] = vals["parity"].get(ln % 2, 0) + 1
            gm = ("1" if c["groups"] == 1 else "dw2" if c["cout"] == 2 * c["cin"] and c["groups"] == c["cin"]
                  else "dw" if c["groups"] == c["cin"] else str(c["groups"]))
            vals["groups"][gm] = vals["groups"].get(gm, 0) + 1
            vals["bias"][c["bias"]] = vals["bias"].get(c["bias"], 0) + 1
            vals["n"][c["n"]] = vals["n"].get(c["n"], 0) + 1
        want = {"k": KERNELS, "s": STRIDES, "d": DILATIONS, "pad": PADS, "groups": GROUP_MODES,
                "bias": [0, 1], "n": [2, 3], "parity": [0, 1]}
        for p, vs in want.items():
            for v in vs:
                if vals[p].get(v, 0) < 3:
                    problems.append(f"{dim}D {p}={v}: {vals[p].get(v, 0)} cases")
        print(f"  {dim}D coverage: " + "; ".join(
            f"{p} " + ",".join(f"{v}:{n}" for v, n in sorted(d.items(), key=lambda t: str(t[0])))
            for p, d in vals.items()))
    if problems:
        raise SystemExit("coverage gaps: " + "; ".join(problems))


def gen_conv(path):
    cases = conv_cases()
    coverage(cases)
    tensors, meta = [], {}
    for i, c in enumerate(cases):
        g = c["groups"]
        if c["dim"] == 1:
            xs = (c["n"], c["cin"], c["iw"])
            ws = (c["cout"], c["cin"] // g, c["k"][1])
            pad = c["pad"] if isinstance(c["pad"], str) else c["pad"][1]
            conv = lambda x, w, b: F.conv1d(x, w, b, stride=c["s"][1], padding=pad,
                                            dilation=c["d"][1], groups=g)
        else:
            xs = (c["n"], c["cin"], c["ih"], c["iw"])
            ws = (c["cout"], c["cin"] // g, c["k"][0], c["k"][1])
            pad = c["pad"] if isinstance(c["pad"], str) else tuple(c["pad"])
            conv = lambda x, w, b: F.conv2d(x, w, b, stride=tuple(c["s"]), padding=pad,
                                            dilation=tuple(c["d"]), groups=g)
        x = uniform(xs).requires_grad_(True)
        w = uniform(ws).requires_grad_(True)
        b = uniform((c["cout"],)).requires_grad_(True) if c["bias"] else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'same' with an even kernel warns
            y = conv(x, w, b)
        gy = uniform(tuple(y.shape))
        (y * gy).sum().backward()
        # an independent float64 evaluation guards against a mistake in this script
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y64 = conv(x.double(), w.double(), b.double() if b is not None else None)
        assert torch.allclose(y.double(), y64, atol=1e-5), f"case {i}"
        tensors += [(f"{i}.x", f32(x)), (f"{i}.w", f32(w))]
        if b is not None:
            tensors += [(f"{i}.b", f32(b))]
        tensors += [(f"{i}.y", f32(y)), (f"{i}.gy", f32(gy)), (f"{i}.gx", f32(x.grad)),
                    (f"{i}.gw", f32(w.grad))]
        if b is not None:
            tensors += [(f"{i}.gb", f32(b.grad))]
        meta[str(i)] = json.dumps(c, separators=(",", ":"))
    meta["count"] = str(len(cases))
    meta["torch"] = torch.__version__
    meta["generator"] = "scripts/gen_fixtures.py seed %d" % SEED
    write_safetensors(path, tensors, meta)
    return len(cases)


# ------------------------------------------------------------------ dense cases
def dense_cases():
    C = []
    for n, fin, fout, bias in [(1, 1, 1, 1), (3, 5, 4, 1), (4, 17, 9, 0), (2, 8, 1, 1),
                               (5, 3, 12, 0), (7, 16, 10, 1), (1, 40, 6, 0)]:
        C.append({"op": "linear", "n": n, "in": fin, "out": fout, "bias": bias})
    for act, slope in [("relu", 0), ("leaky_relu", 0.01), ("leaky_relu", 0.2), ("sigmoid", 0),
                       ("tanh", 0)]:
        for shape in ([4, 13], [37]):
            C.append({"op": "act", "act": act, "slope": slope, "shape": shape})
    for n, c, kind in [(4, 10, "normal"), (3, 5, "large50"), (2, 3, "large50b"), (5, 2, "normal"),
                       (1, 1, "normal"), (3, 4, "huge"), (6, 7, "normal_i32")]:
        C.append({"op": "ce", "n": n, "c": c, "kind": kind})
    for shape in ([4, 6], [1, 1], [3, 2, 5]):
        C.append({"op": "mse", "shape": shape})
    return C


def gen_dense(path):
    tensors, meta = [], {}
    cases = dense_cases()
    for i, c in enumerate(cases):
        p = f"{i}."
        if c["op"] == "linear":
            x = uniform((c["n"], c["in"])).requires_grad_(True)
            w = uniform((c["out"], c["in"])).requires_grad_(True)
            b = uniform((c["out"],)).requires_grad_(True) if c["bias"] else None
            y = F.linear(x, w, b)
            gy = uniform(tuple(y.shape))
            (y * gy).sum().backward()
            tensors += [(p + "x", f32(x)), (p + "w", f32(w))]
            if b is not None:
                tensors += [(p + "b", f32(b)), (p + "gb", f32(b.grad))]
            tensors += [(p + "y", f32(y)), (p + "gy", f32(gy)), (p + "gx", f32(x.grad)),
                        (p + "gw", f32(w.grad))]
        elif c["op"] == "act":
            shape = tuple(c["shape"])
            if c["act"] in ("relu", "leaky_relu"):
                mag = uniform(shape, 0.05, 3.0)
                sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
                x = mag * sign
            else:
                x = uniform(shape, -6.0, 6.0)
                flat = x.view(-1)
                flat[:4] = torch.tensor([30.0, -30.0, 100.0, -100.0])  # saturation
            x = x.clone().requires_grad_(True)
            if c["act"] == "relu":
                y = F.relu(x)
            elif c["act"] == "leaky_relu":
                y = F.leaky_relu(x, c["slope"])
            elif c["act"] == "sigmoid":
                y = torch.sigmoid(x)
            else:
                y = torch.tanh(x)
            gy = uniform(shape)
            (y * gy).sum().backward()
            tensors += [(p + "x", f32(x)), (p + "y", f32(y)), (p + "gy", f32(gy)),
                        (p + "gx", f32(x.grad))]
        elif c["op"] == "ce":
            n, k = c["n"], c["c"]
            x = torch.randn(n, k) * 3.0
            labels = torch.randint(0, k, (n,), dtype=torch.int64)
            if c["kind"] == "large50":
                x[0, 0], x[0, 1 % k] = 50.0, -50.0
                x[1, :] = -50.0
                x[1, 2 % k] = 50.0
                x[2, :] = 50.0
                labels[0] = 1 % k  # the label sits on the -50 logit: loss about 100
                labels[1] = 2 % k
            elif c["kind"] == "large50b":
                x[0] = torch.tensor([50.0, -50.0, 0.0])
                x[1] = torch.tensor([-50.0, 50.0, 49.0])
                labels[:] = torch.tensor([0, 2])
            elif c["kind"] == "huge":  # exp() overflows even in double without the max shift
                x[0] = torch.tensor([1000.0, 999.0, -1000.0, 0.0])
                x[1] = torch.tensor([-1000.0, -1000.0, -1000.0, -1000.0])
                x[2] = torch.tensor([88.0, 89.0, 90.0, 91.0])
                labels[:] = torch.tensor([1, 3, 0])
            x = x.clone().requires_grad_(True)
            loss = F.cross_entropy(x, labels)
            loss.backward()
            lab = labels.numpy().astype("<i4" if c["kind"] == "normal_i32" else "<i8")
            tensors += [(p + "x", f32(x)), (p + "labels", lab),
                        (p + "loss", f32(loss).reshape(1)), (p + "gx", f32(x.grad))]
        else:
            shape = tuple(c["shape"])
            x = uniform(shape, -2, 2).requires_grad_(True)
            t = uniform(shape, -2, 2)
            loss = F.mse_loss(x, t)
            loss.backward()
            tensors += [(p + "x", f32(x)), (p + "t", f32(t)), (p + "loss", f32(loss).reshape(1)),
                        (p + "gx", f32(x.grad))]
        meta[str(i)] = json.dumps(c, separators=(",", ":"))
    meta["count"] = str(len(cases))
    meta["torch"] = torch.__version__
    meta["generator"] = "scripts/gen_fixtures.py seed %d" % SEED
    write_safetensors(path, tensors, meta)
    return len(cases)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_fixtures.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # the same summation order on every machine
    n = gen_conv(os.path.join(out, "conv.safetensors"))
    torch.manual_seed(SEED + 1)
    m = gen_dense(os.path.join(out, "dense.safetensors"))
    for name in ("conv.safetensors", "dense.safetensors"):
        path = os.path.join(out, name)
        t, meta = read_safetensors(path)
        assert int(meta["count"]) == (n if name.startswith("conv") else m)
        print(f"{path}: {meta['count']} cases, {len(t)} tensors, "
              f"{os.path.getsize(path)} bytes, torch {meta['torch']}")


if __name__ == "__main__":
    main()
