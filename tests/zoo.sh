#!/bin/sh
# zoo.sh - make test-zoo: torchvision's logits at 224x224 in eval mode (and those of PyTorch
# re-implementations: unet-same and preact-resnet18/50 at 64x64, alexnet2012 at 227x227)
# against stride's for the same weights (max abs error <= 1e-4 (1 + max |reference|)), and
# the re-implementations' parameter counts against stride's, and training-mode gradients of
# resnet18 and unet-same against PyTorch in float64. Needs python3-torch and
# python3-torchvision (scripts/zoo_parity.py makes the weights and references).
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/stride-zoo.XXXXXX)
trap 'rm -rf "$T"' EXIT
if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
    echo "zoo: PyTorch and torchvision are needed: apt-get install python3-torch python3-torchvision"
    echo "zoo: 0 passed, 1 failed"
    exit 1
fi
"$PY" scripts/zoo_parity.py "$T" || { echo "zoo: 0 passed, 1 failed"; exit 1; }
pass=0; fail=0
for m in resnet18 resnet50 vgg11_bn alexnet unet-same unet-bilinear alexnet2012 preact-resnet18 preact-resnet50; do
    model=$m
    case $m in unet-same | preact-*) model=$m:size=64 ;; unet-bilinear) model=unet-same:size=64,bilinear=1 ;; esac
    if ./stride run $model --weights $T/$m.safetensors --input $T/$m.x.npy --output $T/$m.out.npy &&
        build/tests/compare $T/$m.out.npy $T/$m.y.npy 1e-4; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $m"; fi
done
# training-mode gradients (batch statistics) against float64 PyTorch: resnet18 at 64x64,
# batch 2; unet-same at 32x32, per-pixel cross-entropy (scripts/zoo_parity.py says why these sizes)
for m in resnet18:size=64 unet-same:size=32; do
    f=${m%%:*}
    if ./stride grad $m --weights $T/$f.safetensors --input $T/$f.gx.npy --target $T/$f.labels.npy --loss ce \
        --output $T/$f.g.safetensors && build/tests/compare $T/$f.g.safetensors $T/$f.grads.safetensors 1e-4 >$T/cmp; then
        pass=$((pass + 1)); echo "ok $m training gradients ($(grep -c '^ok' $T/cmp) tensors)"
    else fail=$((fail + 1)); echo "FAIL $m training gradients"; grep FAIL $T/cmp | head -5; fi
done
# parameter counts of the PyTorch re-implementations (all depths of preact-resnet) against stride's
while read -r m n; do
    got=$(./stride summary "$m" | sed -n 's/^total parameters: //p' | tr -d ,)
    if [ "$got" = "$n" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $m: $got parameters, PyTorch $n"; fi
done < "$T/counts.txt"
echo "zoo: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
