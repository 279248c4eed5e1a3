#!/usr/bin/python3
"""torch_small.py - PyTorch side of bench/small_kernels.c: the same single layers and
networks, timed the same way (best of many repetitions), one JSON line each.

  /usr/bin/python3 bench/torch_small.py THREADS conv N CIN COUT H W KH KW SH SW PH PW GROUPS [FIRST]
  /usr/bin/python3 bench/torch_small.py THREADS convt N CIN COUT H W K S
  /usr/bin/python3 bench/torch_small.py THREADS train mnist1d-cnn|lenet5 BATCH
  /usr/bin/python3 bench/torch_small.py THREADS infer lenet5 BATCH

Run with OPENBLAS_NUM_THREADS=1 (PyTorch's fastest setting on this machine)."""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


CLOCK = time.perf_counter  # thread CPU time with one thread (set in main), as small_kernels.c


def best(fn, budget=1.0):
    t0 = CLOCK()
    fn()
    one = CLOCK() - t0
    inner = 1 if one > 0.02 else int(0.02 / max(one, 1e-7)) + 1
    reps = max(3, min(50, int(budget / (one * inner + 1e-9)) + 1))
    b = 1e30
    for _ in range(reps):
        t = CLOCK()
        for _ in range(inner):
            fn()
        b = min(b, (CLOCK() - t) / inner)
    return b


def model(name):
    if name == "mnist1d-cnn":
        return nn.Sequential(nn.Conv1d(1, 15, 3, stride=2), nn.ReLU(), nn.Conv1d(15, 15, 3, stride=2), nn.ReLU(),
                             nn.Conv1d(15, 15, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(60, 10)), (1, 40)
    if name == "lenet5":  # stride's lenet5 (zoo_lenet.c): ReLU, max pooling, padding 2 on 28x28
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10)), (1, 28, 28)
    sys.exit("unknown model " + name)


def main():
    threads, mode, a = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    torch.set_num_threads(threads)
    if threads == 1:
        global CLOCK
        CLOCK = time.thread_time
    torch.manual_seed(1)
    out = {"impl": "pytorch", "version": torch.__version__, "threads": threads}
    if mode in ("conv", "convt"):
        v = [int(s) for s in a]
        if mode == "conv":
            n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, groups = v[:12]
            first = len(v) > 12 and v[12]
            if h == 1 and kh == 1:
                layer, x = nn.Conv1d(cin, cout, kw, sw, pw, groups=groups), torch.randn(n, cin, w)
            else:
                layer, x = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), (ph, pw), groups=groups), torch.randn(n, cin, h, w)
            y = layer(x)
            macs = y.numel() * (cin // groups) * kh * kw
        else:
            n, cin, cout, h, w, k, s = v
            first = 0
            layer, x = nn.ConvTranspose2d(cin, cout, k, s), torch.randn(n, cin, h, w)
            y = layer(x)
            macs = x.numel() * cout * k * k
        xg = x.clone().requires_grad_(not first)
        dy = torch.randn_like(y)
        with torch.no_grad():
            tf = best(lambda: layer(x))

        def fb():
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            layer(xg).backward(dy)
        tfb = best(fb)
        out.update({"layer": mode, "shape": v, "fwd_ms": tf * 1e3, "fwdbwd_ms": tfb * 1e3,
                    "fwd_gflops": 2 * macs / tf * 1e-9, "fwdbwd_gflops": (4 if first else 6) * macs / tfb * 1e-9})
    else:
        name, batch = a[0], int(a[1])
        net, shape = model(name)
        x = torch.randn(batch, *shape)
        y = torch.randint(0, 10, (batch,))
        if mode == "train":
            opt = torch.optim.SGD(net.parameters(), lr=0.01)

            def step():
                opt.zero_grad()
                F.cross_entropy(net(x), y).backward()
                opt.step()
            t = best(step, 2.0)
        else:
            net.eval()
            with torch.no_grad():
                t = best(lambda: net(x), 2.0)
        out.update({"model": name, "mode": mode, "batch": batch, "ms": t * 1e3, "per_s": 1 / t,
                    "images_per_s": batch / t})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
