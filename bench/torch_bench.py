#!/usr/bin/python3
"""torch_bench.py - the PyTorch side of the benchmark suite (bench/suite.py), one workload per
process so that the suite can read each one's peak memory.

    torch_bench.py train --model lenet5|resnet18-cifar|unet-same --batch B [timing]
    torch_bench.py infer --model lenet5|resnet18|resnet50 --batch B [timing]
    torch_bench.py layer --spec SPEC --mode fwd|fwdbwd [timing]
    torch_bench.py export --model lenet5|resnet18|resnet50 --out FILE.onnx

Each timing command prints one JSON line:
    {"impl": "pytorch", "reps": 12, "best_s": 0.21, "median_s": 0.22, "torch": "1.13.0", ...}
Timing (the same rule as bench/timing.h for the C side): --warmup untimed calls, then timed
calls, each on its own, until --min-reps calls and --seconds of timed work are done, or
--max-reps calls; best_s and median_s are one call's minimum and median.

  train   forward, cross-entropy, backward and SGD (momentum 0.9) on a fixed random batch,
          as build/bench/train_step does; unet-same has one label per pixel.
  infer   model.eval() under torch.no_grad() on a random batch.
  layer   torch.nn.functional.conv1d/conv2d/conv_transpose2d; fwd under no_grad, fwdbwd with
          requires_grad on the input (unless first=1), weight and bias and
          torch.autograd.grad with a fixed random output gradient. SPEC as build/bench/layers
          takes it: OP:n=,cin=,cout=,h=,w=,k=,s=,p=,g=,bias=,first=.
  export  torch.onnx.export of the eval-mode model with a dynamic batch axis (input "x",
          output "y"), for bench/ort_bench.py; random weights (nothing is downloaded).

Models: lenet5 and resnet18-cifar as bench/torch_train.py builds them; resnet18 and resnet50
are torchvision's (224x224); unet-same is scripts/zoo_parity.py's re-implementation of
milesial/Pytorch-UNet with 1 input channel and 2 classes at 128x128 (as stride's
unet-same:size=128,channels=1,classes=2).
Threads: torch.set_num_threads(--threads); the suite also sets OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS=1.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))


def build(name):
    """(model, input shape without the batch, classes)"""
    if name in ("lenet5", "resnet18-cifar"):
        from torch_train import make
        model, shape = make(name)
        return model, shape, 10
    if name in ("resnet18", "resnet50"):
        import torchvision
        return getattr(torchvision.models, name)(), (3, 224, 224), 1000
    if name == "unet-same":
        from zoo_parity import UNetSame
        return UNetSame(channels=1, classes=2), (1, 128, 128), 2
    sys.exit("torch_bench: unknown model '%s'" % name)


def parse_spec(spec):
    op, _, rest = spec.partition(":")
    v = dict(n=1, cin=1, cout=1, h=1, w=1, k=1, s=1, p=0, g=1, bias=1, first=0)
    for kv in filter(None, rest.split(",")):
        key, _, val = kv.partition("=")
        if key not in v:
            sys.exit("torch_bench: unknown key '%s' in '%s'" % (key, spec))
        v[key] = int(val)
    if op not in ("conv1d", "conv2d", "convt2d"):
        sys.exit("torch_bench: unknown op '%s' (conv1d, conv2d, convt2d)" % op)
    return op, v


def time_calls(fn, args):
    for _ in range(args.warmup):
        fn()
    times = []
    while len(times) < args.max_reps and (len(times) < args.min_reps or sum(times) < args.seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return {"reps": n, "best_s": round(times[0], 6), "median_s": round(median, 6)}


def train_fn(args):
    model, shape, classes = build(args.model)
    model.train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, *shape, generator=g)
    lshape = (args.batch,) + (tuple(shape[1:]) if args.model == "unet-same" else ())
    y = torch.randint(0, classes, lshape, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def infer_fn(args):
    model, shape, _ = build(args.model)
    model.eval()
    x = torch.randn(args.batch, *shape, generator=torch.Generator().manual_seed(1))

    def run():
        with torch.no_grad():
            model(x)
    return run


def layer_fn(args):
    op, v = parse_spec(args.spec)
    g = torch.Generator().manual_seed(1)
    k = (v["k"],) if op == "conv1d" else (v["k"], v["k"])
    xshape = (v["n"], v["cin"], v["w"]) if op == "conv1d" else (v["n"], v["cin"], v["h"], v["w"])
    wshape = ((v["cin"], v["cout"] // v["g"]) if op == "convt2d" else (v["cout"], v["cin"] // v["g"])) + k
    x, w = torch.randn(*xshape, generator=g), torch.randn(*wshape, generator=g)
    b = torch.randn(v["cout"], generator=g) if v["bias"] else None
    conv = {"conv1d": F.conv1d, "conv2d": F.conv2d, "convt2d": F.conv_transpose2d}[op]

    def fwd():
        return conv(x, w, b, stride=v["s"], padding=v["p"], groups=v["g"])
    if args.mode == "fwd":
        def run():
            with torch.no_grad():
                fwd()
        return run
    with torch.no_grad():
        dout = torch.randn(fwd().shape, generator=g)
    if not v["first"]:
        x.requires_grad_(True)
    w.requires_grad_(True)
    if b is not None:
        b.requires_grad_(True)
    wrt = [t for t in (x, w, b) if t is not None and t.requires_grad]

    def run():
        torch.autograd.grad(fwd(), wrt, dout)
    return run


def blas_in_use():
    """The BLAS library this process has loaded (Debian's torch calls the system libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {os.path.basename(os.path.realpath(line.split()[-1])) for line in f
                    if "blas" in line.split()[-1] or "libmkl" in line.split()[-1]}
    except OSError:
        return ""
    return ",".join(sorted(libs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["train", "infer", "layer", "export"])
    ap.add_argument("--model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--spec")
    ap.add_argument("--mode", choices=["fwd", "fwdbwd"], default="fwd")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.command == "export":
        model, shape, _ = build(args.model)
        model.eval()
        tmp = args.out + ".tmp"
        torch.onnx.export(model, torch.randn(1, *shape), tmp, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)
        os.replace(tmp, args.out)
        print(json.dumps({"impl": "pytorch", "export": args.out, "torch": torch.__version__}))
        return
    if args.command in ("train", "infer") and not args.model:
        sys.exit("torch_bench: --model is needed")
    if args.command == "layer" and not args.spec:
        sys.exit("torch_bench: --spec is needed")
    fn = {"train": train_fn, "infer": infer_fn, "layer": layer_fn}[args.command](args)
    r = {"impl": "pytorch"}
    r.update(time_calls(fn, args))
    r.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_in_use()})
    print(json.dumps(r))


if __name__ == "__main__":
    main()
