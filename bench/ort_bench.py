"""ort_bench.py - the ONNX Runtime side of the benchmark suite (bench/suite.py): inference of a
model that bench/torch_bench.py exported from PyTorch (torch.onnx.export).

    build/venv/bin/python bench/ort_bench.py --onnx FILE.onnx --batch B [--threads 2] [timing]

Runs on ONNX Runtime's CPU execution provider with intra_op_num_threads = --threads and
inter_op_num_threads = 1, all graph optimisations on (the default), on a random float32
batch fed to the input "x". Prints one JSON line:
    {"impl": "onnxruntime", "reps": 12, "best_s": 0.02, "median_s": 0.021, "onnxruntime": "1.x", ...}
Timing as bench/torch_bench.py does it (warm-up, then timed calls until --min-reps and
--seconds, at most --max-reps; best and median of one call). Imports only onnxruntime and
NumPy, not torch, so the process's peak memory is ONNX Runtime's own. The suite runs it with
the Python of the virtual environment `sh scripts/setup.sh --bench` makes (build/venv),
where onnxruntime is installed from PyPI.
"""
import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # a missing or broken file: say which
        sys.exit("ort_bench: %s: %s" % (args.onnx, e))
    inp = sess.get_inputs()[0]
    shape = [args.batch] + [int(d) for d in inp.shape[1:]]
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    feed = {inp.name: x}

    for _ in range(args.warmup):
        sess.run(None, feed)
    times = []
    while len(times) < args.max_reps and (len(times) < args.min_reps or sum(times) < args.seconds):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({"impl": "onnxruntime", "reps": n, "best_s": round(times[0], 6), "median_s": round(median, 6),
                      "onnxruntime": ort.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
