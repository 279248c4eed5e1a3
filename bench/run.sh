#!/bin/sh
# bench/run.sh - MNIST-1D training speed: stride against PyTorch.
#
# Run from the repository root by `make bench` (which has built ./stride first). Both sides
# train the CNN of "Understanding Deep Learning" figure 10.8 with the book's protocol (plain
# SGD, learning rate 0.01, batch 100) on 2 threads; the speed is training steps per second.
#   PyTorch: bench/torch_mnist1d.py, TORCH_STEPS steps (default 20000) after 200 untimed ones.
#   stride:  ./stride train mnist1d-cnn, STRIDE_STEPS steps (default 100000, the book's run);
#            steps/s = the last line of its --log file: "step" / "seconds" (training time).
#            Its whole wall-clock time, start-up and data loading included, is shown too.
# Prints a Markdown table and writes it to bench/results/mnist1d.md, and the same numbers
# as JSON to bench/results/mnist1d.json. Exits non-zero if stride fails.
set -u

PY=/usr/bin/python3               # Debian's python3-torch lives here, not in a pyenv
TORCH_STEPS=${TORCH_STEPS:-20000}
STRIDE_STEPS=${STRIDE_STEPS:-100000}
THREADS=2
OUTDIR=bench/results

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# jget FIELD FILE: the value of "FIELD" on the last line of FILE that has it (number or string)
jget() {
    grep "\"$1\"" "$2" 2>/dev/null | tail -n 1 |
        sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\).*/\1/p"
}
# calc EXPR [a=VAL ...]: awk arithmetic, e.g. calc 'a/b' a=3 b=4
calc() {
    expr=$1; shift
    awk "$@" "BEGIN { printf \"%s\", ($expr) }" </dev/null
}
now() { date +%s.%N | sed 's/\.N$//'; }   # seconds; without %N support, whole seconds
is_num() { case $1 in ''|*[!0-9.eE+-]*) return 1 ;; *) return 0 ;; esac; }

mkdir -p "$OUTDIR" || exit 1
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
[ -n "$CPU" ] || CPU=$(uname -m)
CPU=$(printf '%s' "$CPU" | tr -d '\042\134')   # no quotes or backslashes in the JSON
LOAD=$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)  # other work on the machine skews timings

echo "MNIST-1D CNN training speed (SGD lr 0.01, batch 100, $THREADS threads)"
echo "machine: $NPROC cores, $CPU; load average before: ${LOAD:-unknown}"
echo

# ---------------------------------------------------------------- PyTorch
HAVE_TORCH=0
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then
    echo "PyTorch: $TORCH_STEPS steps ..."
    if OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$THREADS \
        "$PY" bench/torch_mnist1d.py --model cnn --steps "$TORCH_STEPS" --threads "$THREADS" \
        >"$TMP/torch.json"; then
        T_STEPS=$(jget steps "$TMP/torch.json")
        T_SEC=$(jget seconds "$TMP/torch.json")
        T_RATE=$(jget steps_per_s "$TMP/torch.json")
        T_VER=$(jget torch "$TMP/torch.json")
        T_BLAS=$(jget blas "$TMP/torch.json")
        if is_num "$T_SEC" && is_num "$T_RATE"; then
            HAVE_TORCH=1
            echo "PyTorch $T_VER: $T_RATE steps/s"
        else
            echo "bench: cannot read the PyTorch result:"; cat "$TMP/torch.json"
        fi
    else
        echo "bench: the PyTorch benchmark failed; going on with stride only"
    fi
else
    echo "PyTorch is missing for $PY (apt-get install python3-torch); timing stride only"
fi
echo

# ---------------------------------------------------------------- stride
if [ ! -x ./stride ]; then
    echo "bench: ./stride not found; run make first" >&2
    exit 1
fi
echo "stride: $STRIDE_STEPS steps ..."
W0=$(now)
./stride train mnist1d-cnn --steps "$STRIDE_STEPS" --eval-every 0 --threads "$THREADS" \
    --log "$TMP/stride.jsonl"
RC=$?
W1=$(now)
if [ "$RC" -ne 0 ]; then
    echo "bench: './stride train mnist1d-cnn' failed (exit status $RC)" >&2
    exit "$RC"
fi
S_SEC=$(jget seconds "$TMP/stride.jsonl")
S_STEPS=$(jget step "$TMP/stride.jsonl")
is_num "$S_STEPS" || S_STEPS=$STRIDE_STEPS
if ! is_num "$S_SEC" || [ "$(calc 'a > 0' -v a="$S_SEC")" != 1 ]; then
    echo "bench: the last line of stride's --log has no usable \"seconds\":" >&2
    tail -n 1 "$TMP/stride.jsonl" >&2
    exit 1
fi
S_RATE=$(calc 'a/b' -v a="$S_STEPS" -v b="$S_SEC")
W_SEC=$(calc 'b-a' -v a="$W0" -v b="$W1")
W_RATE=$(calc '(b > 0) ? a/b : 0' -v a="$S_STEPS" -v b="$W_SEC")

# ---------------------------------------------------------------- report
fmt() { calc "sprintf(\"%.$1f\", a)" -v a="$2"; }   # fmt DECIMALS NUMBER
ratio() {                                          # ratio STEPS_PER_S: "2.35x" or "n/a"
    if [ "$HAVE_TORCH" = 1 ]; then calc 'sprintf("%.2fx", a/b)' -v a="$1" -v b="$T_RATE"
    else printf 'n/a'; fi
}
jratio() {                                         # the same for JSON: a number or null
    if [ "$HAVE_TORCH" = 1 ]; then calc 'sprintf("%.3f", a/b)' -v a="$1" -v b="$T_RATE"
    else printf 'null'; fi
}

{
    echo "## MNIST-1D CNN training speed"
    echo
    echo "CNN of UDL figure 10.8 (2,050 parameters), SGD lr 0.01, batch 100, $THREADS threads."
    echo "Machine: $NPROC cores, $CPU (load average before the runs: ${LOAD:-unknown}). Date: $DATE."
    echo
    echo "| implementation | steps | seconds | steps/s | ratio to PyTorch |"
    echo "|---|---:|---:|---:|---:|"
    echo "| stride (training loop) | $S_STEPS | $(fmt 2 "$S_SEC") | $(fmt 0 "$S_RATE") | $(ratio "$S_RATE") |"
    echo "| stride (whole command, wall clock) | $S_STEPS | $(fmt 2 "$W_SEC") | $(fmt 0 "$W_RATE") | $(ratio "$W_RATE") |"
    if [ "$HAVE_TORCH" = 1 ]; then
        echo "| PyTorch $T_VER | $T_STEPS | $(fmt 2 "$T_SEC") | $(fmt 0 "$T_RATE") | 1.00x |"
    else
        echo "| PyTorch | - | - | - | not installed |"
    fi
    if [ "$HAVE_TORCH" = 1 ]; then
        echo
        echo "PyTorch: torch.set_num_threads($THREADS), OMP_NUM_THREADS=$THREADS, OPENBLAS_NUM_THREADS=1,"
        echo "200 untimed warm-up steps; BLAS loaded: ${T_BLAS:-unknown}."
    fi
} >"$TMP/table.md"

if [ "$HAVE_TORCH" = 1 ]; then
    TORCH_JSON=$(printf '{"impl": "pytorch", "version": "%s", "steps": %s, "seconds": %s, "steps_per_s": %s, "ratio_to_pytorch": 1.0, "threads": %s, "blas": "%s"}' \
        "$T_VER" "$T_STEPS" "$T_SEC" "$T_RATE" "$THREADS" "$T_BLAS")
else
    TORCH_JSON=null
fi
cat >"$TMP/result.json" <<EOF
{
  "benchmark": "mnist1d-cnn training, SGD lr 0.01, batch 100",
  "date": "$DATE",
  "machine": {"nproc": $NPROC, "cpu": "$CPU", "loadavg_before": "$LOAD"},
  "stride": {"impl": "stride", "steps": $S_STEPS, "seconds": $(fmt 4 "$S_SEC"), "steps_per_s": $(fmt 1 "$S_RATE"), "ratio_to_pytorch": $(jratio "$S_RATE"), "wall_seconds": $(fmt 4 "$W_SEC"), "wall_steps_per_s": $(fmt 1 "$W_RATE"), "threads": $THREADS},
  "pytorch": $TORCH_JSON
}
EOF

echo
cat "$TMP/table.md"
cp "$TMP/table.md" "$OUTDIR/mnist1d.md" && cp "$TMP/result.json" "$OUTDIR/mnist1d.json" || exit 1
echo
echo "written: $OUTDIR/mnist1d.md, $OUTDIR/mnist1d.json"
