#!/bin/sh
# bench/train.sh - training speed of issue 4's workloads, stride against PyTorch in the same run:
#   1. lenet5, one epoch of Fashion-MNIST (60,000 images, batch 64): `stride train` with its
#      loader (the share of time it waited for data is reported) against the same epoch in
#      PyTorch (bench/torch_train.py --epoch-fashion-mnist);
#   2. the CIFAR-style resnet18, training steps on 32 x 32 x 3 batches of 32 (random data):
#      build/bench/train_step against bench/torch_train.py.
# Both sides use 2 threads; PyTorch with torch.set_num_threads(2) and OPENBLAS_NUM_THREADS=1.
# Writes bench/results/train.md and bench/results/train.json.
set -u
PY=/usr/bin/python3
THREADS=2
OUT=bench/results
RESNET_STEPS=${RESNET_STEPS:-6}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
jget() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2" | tail -n 1; }
calc() { awk "BEGIN { printf \"%s\", ($1) }" </dev/null; }
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1 | tr -d '\042\134')
LOAD=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "training speed (issue 4 workloads), $THREADS threads; load average before: $LOAD"

# ---- lenet5, one Fashion-MNIST epoch
./stride train lenet5 --data fashion-mnist --epochs 1 --batch 64 --eval-every 0 --eval-train 1 --threads $THREADS \
    --optim sgd --lr 0.01 --momentum 0.9 >"$TMP/s_lenet.txt" 2>&1 || { cat "$TMP/s_lenet.txt"; exit 1; }
S_LE_SEC=$(sed -n 's/.*images in \([0-9.]*\) s of training.*/\1/p' "$TMP/s_lenet.txt")
S_LE_IPS=$(sed -n 's/.*training: \([0-9]*\) images\/s.*/\1/p' "$TMP/s_lenet.txt")
S_LE_WAIT=$(sed -n 's/.*waited for data \([0-9.]*\)%.*/\1/p' "$TMP/s_lenet.txt")
T_LE_SEC=""; T_LE_IPS=""
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$THREADS "$PY" bench/torch_train.py --model lenet5 --batch 64 --steps 1 \
        --epoch-fashion-mnist --threads $THREADS >"$TMP/t_lenet.json" && {
        T_LE_SEC=$(jget seconds "$TMP/t_lenet.json"); T_LE_IPS=$(jget images_per_s "$TMP/t_lenet.json"); }
fi

# ---- CIFAR-style resnet18, batch 32
M="resnet18:classes=10,size=32,cifar=1"
build/bench/train_step "$M" 32 "$RESNET_STEPS" 1 $THREADS >"$TMP/s_res.json" || exit 1
S_RES_SEC=$(calc "$(jget seconds "$TMP/s_res.json") / $RESNET_STEPS")
T_RES_SEC=""
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$THREADS "$PY" bench/torch_train.py --model resnet18-cifar --batch 32 \
        --steps "$RESNET_STEPS" --warmup 1 --threads $THREADS >"$TMP/t_res.json" &&
        T_RES_SEC=$(calc "$(jget seconds "$TMP/t_res.json") / $RESNET_STEPS")
fi

ratio() { if [ -n "$2" ]; then calc "sprintf(\"%.2fx\", $1 / $2)"; else printf 'n/a'; fi; }
{
    echo "## Training speed (issue 4 workloads)"
    echo
    echo "Machine: $(nproc) cores, $CPU (load average before: $LOAD). Date: $DATE. $THREADS threads each."
    echo
    echo "| workload | stride | PyTorch | stride / PyTorch (speed) |"
    echo "|---|---:|---:|---:|"
    echo "| lenet5, one Fashion-MNIST epoch, batch 64 | ${S_LE_SEC} s (${S_LE_IPS} img/s) | ${T_LE_SEC:-n/a} s (${T_LE_IPS:-n/a} img/s) | $(ratio "${T_LE_SEC:-0}" "$S_LE_SEC") |"
    echo "| resnet18 (CIFAR stem), 32x32x3, batch 32: seconds per step | $(calc "sprintf(\"%.3f\", $S_RES_SEC)") | ${T_RES_SEC:+$(calc "sprintf(\"%.3f\", $T_RES_SEC)")} | $(ratio "${T_RES_SEC:-0}" "$S_RES_SEC") |"
    echo
    echo "stride's lenet5 epoch is \`stride train\` with its background loader; it waited for data ${S_LE_WAIT}% of its training time."
} >"$TMP/table.md"
cat >"$TMP/r.json" <<JSON
{"date": "$DATE", "cpu": "$CPU", "loadavg_before": "$LOAD", "threads": $THREADS,
 "lenet5_epoch": {"stride_seconds": ${S_LE_SEC:-null}, "stride_images_per_s": ${S_LE_IPS:-null}, "stride_data_wait_percent": ${S_LE_WAIT:-null}, "pytorch_seconds": ${T_LE_SEC:-null}, "pytorch_images_per_s": ${T_LE_IPS:-null}},
 "resnet18_cifar_step": {"stride_seconds": ${S_RES_SEC:-null}, "pytorch_seconds": ${T_RES_SEC:-null}}}
JSON
echo; cat "$TMP/table.md"
cp "$TMP/table.md" "$OUT/train.md" && cp "$TMP/r.json" "$OUT/train.json"
