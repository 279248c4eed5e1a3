#!/usr/bin/python3
"""suite.py - the benchmark suite (`make bench`): stride, PyTorch and ONNX Runtime side by side
in one run, each workload in its own process, and a table of the results in
bench/results/suite.md and bench/results/suite.json. docs/bench.md explains every column.

    python3 bench/suite.py [--quick] [--only REGEX] [--stat best|median] [--threads N] [--list]

Per workload and implementation the suite starts one process (stride: build/bench/*,
./stride; PyTorch: bench/torch_bench.py, bench/torch_mnist1d.py with Debian's python3;
ONNX Runtime: bench/ort_bench.py with build/venv's python), reads the JSON line it prints,
and takes its peak memory (maximum resident set size) from the kernel's accounting of that
process (os.wait4). The implementations of one workload run one after another, so they
meet the same machine load as nearly as possible, and that ROUNDS times (--rounds, default
2), alternating; each keeps its best round. On this VM stride's 2-thread runs now and then
slow down by about 1.5x for tens of seconds (docs/bench.md says what was measured): one
round can catch an implementation in such a phase and the next not; the best of
alternating rounds treats every implementation alike. bench/peak.c measures the FP32 peak at
the start and at the end (the better of the two counts). stride also runs the resnet18
workloads on 1 thread, for the scaling table.

Needs only the Python standard library; PyTorch and ONNX Runtime are optional: a missing
one is reported as "not installed" (sh scripts/setup.sh --bench installs both). Exits
non-zero if a stride run failed.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bench")
TORCH_PY = os.environ.get("BENCH_TORCH_PYTHON", "/usr/bin/python3")  # Debian's python3-torch
ORT_PY = os.environ.get("BENCH_ORT_PYTHON", os.path.join(ROOT, "build", "venv", "bin", "python"))
ONNX_DIR = os.path.join(BIN, "onnx")
IMPLS = ["stride", "pytorch", "onnxruntime"]
NAMES = {"stride": "stride", "pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}

# ---------------------------------------------------------------- workloads
# kind: train (a training step), infer (eval-mode forward), layer (one convolution), mnist1d
# (stride train / torch_mnist1d.py). stride: the zoo name; torch: bench/torch_bench.py's
# name; onnx: the exported model for ONNX Runtime (inference only). scaling: stride also
# runs on 1 thread. seconds: timed work per process (at least min_reps calls).


def layer(wid, title, spec, mode):
    return dict(id=wid, group="layers", title=title, kind="layer", spec=spec, mode=mode,
                batch=int(re.search(r"n=(\d+)", spec).group(1)), unit="samples/s", seconds=1.0, warmup=2)


CONV3 = "conv2d:n=8,cin=64,h=56,w=56,cout=64,k=3,p=1"
STEM7 = "conv2d:n=8,cin=3,h=224,w=224,cout=64,k=7,s=2,p=3,first=1"
CONV1D = "conv1d:n=32,cin=64,h=1,w=1024,cout=64,k=3,p=1"
CONVT = "convt2d:n=8,cin=64,h=56,w=56,cout=32,k=2,s=2"
DW3 = "conv2d:n=8,cin=256,h=28,w=28,cout=256,k=3,p=1,g=256"
PW1 = "conv2d:n=8,cin=256,h=28,w=28,cout=256,k=1"

WORKLOADS = [
    dict(id="mnist1d-train", group="training", title="mnist1d-cnn training, batch 100", kind="mnist1d",
         stride="mnist1d-cnn", batch=100, unit="steps/s", steps=5000, torch_steps=1000),
    dict(id="lenet5-train", group="training", title="lenet5 training, 28x28, batch 64", kind="train",
         stride="lenet5", torch="lenet5", batch=64, unit="img/s", seconds=2.0, warmup=5),
    dict(id="resnet18-cifar-train", group="training", title="resnet18 (CIFAR stem) training, 32x32, batch 32",
         kind="train", stride="resnet18:classes=10,size=32,cifar=1", torch="resnet18-cifar", batch=32,
         unit="img/s", seconds=3.0, warmup=1, scaling=True),
    dict(id="unet-train", group="training", title="unet-same training, 1x128x128, batch 1", kind="train",
         stride="unet-same:size=128,channels=1,classes=2", torch="unet-same", batch=1, unit="img/s",
         seconds=3.0, warmup=1),
    dict(id="lenet5-infer", group="inference", title="lenet5 inference, batch 256", kind="infer",
         stride="lenet5", torch="lenet5", onnx="lenet5", batch=256, unit="img/s", seconds=1.5, warmup=3),
    dict(id="resnet18-infer-b1", group="inference", title="resnet18 inference, 224x224, batch 1", kind="infer",
         stride="resnet18", torch="resnet18", onnx="resnet18", batch=1, unit="img/s", seconds=2.0, warmup=2,
         scaling=True),
    dict(id="resnet18-infer-b8", group="inference", title="resnet18 inference, 224x224, batch 8", kind="infer",
         stride="resnet18", torch="resnet18", onnx="resnet18", batch=8, unit="img/s", seconds=2.0, warmup=1,
         scaling=True),
    dict(id="resnet50-infer-b1", group="inference", title="resnet50 inference, 224x224, batch 1", kind="infer",
         stride="resnet50", torch="resnet50", onnx="resnet50", batch=1, unit="img/s", seconds=2.0, warmup=2),
    dict(id="resnet50-infer-b8", group="inference", title="resnet50 inference, 224x224, batch 8", kind="infer",
         stride="resnet50", torch="resnet50", onnx="resnet50", batch=8, unit="img/s", seconds=2.0, warmup=1),
    layer("conv3x3-fwd", "conv2d 64->64 3x3 pad 1, 8x64x56x56, forward", CONV3, "fwd"),
    layer("conv3x3-fwdbwd", "conv2d 64->64 3x3 pad 1, 8x64x56x56, forward+backward", CONV3, "fwdbwd"),
    layer("stem7x7-fwd", "conv2d 3->64 7x7 stride 2 pad 3, 8x3x224x224, forward", STEM7, "fwd"),
    layer("stem7x7-fwdbwd", "conv2d 3->64 7x7 stride 2 pad 3, 8x3x224x224, forward+backward", STEM7, "fwdbwd"),
    layer("conv1d-fwd", "conv1d 64->64 k3 pad 1, 32x64x1024, forward", CONV1D, "fwd"),
    layer("conv1d-fwdbwd", "conv1d 64->64 k3 pad 1, 32x64x1024, forward+backward", CONV1D, "fwdbwd"),
    layer("convt2x2-fwd", "conv_transpose2d 64->32 2x2 stride 2, 8x64x56x56, forward", CONVT, "fwd"),
    layer("convt2x2-fwdbwd", "conv_transpose2d 64->32 2x2 stride 2, 8x64x56x56, forward+backward", CONVT, "fwdbwd"),
    layer("dw3x3-fwd", "depthwise 3x3 pad 1, 8x256x28x28, forward", DW3, "fwd"),
    layer("dw3x3-fwdbwd", "depthwise 3x3 pad 1, 8x256x28x28, forward+backward", DW3, "fwdbwd"),
    layer("pw1x1-fwd", "conv2d 1x1 256->256, 8x256x28x28, forward", PW1, "fwd"),
    layer("pw1x1-fwdbwd", "conv2d 1x1 256->256, 8x256x28x28, forward+backward", PW1, "fwdbwd"),
]

# Issue 5's targets: (what, workload, check) with check one of
#   ("speed", peer, factor)   stride's speed >= factor x the peer's
#   ("peak", percent)         stride's GFLOP/s >= percent % of the measured peak
#   ("memory", peer, factor)  stride's max RSS <= factor x the peer's
#   ("scaling", factor)       stride's 2-thread speed >= factor x its 1-thread speed
TARGETS = [("training >= 1.5x PyTorch", w, ("speed", "pytorch", 1.5))
           for w in ("lenet5-train", "resnet18-cifar-train", "unet-train")]
TARGETS += [("mnist1d-cnn training >= 10x PyTorch", "mnist1d-train", ("speed", "pytorch", 10.0))]
for _w in ("resnet18-infer-b1", "resnet18-infer-b8", "resnet50-infer-b1", "resnet50-infer-b8"):
    TARGETS += [("inference >= 1.25x PyTorch", _w, ("speed", "pytorch", 1.25)),
                ("inference >= ONNX Runtime", _w, ("speed", "onnxruntime", 1.0))]
TARGETS += [("lenet5 inference >= 2x PyTorch", "lenet5-infer", ("speed", "pytorch", 2.0)),
            ("3x3 conv forward >= 75 % of peak", "conv3x3-fwd", ("peak", 75.0)),
            ("conv_transpose2d >= 2x PyTorch", "convt2x2-fwd", ("speed", "pytorch", 2.0)),
            ("conv_transpose2d >= 2x PyTorch", "convt2x2-fwdbwd", ("speed", "pytorch", 2.0)),
            ("resnet18 training max RSS <= 0.5x PyTorch", "resnet18-cifar-train", ("memory", "pytorch", 0.5))]
TARGETS += [("2 threads >= 1.8x 1 thread", w, ("scaling", 1.8))
            for w in ("resnet18-cifar-train", "resnet18-infer-b1", "resnet18-infer-b8")]


def layer_macs(spec):
    """Direct-convolution multiply-accumulates of one forward call of a layer SPEC."""
    op, _, rest = spec.partition(":")
    v = dict(n=1, cin=1, cout=1, h=1, w=1, k=1, s=1, p=0, g=1)
    v.update({k: int(x) for k, x in (kv.split("=") for kv in rest.split(","))})
    kh = 1 if op == "conv1d" else v["k"]
    if op == "convt2d":  # every input element meets cout/g x k x k weights
        return v["n"] * v["cin"] * v["h"] * v["w"] * (v["cout"] // v["g"]) * kh * v["k"]
    oh = 1 if op == "conv1d" else (v["h"] + 2 * v["p"] - kh) // v["s"] + 1
    ow = (v["w"] + 2 * v["p"] - v["k"]) // v["s"] + 1
    return v["n"] * v["cout"] * oh * ow * (v["cin"] // v["g"]) * kh * v["k"]


def workload_flops(w, macs_per_image):
    """FLOPs of one timed call (2 per multiply-accumulate). Training: 3x the forward pass
    (forward, input gradient, weight gradient). Layers forward+backward: 3x, or 2x for a
    first layer (no input gradient)."""
    if w["kind"] == "layer":
        f = 2 * layer_macs(w["spec"])
        if w["mode"] == "fwdbwd":
            f *= 2 if "first=1" in w["spec"] else 3
        return f
    if macs_per_image is None:
        return None
    f = 2 * macs_per_image * w["batch"]
    return 3 * f if w["kind"] in ("train", "mnist1d") else f


# ---------------------------------------------------------------- processes
def run_process(cmd, env, timeout):
    """Runs cmd in its own process (group); returns (exit code, stdout, stderr, max RSS in
    bytes, wall seconds). The RSS is the kernel's peak for that process alone (wait4)."""
    full_env = dict(os.environ)
    full_env.update(env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env, cwd=ROOT, start_new_session=True)
        except OSError as e:
            return 127, "", str(e), 0, 0.0
        killed = []

        def kill():
            killed.append(1)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except KeyboardInterrupt:
            kill()
            raise
        finally:
            timer.cancel()
        p.returncode = rc = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        so, se = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if killed:
            se += "\n(killed after %d s)" % timeout
        return rc, so, se, ru.ru_maxrss * 1024, wall


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def plan_args(w, quick):
    """(warmup, min_reps, max_reps, seconds) for one process of workload w."""
    seconds = w.get("seconds", 2.0) * (0.25 if quick else 1.0)
    warmup = min(w.get("warmup", 2), 1) if quick else w.get("warmup", 2)
    return warmup, 2 if quick else 3, 1000, seconds


def command(w, impl, threads, quick):
    """(argv, environment) of one measurement, or None if the implementation has no such
    workload."""
    warmup, min_reps, max_reps, seconds = plan_args(w, quick)
    t = str(threads)
    plan_py = ["--warmup", str(warmup), "--min-reps", str(min_reps), "--max-reps", str(max_reps),
               "--seconds", str(seconds), "--threads", t]
    plan_c = [str(warmup), str(min_reps), str(max_reps), str(seconds)]
    torch_env = {"OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    kind = w["kind"]
    if impl == "stride":
        env = {"OMP_NUM_THREADS": t}
        if kind == "mnist1d":
            steps = w["steps"] // (5 if quick else 1)
            return [os.path.join(ROOT, "stride"), "train", w["stride"], "--steps", str(steps), "--eval-every", "0",
                    "--threads", t, "--quiet", "--log", "{log}"], env
        if kind == "train":
            return [os.path.join(BIN, "train_step"), w["stride"], str(w["batch"]), str(max_reps), str(warmup), t,
                    str(seconds)], env
        if kind == "infer":
            return [os.path.join(BIN, "infer_bench"), w["stride"], str(w["batch"]), t] + plan_c, env
        return [os.path.join(BIN, "layers"), w["spec"], w["mode"], t] + plan_c, env
    if impl == "pytorch":
        tb = os.path.join(ROOT, "bench", "torch_bench.py")
        if kind == "mnist1d":
            steps = w["torch_steps"] // (5 if quick else 1)
            return [TORCH_PY, os.path.join(ROOT, "bench", "torch_mnist1d.py"), "--model", "cnn", "--steps", str(steps),
                    "--threads", t], torch_env
        if kind in ("train", "infer"):
            return [TORCH_PY, tb, kind, "--model", w["torch"], "--batch", str(w["batch"])] + plan_py, torch_env
        return [TORCH_PY, tb, "layer", "--spec", w["spec"], "--mode", w["mode"]] + plan_py, torch_env
    if impl == "onnxruntime" and "onnx" in w:
        return [ORT_PY, os.path.join(ROOT, "bench", "ort_bench.py"), "--onnx", os.path.join(ONNX_DIR, w["onnx"] + ".onnx"),
                "--batch", str(w["batch"])] + plan_py, {"OMP_NUM_THREADS": t}
    return None


def measure(w, impl, threads, quick, stat, log):
    """Runs one process; returns its record (status "ok" or "failed")."""
    cmd, env = command(w, impl, threads, quick)
    tmpdir = None
    if "{log}" in cmd:
        tmpdir = tempfile.mkdtemp(prefix="stride-bench-")
        cmd = [c.replace("{log}", os.path.join(tmpdir, "log.jsonl")) for c in cmd]
    load = read_load()
    lat = core_round_trip()
    rc, so, se, rss, wall = run_process(cmd, env, timeout=600)
    rec = {"impl": impl, "threads": threads, "status": "failed", "max_rss_bytes": rss, "wall_s": round(wall, 2),
           "load_before": load, "core_round_trip_ns": lat, "command": " ".join(cmd)}
    res = None
    if rc == 0 and w["kind"] == "mnist1d" and impl == "stride":
        with open(os.path.join(tmpdir, "log.jsonl")) as f:
            line = last_json(f.read())
        if line and line.get("images_per_s"):
            per_step = w["batch"] / float(line["images_per_s"])  # training time only, no evaluation
            res = {"reps": int(line["step"]), "best_s": per_step, "median_s": per_step}
    elif rc == 0 and w["kind"] == "mnist1d":
        line = last_json(so)
        if line and line.get("steps_per_s"):
            per_step = 1.0 / float(line["steps_per_s"])
            res = dict(line, reps=int(line["steps"]), best_s=per_step, median_s=per_step)
    elif rc == 0:
        res = last_json(so)
    if tmpdir:
        for f in os.listdir(tmpdir):
            os.remove(os.path.join(tmpdir, f))
        os.rmdir(tmpdir)
    if res and res.get("best_s"):
        rec.update(status="ok", reps=res.get("reps"), best_s=res["best_s"], median_s=res.get("median_s", res["best_s"]))
        rec["time_s"] = rec["best_s"] if stat == "best" else rec["median_s"]
        for k in ("macs_per_image", "torch", "onnxruntime", "blas"):
            if k in res:
                rec[k] = res[k]
    else:
        tail = (se.strip() or so.strip()).splitlines()[-5:]
        rec["error"] = "exit status %d: %s" % (rc, " | ".join(tail)) if rc else "no result: %s" % " | ".join(tail)
        log("    %s failed: %s" % (impl, rec["error"]))
    return rec


def read_load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return ""


def probe(cmd):
    """The stripped stdout of a short command, or None if it fails."""
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


SLOW_PHASE_NS = 150.0  # a cross-core round trip above this: a slow phase (docs/bench.md)


def core_round_trip():
    """bench/corelat.c's cross-core round trip in ns just now, or None."""
    out = probe([os.path.join(BIN, "corelat")])
    try:
        return json.loads(out)["round_trip_ns"]
    except (TypeError, ValueError, KeyError):
        return None


def measure_peak(threads):
    out = probe([os.path.join(BIN, "peak"), "2", str(threads)])
    try:
        r = json.loads(out)
        return {"isa": r["isa"], "1": r["gflops"]["1"], str(threads): r["gflops"][str(threads)], "raw": r}
    except (TypeError, ValueError, KeyError):
        return None


def model_macs(name):
    out = probe([os.path.join(BIN, "infer_bench"), name, "1", "1", "0", "0"])
    try:
        return int(json.loads(out)["macs_per_image"])
    except (TypeError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------- formatting
def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.3g ms" % (s * 1e3)
    return "%.3g us" % (s * 1e6)


def fmt_num(x):
    if x is None:
        return "-"
    if x >= 100:
        return "{:,.0f}".format(x)
    return "%.3g" % x


def fmt_ratio(x):
    return "-" if x is None else "%.2fx" % x


def build_results(records, peak, threads):
    """Adds throughput, GFLOP/s, % of peak and ratios to the records (in place)."""
    for w in WORKLOADS:
        recs = records.get(w["id"])
        if not recs:
            continue
        flops = workload_flops(w, w.get("macs_per_image"))
        for impl, r in recs.items():
            if r.get("status") != "ok":
                continue
            t = r["time_s"]
            r["throughput"] = w["batch"] / t if w["unit"] != "steps/s" else 1.0 / t
            r["unit"] = w["unit"]
            if flops:
                r["flops_per_call"] = flops
                r["gflops"] = flops / t * 1e-9
                p = peak.get(str(r["threads"])) if peak else None
                if p:
                    r["percent_of_peak"] = 100.0 * r["gflops"] / p
        s = recs.get("stride")
        if s and s.get("status") == "ok":
            for peer in ("pytorch", "onnxruntime"):
                pr = recs.get(peer)
                if pr and pr.get("status") == "ok":
                    s["speed_ratio_to_" + peer] = pr["time_s"] / s["time_s"]
                    if s["max_rss_bytes"] and pr["max_rss_bytes"]:
                        s["rss_ratio_to_" + peer] = s["max_rss_bytes"] / pr["max_rss_bytes"]
            one = recs.get("stride-1t")
            if one and one.get("status") == "ok":
                s["scaling_vs_1_thread"] = one["time_s"] / s["time_s"]


def evaluate_targets(records, peak):
    out = []
    for what, wid, check in TARGETS:
        if wid not in records:  # not run (--only)
            continue
        s = records[wid].get("stride")
        row = {"target": what, "workload": wid, "measured": None, "met": None}
        if s and s.get("status") == "ok":
            kind = check[0]
            if kind == "speed":
                v = s.get("speed_ratio_to_" + check[1])
                if v is not None:
                    row.update(measured=v, text="%.2fx %s" % (v, NAMES[check[1]]), met=v >= check[2])
            elif kind == "peak":
                v = s.get("percent_of_peak")
                if v is not None:
                    row.update(measured=v, text="%.1f %% of peak" % v, met=v >= check[1])
            elif kind == "memory":
                v = s.get("rss_ratio_to_" + check[1])
                if v is not None:
                    row.update(measured=v, text="%.2fx %s's max RSS" % (v, NAMES[check[1]]), met=v <= check[2])
            elif kind == "scaling":
                v = s.get("scaling_vs_1_thread")
                if v is not None:
                    row.update(measured=v, text="%.2fx" % v, met=v >= check[1])
        out.append(row)
    return out


def markdown(meta, records, targets, stat, threads):
    L = ["# stride benchmark suite", ""]
    L.append("Date: %s. Machine: %s, %s cores; load average before %s, after %s." % (
        meta["date"], meta["cpu"], meta["nproc"], meta["load_before"], meta["load_after"]))
    L.append("stride %s (%s); PyTorch: %s; ONNX Runtime: %s." % (
        meta["stride_commit"], meta["compiler"], meta["versions"].get("pytorch") or "not installed",
        meta["versions"].get("onnxruntime") or "not installed"))
    load = meta["load_before"].split()
    if load and float(load[0]) > 0.5 * (meta["nproc"] or 1):
        L.append("**The machine was busy** (load average %s on %s cores before the run): other processes "
                 "took CPU time, so these timings, the peak among them, are disturbed and the ratios "
                 "uncertain." % (load[0], meta["nproc"]))
    pk = meta.get("peak")
    if pk:
        L.append("Measured FP32 peak (bench/peak.c, %s FMA): %.1f GFLOP/s on 1 thread, %.1f on %d." % (
            pk["isa"], pk["1"], pk[str(threads)], threads))
    L.append("%d threads each (PyTorch: torch.set_num_threads(%d), OPENBLAS_NUM_THREADS=1; ONNX Runtime: "
             "intra_op %d, inter_op 1). Time: the %s of one call's timings%s, in the best of %d alternating "
             "rounds; throughput and GFLOP/s from it. "
             "Speed ratios: the peer's time / stride's time (above 1: stride is faster). Max RSS: the peak "
             "resident memory of the workload's own process. Total run: %.0f s." % (
                 threads, threads, threads, "best (minimum)" if stat == "best" else "median",
                 " (mnist1d-cnn: the mean step of the run)", meta.get("rounds", 1), meta["total_seconds"]))
    lats = [v for recs in records.values() for r in recs.values() for v in r.get("round_core_ns", []) if v]
    if lats:
        slow = [v for v in lats if v > SLOW_PHASE_NS]
        L.append("Cross-core round trip before each process (bench/corelat.c): %.0f-%.0f ns; %d of %d processes "
                 "started in a slow phase (above %.0f ns), where 2-thread runs slow down (docs/bench.md, "
                 "\"Slow phases\"); every process's value is in the JSON." % (
                     min(lats), max(lats), len(slow), len(lats), SLOW_PHASE_NS))
    L += ["", "| workload | implementation | time | throughput | GFLOP/s | % of peak | max RSS | stride vs PyTorch "
          "| stride vs ONNX Runtime |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for w in WORKLOADS:
        recs = records.get(w["id"])
        if not recs:
            continue
        first = True
        for impl in IMPLS:
            r = recs.get(impl)
            if r is None:
                continue
            label = NAMES[impl]
            cells = [w["title"] if first else "", label]
            first = False
            if r["status"] != "ok":
                cells += [r["status"]] + [""] * 6
            else:
                cells += [fmt_time(r["time_s"]), "%s %s" % (fmt_num(r.get("throughput")), w["unit"]),
                          fmt_num(r.get("gflops")),
                          "%.1f" % r["percent_of_peak"] if "percent_of_peak" in r else "-",
                          "%.0f MB" % (r["max_rss_bytes"] / 1e6) if r["max_rss_bytes"] else "-"]
                if impl == "stride":
                    cells += [fmt_ratio(r.get("speed_ratio_to_pytorch")),
                              fmt_ratio(r.get("speed_ratio_to_onnxruntime")) if "onnx" in w else ""]
                else:
                    cells += ["", ""]
            L.append("| " + " | ".join(cells) + " |")
    scal = [w for w in WORKLOADS if w.get("scaling") and w["id"] in records]
    if scal:
        L += ["", "## Scaling: stride on 1 and %d threads" % threads, "",
              "| workload | 1 thread | %d threads | speed-up | %% of peak (1 / %d threads) |" % (threads, threads),
              "|---|---:|---:|---:|---:|"]
        for w in scal:
            one, two = records[w["id"]].get("stride-1t", {}), records[w["id"]].get("stride", {})
            ok1, ok2 = one.get("status") == "ok", two.get("status") == "ok"
            pct = "%s / %s" % (("%.1f" % one["percent_of_peak"]) if "percent_of_peak" in one else "-",
                               ("%.1f" % two["percent_of_peak"]) if "percent_of_peak" in two else "-")
            L.append("| %s | %s | %s | %s | %s |" % (
                w["title"], fmt_time(one.get("time_s")) if ok1 else one.get("status", "-"),
                fmt_time(two.get("time_s")) if ok2 else two.get("status", "-"),
                fmt_ratio(two.get("scaling_vs_1_thread")), pct))
    if targets:
        titles = {w["id"]: w["title"] for w in WORKLOADS}
        L += ["", "## Issue 5's targets", "", "| target | workload | measured | met |", "|---|---|---:|---|"]
        for t in targets:
            met = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
            L.append("| %s | %s | %s | %s |" % (t["target"], titles[t["workload"]], t.get("text", "not measured"), met))
    fails = [(wid, impl, r["error"]) for wid, recs in records.items() for impl, r in recs.items()
             if r["status"] == "failed"]
    if fails:
        L += ["", "## Failures", ""] + ["- %s, %s: %s" % f for f in fails]
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the workloads whose id matches this regular expression")
    ap.add_argument("--quick", action="store_true", help="a short run (a quarter of the timed work)")
    ap.add_argument("--stat", choices=["best", "median"], default="best", help="time per call (default best)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per workload; the best counts (default 2)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = ap.parse_args()
    if args.list:
        for w in WORKLOADS:
            print("%-22s %s" % (w["id"], w["title"]))
        return 0
    work = [w for w in WORKLOADS if not args.only or re.search(args.only, w["id"])]
    if not work:
        sys.exit("suite: no workload matches '%s' (see --list)" % args.only)
    for b in ("peak", "train_step", "infer_bench", "layers"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit("suite: build/bench/%s is missing: run `make bench` (or make %s)" % (b, "build/bench/" + b))

    t_start = time.perf_counter()

    def log(msg):
        print("[%4.0f s] %s" % (time.perf_counter() - t_start, msg), flush=True)

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "load_before": read_load(), "threads": args.threads, "stat": args.stat,
            "quick": args.quick, "rounds": max(1, args.rounds), "python": platform.python_version()}
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else platform.machine()
    except OSError:
        pass
    meta["cpu"] = cpu
    commit = probe(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    if probe(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " with local changes"
    meta["stride_commit"] = commit
    meta["compiler"] = (probe([os.environ.get("CC", "cc"), "--version"]) or "cc").splitlines()[0]

    # what is installed
    versions = {"pytorch": probe([TORCH_PY, "-c", "import torch, torchvision; print(torch.__version__)"]),
                "onnxruntime": probe([ORT_PY, "-c", "import onnxruntime; print(onnxruntime.__version__)"])
                if os.access(ORT_PY, os.X_OK) else None}
    meta["versions"] = versions
    log("PyTorch: %s; ONNX Runtime: %s" % (versions["pytorch"] or "not installed (apt-get install python3-torch "
                                                                   "python3-torchvision)",
                                           versions["onnxruntime"] or "not installed (sh scripts/setup.sh --bench)"))
    onnx_ok = {}
    if versions["onnxruntime"]:
        os.makedirs(ONNX_DIR, exist_ok=True)
        for name in sorted({w["onnx"] for w in work if "onnx" in w}):
            path = os.path.join(ONNX_DIR, name + ".onnx")
            if not os.path.exists(path) and versions["pytorch"]:
                log("exporting %s to ONNX (torch.onnx.export)" % name)
                probe([TORCH_PY, os.path.join(ROOT, "bench", "torch_bench.py"), "export", "--model", name, "--out", path])
            onnx_ok[name] = os.path.exists(path)

    log("measuring the FP32 peak (bench/peak.c)")
    peak = measure_peak(args.threads)
    if peak:
        log("peak: %.1f GFLOP/s on 1 thread, %.1f on %d (%s)" % (peak["1"], peak[str(args.threads)], args.threads,
                                                                  peak["isa"]))

    records = {}
    n_runs = max(1, args.rounds) * sum(len([i for i in IMPLS if command(w, i, args.threads, args.quick)]) +
                                       (1 if w.get("scaling") else 0) for w in work)
    k = 0
    stride_failed = False
    peaks = [peak]
    for wi, w in enumerate(work):
        if wi == len(work) // 2 and wi > 0:
            log("measuring the FP32 peak (half-way)")
            peaks.append(measure_peak(args.threads))
        if "stride" in w and "macs_per_image" not in w:
            w["macs_per_image"] = model_macs(w["stride"])
        recs = records[w["id"]] = {}
        runs = [(i, args.threads) for i in IMPLS] + ([("stride-1t", 1)] if w.get("scaling") else [])
        for rnd, (impl, threads) in [(rnd, r) for rnd in range(max(1, args.rounds)) for r in runs]:
            base = "stride" if impl == "stride-1t" else impl
            if command(w, base, threads, args.quick) is None:
                continue
            if base == "pytorch" and not versions["pytorch"]:
                recs[impl] = {"impl": base, "threads": threads, "status": "not installed"}
                continue
            if base == "onnxruntime" and not versions["onnxruntime"]:
                recs[impl] = {"impl": base, "threads": threads, "status": "not installed"}
                continue
            if base == "onnxruntime" and not onnx_ok.get(w["onnx"]):
                recs[impl] = {"impl": base, "threads": threads, "status": "no ONNX model",
                              "error": "the export from PyTorch failed or PyTorch is missing"}
                continue
            k += 1
            r = measure(w, base, threads, args.quick, args.stat, log)
            r["round"] = rnd + 1
            if r["status"] == "ok":
                log("[%d/%d] %s, %s%s: %s, max RSS %.0f MB" % (
                    k, n_runs, w["title"], NAMES[base], " (1 thread)" if threads == 1 else "",
                    fmt_time(r["time_s"]), r["max_rss_bytes"] / 1e6))
            elif base == "stride":
                stride_failed = True
            if base == "stride" and r.get("macs_per_image"):
                w["macs_per_image"] = r["macs_per_image"]
            old = recs.get(impl)  # the better of the rounds stays, with every round's time
            times = (old.get("round_times", []) if old else []) + [r.get("time_s")]
            lats = (old.get("round_core_ns", []) if old else []) + [r.get("core_round_trip_ns")]
            if old and old.get("status") == "ok" and (r["status"] != "ok" or old["time_s"] <= r["time_s"]):
                r = old
            r["round_times"] = times
            r["round_core_ns"] = lats
            recs[impl] = r

    log("measuring the FP32 peak again")
    peaks.append(measure_peak(args.threads))
    peak = None  # the best of the measurements: other work on the machine only lowers it
    for p in filter(None, peaks):
        if peak is None:
            peak = dict(p)
        for key in ("1", str(args.threads)):
            if p[key] > peak[key]:
                peak[key] = p[key]
                peak["isa"] = p["isa"]
    meta["peak"] = {k: v for k, v in peak.items() if k != "raw"} if peak else None
    meta["peak_measurements"] = [p and {k: v for k, v in p.items() if k != "raw"} for p in peaks]
    meta["load_after"] = read_load()
    meta["total_seconds"] = round(time.perf_counter() - t_start, 1)

    build_results(records, peak, args.threads)
    targets = evaluate_targets(records, peak)
    md = markdown(meta, records, targets, args.stat, args.threads)
    os.makedirs(args.out, exist_ok=True)
    doc = {"meta": meta, "workloads": [], "targets": targets}
    for w in work:
        d = {k: v for k, v in w.items() if k not in ("steps", "torch_steps", "seconds", "warmup")}
        d["results"] = records.get(w["id"], {})
        doc["workloads"].append(d)
    for name, text in (("suite.md", md), ("suite.json", json.dumps(doc, indent=1) + "\n")):
        tmp = os.path.join(args.out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(args.out, name))
    print()
    print(md)
    print("written: %s, %s" % (os.path.relpath(os.path.join(args.out, "suite.md")),
                               os.path.relpath(os.path.join(args.out, "suite.json"))))
    return 1 if stride_failed else 0


if __name__ == "__main__":
    sys.exit(main())
