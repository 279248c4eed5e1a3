#!/bin/sh
# bench/small.sh - the small and special workloads of issue 5, stride against PyTorch in
# the same run: build/bench/small_kernels and bench/torch_small.py, interleaved, ROUNDS
# rounds (default 3), the best of each side kept (the machine is shared: the fastest run
# is the least disturbed one). With THREADS=1 (the default) both sides report the thread's
# CPU time, with more threads the wall clock.
#   sh bench/small.sh                 THREADS=2 ROUNDS=5 sh bench/small.sh
#   BASE=/path/to/other/small_kernels sh bench/small.sh    (adds a column: another build)
set -u
T=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
S=build/bench/small_kernels
[ -x "$S" ] || { echo "build $S first (make build/bench/small_kernels)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1

# workload name | small_kernels/torch_small arguments | what to read (ms fields)
WORKLOADS='mnist1d-cnn training, batch 100|train mnist1d-cnn 100|ms
lenet5 training, batch 64|train lenet5 64|ms
lenet5 inference, batch 256|infer lenet5 256|ms
conv_transpose2d 64->32 2x2 s2, 8x64x56x56|convt 8 64 32 56 56 2 2|fwd
depthwise 3x3, 8x256x28x28|conv 8 256 256 28 28 3 3 1 1 1 1 256|fwd
conv1d 64->64 k3 pad 1, 32x64x1024|conv 32 64 64 1 1024 1 3 1 1 0 1 1|fwd
stem 7x7 s2 3->64, 8x3x224x224 (no input gradient)|conv 8 3 64 224 224 7 7 2 2 3 3 1 1|fwd'

num() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") print b; else if (b == "" || a + 0 <= b + 0) print a; else print b }'; }

printf '%s\n' "$WORKLOADS" | while IFS='|' read -r name args kind; do
    s1=; s2=; t1=; t2=; b1=; b2=
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        # shellcheck disable=SC2086
        o=$($S "$T" $args) || exit 1
        # shellcheck disable=SC2086
        p=$($PY bench/torch_small.py "$T" $args) || exit 1
        if [ "$kind" = ms ]; then
            s1=$(min "$s1" "$(echo "$o" | num ms)"); t1=$(min "$t1" "$(echo "$p" | num ms)")
        else
            s1=$(min "$s1" "$(echo "$o" | num fwd_ms)"); t1=$(min "$t1" "$(echo "$p" | num fwd_ms)")
            fb=$(echo "$o" | awk '{ match($0, /"fwd_ms": [0-9.]+/); f = substr($0, RSTART + 10, RLENGTH - 10);
                                    match($0, /"bwd_ms": [0-9.]+/); b = substr($0, RSTART + 10, RLENGTH - 10); print f + b }')
            s2=$(min "$s2" "$fb"); t2=$(min "$t2" "$(echo "$p" | num fwdbwd_ms)")
        fi
        if [ -n "${BASE:-}" ]; then
            # shellcheck disable=SC2086
            q=$($BASE "$T" $args) || exit 1
            if [ "$kind" = ms ]; then b1=$(min "$b1" "$(echo "$q" | num ms)")
            else
                b1=$(min "$b1" "$(echo "$q" | num fwd_ms)")
                fb=$(echo "$q" | awk '{ match($0, /"fwd_ms": [0-9.]+/); f = substr($0, RSTART + 10, RLENGTH - 10);
                                        match($0, /"bwd_ms": [0-9.]+/); b = substr($0, RSTART + 10, RLENGTH - 10); print f + b }')
                b2=$(min "$b2" "$fb")
            fi
        fi
        r=$((r + 1))
    done
    row() { # label stride_ms torch_ms base_ms
        awk -v n="$1" -v s="$2" -v t="$3" -v b="$4" 'BEGIN {
            printf "| %s | %.3f | %.3f | %.2fx |", n, s, t, t / s
            if (b != "") printf " %.3f | %.2fx |", b, b / s
            printf "\n" }'
    }
    if [ "$kind" = ms ]; then row "$name" "$s1" "$t1" "$b1"
    else
        row "$name: forward" "$s1" "$t1" "$b1"
        row "$name: forward+backward" "$s2" "$t2" "$b2"
    fi
done | {
    echo "threads: $T; ms per call (best of $ROUNDS); ratio = PyTorch time / stride time"
    if [ -n "${BASE:-}" ]; then
        echo "| workload | stride ms | PyTorch ms | vs PyTorch | base ms | vs base |"
        echo "|---|---:|---:|---:|---:|---:|"
    else
        echo "| workload | stride ms | PyTorch ms | vs PyTorch |"
        echo "|---|---:|---:|---:|"
    fi
    cat
}
