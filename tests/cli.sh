#!/bin/sh
# cli.sh - end-to-end tests of the stride command: PyTorch parity of `run` and `grad`
# on the built-in models, model files, the data generator, training, and bad input
# (each must fail with a non-zero exit and a message that names the problem).
# Run from the repository root after `make` (make test does both).
S=./stride
CMP=build/tests/compare
FX=tests/fixtures/models
T=$(mktemp -d /tmp/stride-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0

ok()   { pass=$((pass + 1)); echo "ok $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$T/err" ] && sed 's/^/    /' "$T/err" | head -5; }
# expect_ok NAME CMD...: the command must succeed
expect_ok() { name=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: must exit non-zero and print PATTERN (grep -E) on stderr
expect_fail() {
    name=$1; pat=$2; shift 2
    if "$@" >"$T/out" 2>"$T/err"; then bad "$name (exit status 0)"; return; fi
    if grep -Eq -- "$pat" "$T/err"; then ok "$name"; else bad "$name (message lacks '$pat')"; fi
}

# ---------------------------------------------------------------- parity with PyTorch
for m in mnist1d-cnn mnist1d-mlp convt1d convt2d lenet5 pool1d deconv2d deconv1d bn softmax; do
    W=$FX/$m.weights.safetensors
    model=$m; [ -f $FX/$m.net ] && model=$FX/$m.net   # model files next to their fixtures
    expect_ok "$m run" $S run $model --weights $W --input $FX/$m.x.npy --output $T/out.npy
    expect_ok "$m run matches PyTorch" $CMP $T/out.npy $FX/$m.out.npy
    expect_ok "$m grad ce" $S grad $model --weights $W --input $FX/$m.x.npy --target $FX/$m.labels.npy --loss ce --output $T/g.safetensors
    expect_ok "$m grad ce matches PyTorch" $CMP $T/g.safetensors $FX/$m.ce.safetensors
    expect_ok "$m grad mse" $S grad $model --weights $W --input $FX/$m.x.npy --target $FX/$m.target.npy --loss mse --output $T/g.safetensors
    expect_ok "$m grad mse matches PyTorch" $CMP $T/g.safetensors $FX/$m.mse.safetensors
    expect_ok "$m grad bce" $S grad $model --weights $W --input $FX/$m.x.npy --target $FX/$m.probs.npy --loss bce --output $T/g.safetensors
    expect_ok "$m grad bce matches PyTorch" $CMP $T/g.safetensors $FX/$m.bce.safetensors
    # the same through 1 and 2 threads: identical numbers
    $S run $model --weights $W --input $FX/$m.x.npy --output $T/o1.npy --threads 1 2>"$T/err"
    $S run $model --weights $W --input $FX/$m.x.npy --output $T/o2.npy --threads 2 2>"$T/err"
    expect_ok "$m run is the same with 1 and 2 threads" cmp $T/o1.npy $T/o2.npy
    # printed back as a model file, the network is the same network
    $S model $model >$T/rt.net 2>"$T/err"
    expect_ok "$m model file round trip runs" $S run $T/rt.net --weights $W --input $FX/$m.x.npy --output $T/o3.npy
    expect_ok "$m model file round trip gives PyTorch's output" $CMP $T/o3.npy $FX/$m.out.npy
done

# per-pixel cross-entropy with an ignored label (segmentation)
expect_ok "per-pixel cross-entropy with ignore_index" $S grad $FX/seg.net --weights $FX/seg.weights.safetensors \
    --input $FX/seg.x.npy --target $FX/seg.labels.npy --ignore-index 255 --output $T/g.safetensors
expect_ok "per-pixel cross-entropy matches PyTorch" $CMP $T/g.safetensors $FX/seg.ce.safetensors
expect_fail "labels of the wrong count for per-pixel logits" "needs 192" $S grad $FX/seg.net --weights $FX/seg.weights.safetensors \
    --input $FX/seg.x.npy --target $FX/mnist1d-cnn.labels.npy --output $T/g.safetensors
expect_fail "the ignored label 255 is out of range without --ignore-index" "label 255 of sample .* at position" $S grad $FX/seg.net \
    --weights $FX/seg.weights.safetensors --input $FX/seg.x.npy --target $FX/seg.labels.npy --output $T/g.safetensors

# ---------------------------------------------------------------- summary and model files
$S summary mnist1d-cnn >$T/s 2>$T/err
if grep -q "total parameters: 2,050$" $T/s; then ok "summary mnist1d-cnn prints 2,050"; else bad "summary mnist1d-cnn prints 2,050"; fi
$S summary mnist1d-mlp >$T/s 2>$T/err
if grep -q "total parameters: 59,065$" $T/s; then ok "summary mnist1d-mlp prints 59,065"; else bad "summary mnist1d-mlp prints 59,065"; fi
$S model mnist1d-cnn >$T/my.net 2>$T/err
expect_ok "model file of mnist1d-cnn summarises" $S summary $T/my.net
W=$FX/mnist1d-cnn.weights.safetensors
expect_ok "model file runs" $S run $T/my.net --weights $W --input $FX/mnist1d-cnn.x.npy --output $T/out.npy
expect_ok "model file gives PyTorch's output" $CMP $T/out.npy $FX/mnist1d-cnn.out.npy
# an edited model file: wider layers train
sed 's/out_channels=15/out_channels=8/g' $T/my.net >$T/edited.net
$S summary $T/edited.net >$T/s 2>$T/err
if grep -q "total parameters: 762$" $T/s; then ok "edited model file (8 channels) has 762 parameters"; else bad "edited model file (8 channels) has 762 parameters"; fi
$S summary $FX/lenet5.net >$T/s 2>$T/err
if grep -q "total parameters: 61,706$" $T/s && grep -q "^pool2 .*16x16 (jump 4,4)" $T/s; then ok "lenet5.net: 61,706 parameters, pool2 sees 16x16"; else bad "lenet5.net: 61,706 parameters, pool2 sees 16x16"; fi

# conv_transpose output_size= (PyTorch's forward(x, output_size)) picks the output_padding
printf 'x = input(shape=(2, 7, 9))\nt = conv_transpose2d(out_channels=3, kernel_size=3, stride=2, padding=1, output_size=(14, 17))\n' >$T/os.net
$S summary $T/os.net >$T/s 2>$T/err
grep -q "^t .*(1, 3, 14, 17)" $T/s && ok "conv_transpose2d output_size=(14, 17)" || bad "conv_transpose2d output_size=(14, 17)"
$S model $T/os.net >$T/s 2>$T/err
grep -q "output_padding=(1, 0)" $T/s && ok "output_size prints as output_padding=(1, 0)" || bad "output_size prints as output_padding=(1, 0)"
sed 's/(14, 17)/(15, 17)/' $T/os.net >$T/os2.net
expect_fail "conv_transpose2d output_size out of range" "requested an output size of 15, but valid sizes range from 13 to 14" $S summary $T/os2.net
sed 's/output_size=(14, 17)/output_size=(14, 17), output_padding=1/' $T/os.net >$T/os3.net
expect_fail "output_size and output_padding together" "not both" $S summary $T/os3.net

# ---------------------------------------------------------------- equivariance (UDL 6.1, 10.2)
printf 'x = input(shape=(1, 64))\nc1 = conv1d(out_channels=4, kernel_size=3, padding=1)\nr1 = relu()\nc2 = conv1d(out_channels=4, kernel_size=5, padding=2)\nr2 = relu()\ns = conv1d(out_channels=4, kernel_size=3, stride=2, padding=1)\ng = adaptive_avg_pool1d(output_size=1)\nf = flatten()\nfc = linear(out_features=3)\n' >$T/eq.net
$S equivariance $T/eq.net --shift 1 >$T/eq1 2>$T/err
$S equivariance $T/eq.net --shift 2 >$T/eq2 2>$T/err
# column 4 is the equivariance error, column 5 the invariance error
awk '$1 ~ /^(c1|r1|c2|r2)$/ { n++; if ($4 != "0") bad++ } END { exit !(n == 4 && !bad) }' $T/eq1 &&
    ok "a stride-1 convolution stack is exactly equivariant" || bad "a stride-1 convolution stack is exactly equivariant"
awk '$1 == "s" && $4 == "0" { f = 1 } END { exit !f }' $T/eq2 && grep -q "^s .*(k % stride)" $T/eq1 &&
    ok "total stride 2: equivariant for a shift of 2, not defined for 1" || bad "total stride 2: equivariant for a shift of 2, not defined for 1"
awk '$1 == "fc" && $5 + 0 < 1e-5 { f = 1 } END { exit !f }' $T/eq2 && awk '$1 == "fc" && $5 + 0 > 0.01 { f = 1 } END { exit !f }' $T/eq1 &&
    ok "global pooling makes the classifier invariant to shifts by multiples of its stride" || bad "global pooling makes the classifier invariant to shifts by multiples of its stride"
# 2D, shifted along H: a stride-1 stack is equivariant, the stride-2 convolution only for
# even shifts, global pooling makes the classifier invariant; upsampling by 2 after a
# stride-2 convolution gives a jump of 1 again
printf 'x = input(shape=(2, 40, 24))\nc1 = conv2d(out_channels=3, kernel_size=3, padding=1)\nr1 = relu()\ns = conv2d(out_channels=3, kernel_size=3, stride=2, padding=1)\nu = upsample(scale_factor=2)\nc2 = conv2d(out_channels=3, kernel_size=3, padding=1)\ng = adaptive_avg_pool2d(output_size=1)\nf = flatten()\nfc = linear(out_features=3)\n' >$T/eq2d.net
$S equivariance $T/eq2d.net --shift 2 --axis H >$T/eqh2 2>$T/err
$S equivariance $T/eq2d.net --shift 1 --axis H >$T/eqh1 2>$T/err
awk '$1 ~ /^(c1|r1|s|u|c2)$/ { n++; if ($4 != "0") bad++ } $1 == "fc" && $5 + 0 < 1e-5 { inv = 1 } END { exit !(n == 5 && !bad && inv) }' $T/eqh2 &&
    ok "2D along H: equivariant layers and an invariant classifier for a shift of 2" ||
    bad "2D along H: equivariant layers and an invariant classifier for a shift of 2"
awk '$1 == "c1" && $4 == "0" { a = 1 } $1 == "s" && $4 == "(k" { b = 1 } $1 == "u" && $3 == "1" && $4 + 0 > 1e-3 { c = 1 } END { exit !(a && b && c) }' $T/eqh1 &&
    ok "2D along H, shift 1: c1 equivariant, the stride-2 conv undefined, upsampled maps (jump 1) not equivariant" ||
    bad "2D along H, shift 1: c1 equivariant, the stride-2 conv undefined, upsampled maps (jump 1) not equivariant"
expect_fail "equivariance --axis H on a 1D model" "needs a 2D input" $S equivariance mnist1d-cnn --axis H
expect_fail "equivariance --axis Z" "must be W or H" $S equivariance $T/eq2d.net --axis Z
$S equivariance mnist1d-cnn --shift 8 >$T/eq3 2>$T/err
awk '$1 == "conv2" && $4 == "0" { e = 1 } $1 == "fc" && $5 + 0 > 0.01 { v = 1 } END { exit !(e && v) }' $T/eq3 &&
    ok "mnist1d-cnn: conv2 (stride 4) equivariant to a shift of 8, the flattening classifier not invariant" ||
    bad "mnist1d-cnn: conv2 (stride 4) equivariant to a shift of 8, the flattening classifier not invariant"

# ---------------------------------------------------------------- data
expect_ok "data mnist1d" $S data mnist1d --out $T/d
for f in train_x train_y test_x test_y t; do
    expect_ok "generated $f.npy is identical to the official file" cmp $T/d/$f.npy tests/data/mnist1d/$f.npy
done
expect_ok "data shapes" $S data shapes --n 20 --train-split 0.8 --out $T/sh
expect_ok "data shapes again, with 1 thread" env OMP_NUM_THREADS=1 $S data shapes --n 20 --out $T/sh2
for f in train_x train_y train_heatmaps train_keypoints test_x test_y test_heatmaps test_keypoints; do
    expect_ok "shapes $f.npy is the same for the same seed" cmp $T/sh/$f.npy $T/sh2/$f.npy
done
# header shapes: 16 + 4 images of 1x64x64, masks int32, 5 heatmaps of 16x16, 4 shapes x 5 keypoint rows
for want in "train_x '<f4'.*(16, 1, 64, 64)" "train_y '<i4'.*(16, 64, 64)" "train_heatmaps '<f4'.*(16, 5, 16, 16)" \
            "test_keypoints '<f4'.*(4, 20, 4)"; do
    f=${want%% *}; pat=${want#* }
    if head -c 128 $T/sh/$f.npy | grep -aq "$pat"; then ok "shapes $f.npy header"; else bad "shapes $f.npy header (want $pat)"; fi
done
expect_fail "data shapes: a heatmap stride that does not divide the size" "heatmap_stride=5 must .* divide size=64" \
    $S data shapes --n 20 --heatmap-stride 5 --out $T/sh3
expect_fail "data shapes needs --out" "--out DIR is required" $S data shapes --n 20

# ---------------------------------------------------------------- training
expect_ok "train a few steps with log and save" $S train mnist1d-cnn --steps 300 --eval-every 100 --log $T/log.jsonl --save $T/w.safetensors --quiet
n=$(grep -c '"step"' $T/log.jsonl 2>/dev/null)
if [ "$n" = 4 ] && grep -q '"train_loss"' $T/log.jsonl && grep -q '"test_error"' $T/log.jsonl && grep -q '"seconds"' $T/log.jsonl; then
    ok "log has one JSON line per evaluation with the keys"; else bad "log has one JSON line per evaluation with the keys"; fi
expect_ok "saved weights load" $S run mnist1d-cnn --weights $T/w.safetensors --input $FX/mnist1d-cnn.x.npy --output $T/out.npy
expect_ok "train on .npy files (--data)" $S train mnist1d-mlp --data tests/data/mnist1d --steps 20 --eval-every 0 --quiet

# corrupt copies of the real Fashion-MNIST files: truncated, wrong magic, wrong counts
FM=/usr/share/datasets/fashion-mnist
if [ -f $FM/t10k-labels-idx1-ubyte.gz ]; then
    mkdir -p $T/fm
    gzip -dc $FM/t10k-images-idx3-ubyte.gz >$T/fm/good-images; gzip -dc $FM/t10k-labels-idx1-ubyte.gz >$T/fm/good-labels
    fm_case() { expect_fail "$1" "$2" $S data $T/fm --info; } # NAME PATTERN: reading $T/fm must fail naming the problem
    cp $T/fm/good-images $T/fm/train-images-idx3-ubyte; cp $T/fm/good-labels $T/fm/train-labels-idx1-ubyte
    head -c 5000000 $T/fm/good-images >$T/fm/t10k-images-idx3-ubyte; cp $T/fm/good-labels $T/fm/t10k-labels-idx1-ubyte
    fm_case "a truncated copy of the real images" "t10k-images-idx3-ubyte.*(truncated|expected|bytes)"
    cp $T/fm/good-images $T/fm/t10k-images-idx3-ubyte
    { printf 'PK\010\003'; tail -c +5 $T/fm/good-images; } >$T/fm/train-images-idx3-ubyte
    fm_case "the real images with a wrong magic" "train-images-idx3-ubyte.*magic"
    cp $T/fm/good-images $T/fm/train-images-idx3-ubyte
    { printf '\000\000\010\001\000\000\047\017'; tail -c +9 $T/fm/good-labels; } >$T/fm/t10k-labels-idx1-ubyte
    fm_case "the real labels with a wrong count (9999 for 10000 bytes)" "t10k-labels-idx1-ubyte.*(9999|count|length|bytes)"
fi

# ---------------------------------------------------------------- training on real data (issue 4)
# the log's keys, epochs, the data-wait report
expect_ok "train lenet5 on Fashion-MNIST for 40 steps" $S train lenet5 --data fashion-mnist --steps 40 --eval-every 20 \
    --eval-train 500 --optim adamw --lr 0.002 --schedule cosine,warmup=10 --augment crop=2,flip --log $T/f.jsonl --save $T/f.safetensors
if [ "$(grep -c '"step"' $T/f.jsonl)" = 3 ] && grep -q '"epoch"' $T/f.jsonl && grep -q '"lr"' $T/f.jsonl &&
    grep -q '"test_top5"' $T/f.jsonl && grep -q '"train_error"' $T/f.jsonl && grep -q '"data_wait"' $T/f.jsonl; then
    ok "log: step, epoch, lr, losses, errors, top-5, data wait"; else bad "log: step, epoch, lr, losses, errors, top-5, data wait"; fi
grep -q "waited for data" $T/out && ok "train reports how long it waited for data" || bad "train reports how long it waited for data"
# the trained weights carry the data normalisation; stride eval applies it and agrees with the log
expect_ok "eval the trained lenet5" $S eval lenet5 --weights $T/f.safetensors --data fashion-mnist
grep -q "inputs normalised as in training .*mean 0.28604" $T/out && ok "eval applies the training normalisation from the weights" ||
    bad "eval applies the training normalisation from the weights"
acc=$(sed -n 's/^accuracy \([0-9.]*\) %.*/\1/p' $T/out)
err=$(tail -n 1 $T/f.jsonl | sed -n 's/.*"test_error": \([0-9.e-]*\).*/\1/p')
if [ -n "$acc" ] && [ -n "$err" ] && awk -v a="$acc" -v e="$err" 'BEGIN { d = (100 - a) - 100 * e; exit !(d < 0.006 && d > -0.006) }'; then
    ok "eval's test accuracy equals the training log's last test error"; else bad "eval's accuracy $acc% vs the log's test error $err"; fi
# segmentation and keypoints through the same loop: their metrics reach the log
expect_ok "train a small unet-same on shapes (segmentation)" $S train "unet-same:size=32,width=4,channels=1,classes=4" \
    --data shapes:n=40,size=32 --steps 4 --batch 8 --eval-every 2 --optim adam --augment flip,translate=2 --log $T/seg.jsonl --quiet
grep -q '"test_miou": 0\.[0-9]' $T/seg.jsonl && grep -q '"test_pixel_acc"' $T/seg.jsonl && ok "segmentation log: test_miou, test_pixel_acc" ||
    bad "segmentation log: test_miou, test_pixel_acc"
expect_ok "train a 2-stack hourglass on shapes-keypoints" $S train "hourglass:stacks=2,features=8,joints=5,depth=2,channels=1,size=32" \
    --data shapes-keypoints:n=40,size=32 --steps 4 --batch 8 --eval-every 2 --optim adam --log $T/kp.jsonl --quiet
grep -q '"test_pck": [0-9]' $T/kp.jsonl && ok "keypoint log: test_pck" || bad "keypoint log: test_pck"
# kill -9 in the middle, resume: the same weights, bit for bit, as a run that went straight through
RUN="$S train lenet5 --data fashion-mnist --steps 1200 --batch 32 --eval-every 0 --optim adamw --lr 0.002
     --schedule cosine,warmup=50 --clip 1 --label-smoothing 0.1 --augment crop=2,flip --threads 1 --quiet"
$RUN --save $T/straight.safetensors >/dev/null 2>$T/err
rm -f $T/ck.safetensors
$RUN --checkpoint $T/ck.safetensors --checkpoint-every 100 --save $T/never.safetensors >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -f $T/ck.safetensors ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -f $T/ck.safetensors ] && [ ! -f $T/never.safetensors ]; then ok "a run killed with SIGKILL left its checkpoint"; else bad "a run killed with SIGKILL left its checkpoint"; fi
expect_ok "resume from the checkpoint" $RUN --checkpoint $T/ck.safetensors --checkpoint-every 100 --resume $T/ck.safetensors \
    --save $T/resumed.safetensors
expect_ok "killed and resumed = straight through, bit for bit" cmp $T/straight.safetensors $T/resumed.safetensors
expect_fail "resume with other settings is refused" "other settings" $S train lenet5 --data fashion-mnist --steps 1200 \
    --batch 64 --resume $T/ck.safetensors --quiet
expect_fail "resume from a weights file is refused" "rng|train.step|checkpoint" $S train lenet5 --data fashion-mnist --steps 10 \
    --resume $T/f.safetensors --quiet
# a loss that becomes NaN or Inf stops the run, names the step and the node, keeps the last good checkpoint
rm -f $T/nan.safetensors
expect_fail "an exploding run stops and names the step and the node" "step [0-9]+.*non-finite.*(node|gradient|parameter)" \
    $S train lenet5 --data fashion-mnist --steps 50 --lr 1e30 --momentum 0.9 --eval-every 0 --checkpoint $T/nan.safetensors \
    --checkpoint-every 1 --quiet
expect_ok "the last good checkpoint stays and resumes" $S train lenet5 --data fashion-mnist --steps 1 --lr 1e30 --momentum 0.9 \
    --eval-every 0 --resume $T/nan.safetensors --quiet
expect_ok "--checkpoint with evaluation only at the end writes one at the end" $S train mnist1d-cnn --steps 30 --eval-every 0 \
    --checkpoint $T/end.safetensors --quiet
[ -f $T/end.safetensors ] && ok "the end-of-run checkpoint exists" || bad "the end-of-run checkpoint exists"
expect_fail "a model that does not fit the data" "takes inputs .* but the data's samples are" $S train resnet18 --data fashion-mnist --steps 1
expect_fail "an unknown --augment item" "unknown or bad item 'rotate'" $S train lenet5 --data fashion-mnist --augment rotate --steps 1
expect_fail "a bad schedule" "schedule|cosin" $S train lenet5 --data fashion-mnist --schedule cosin --steps 1

# ---------------------------------------------------------------- bad input
printf 'x = input(shape=(1, 40))\nconv1 = conv1d(out_chanels=15, kernel_size=3)\n' >$T/typo.net
expect_fail "typo in a model file names file, line and argument" "typo.net line 2.*out_chanels" $S summary $T/typo.net
printf 'x = input(shape=(1, 40))\nc = convv1d(out_channels=4, kernel_size=3)\n' >$T/op.net
expect_fail "unknown op names it" "op.net line 2.*unknown op 'convv1d'" $S summary $T/op.net
printf 'x = input(shape=(1, 40))\nc = conv2d(out_channels=4, kernel_size=3)\n' >$T/shape.net
expect_fail "conv2d after a 1D input names the nodes and shapes" "shape.net line 2.*'c'.*\\(1, 40\\)" $S summary $T/shape.net
printf 'x = input(shape=(1, 40))\nc = conv1d(out_channels=4, kernel_size=3)\nf = flatten()\nfc = linear(in_features=100, out_features=10)\n' >$T/lin.net
expect_fail "linear in_features mismatch" "lin.net line 4.*in_features=100.*152" $S summary $T/lin.net
printf 'x = input(shape=(1, 40))\na = conv1d(x, out_channels=4, kernel_size=3)\nb = conv1d(x, out_channels=4, kernel_size=5)\ns = add(a, b)\n' >$T/add.net
expect_fail "add of mismatched shapes names both nodes" "add.net line 4.*'a' \\(4, 38\\).*'b' \\(4, 36\\)" $S summary $T/add.net
printf 'x = input(shape=(1, 8, 8))\na = conv2d(x, out_channels=2, kernel_size=3)\nb = conv2d(x, out_channels=3, kernel_size=1)\nc = concat(a, b)\n' >$T/cat.net
expect_fail "concat of mismatched sizes names both nodes and shapes" "cat.net line 4.*'a' \\(2, 6, 6\\).*'b' \\(3, 8, 8\\)" $S summary $T/cat.net
printf 'x = input(shape=(1, 4))\nc = conv1d(out_channels=4, kernel_size=9)\n' >$T/big.net
expect_fail "kernel larger than the input" "big.net line 2.*larger than the padded input" $S summary $T/big.net
printf 'x = input(shape=(1, 40))\nc = conv1d(y, out_channels=4, kernel_size=3)\n' >$T/undef.net
expect_fail "undefined input node" "undef.net line 2.*'y' is not defined" $S summary $T/undef.net
printf 'x = input(shape=(1, 8, 8))\nc = conv2d(out_channels=2, kernel_size=3, padding=1)\np = avg_pool2d(kernel_size=2)\nu = max_unpool2d(p, c)\n' >$T/unpool.net
expect_fail "unpooling from a node that is not max pooling" "unpool.net line 4.*'c' is a conv2d node, not a max_pool2d" $S summary $T/unpool.net
printf 'x = input(shape=(1, 40)\n' >$T/syntax.net
expect_fail "syntax error" "syntax.net line 1" $S summary $T/syntax.net
expect_fail "missing model file" "no-such.net.*neither a built-in model" $S summary no-such.net
head -c 100 $FX/mnist1d-cnn.x.npy >$T/trunc.npy
expect_fail "truncated .npy names the file" "trunc.npy.*truncated" $S run mnist1d-cnn --input $T/trunc.npy --output $T/o.npy
head -c 3000 $FX/mnist1d-cnn.weights.safetensors >$T/trunc.safetensors
expect_fail "truncated .safetensors names the file" "trunc.safetensors" $S run mnist1d-cnn --weights $T/trunc.safetensors --input $FX/mnist1d-cnn.x.npy --output $T/o.npy
expect_fail "weights of another model: names and shapes" "missing 'conv1.weight'.*unexpected 'fc1.weight'" $S run mnist1d-cnn --weights $FX/mnist1d-mlp.weights.safetensors --input $FX/mnist1d-cnn.x.npy --output $T/o.npy
expect_fail "float targets for cross-entropy: wrong dtype" "target.npy.*float" $S grad mnist1d-cnn --input $FX/mnist1d-cnn.x.npy --target $FX/mnist1d-cnn.target.npy --loss ce --output $T/g.safetensors
expect_fail "input of the wrong shape" "expects shape \\(-1, 1, 40\\).*got \\(7, 40, 1\\)|expects shape" $S run mnist1d-cnn --input tests/data/mnist1d/t.npy --output $T/o.npy
expect_fail "unknown option names it" "unknown option '--stepz'" $S train mnist1d-cnn --stepz 10
expect_fail "unknown command" "unknown command 'trian'" $S trian mnist1d-cnn
expect_fail "bad option value" "--steps: 'ten' is not an integer" $S train mnist1d-cnn --steps ten
expect_fail "missing value" "needs a value" $S train mnist1d-cnn --steps
# nothing is lost: a failed save leaves the old file
cp $W $T/keep.safetensors
expect_fail "save into a missing folder fails" "no-such-dir" $S train mnist1d-cnn --steps 1 --eval-every 0 --quiet --save $T/no-such-dir/w.safetensors
expect_ok "an existing weights file is untouched by failures" cmp $W $T/keep.safetensors
for c in summary model train experiment data run grad equivariance; do
    expect_ok "$c --help" $S $c --help
done

# ---------------------------------------------------------------- stacked hourglass (intermediate supervision)
# scripts/gen_hourglass_fixtures.py: eval output = the last stack's heatmaps; grad = the sum over
# the stacks of the MSE against one target (tolerance 1e-4 for a whole network, spec B11)
HG=hourglass:stacks=2,features=8,joints=3,depth=2,channels=1,size=32
expect_ok "hourglass run" $S run $HG --weights $FX/hourglass.weights.safetensors --input $FX/hourglass.x.npy --output $T/out.npy
expect_ok "hourglass run matches PyTorch (last stack)" $CMP $T/out.npy $FX/hourglass.out.npy
expect_ok "hourglass grad mse" $S grad $HG --weights $FX/hourglass.weights.safetensors --input $FX/hourglass.x.npy \
    --target $FX/hourglass.target.npy --loss mse --output $T/g.safetensors
expect_ok "hourglass grad: summed MSE over the stacks matches PyTorch" $CMP $T/g.safetensors $FX/hourglass.mse.safetensors 1e-4
# ---------------------------------------------------------------- LeNet-5 in the zoo (models.md A2, A3)
# the zoo's lenet5 is the network of lenet5.net: its PyTorch fixtures hold for it too
W=$FX/lenet5.weights.safetensors
expect_ok "zoo lenet5 run" $S run lenet5 --weights $W --input $FX/lenet5.x.npy --output $T/out.npy
expect_ok "zoo lenet5 run matches PyTorch" $CMP $T/out.npy $FX/lenet5.out.npy
expect_ok "zoo lenet5 grad ce" $S grad lenet5 --weights $W --input $FX/lenet5.x.npy --target $FX/lenet5.labels.npy --loss ce --output $T/g.safetensors
expect_ok "zoo lenet5 grad ce matches PyTorch" $CMP $T/g.safetensors $FX/lenet5.ce.safetensors
# lenet5-classic (scaled tanh, trainable subsampling, C3's connection table, RBF output)
# against scripts/gen_lenet_fixtures.py
m=lenet5-classic; W=$FX/$m.weights.safetensors
expect_ok "$m run" $S run $m --weights $W --input $FX/$m.x.npy --output $T/out.npy
expect_ok "$m run matches PyTorch" $CMP $T/out.npy $FX/$m.out.npy
expect_ok "$m grad ce" $S grad $m --weights $W --input $FX/$m.x.npy --target $FX/$m.labels.npy --loss ce --output $T/g.safetensors
expect_ok "$m grad ce matches PyTorch" $CMP $T/g.safetensors $FX/$m.ce.safetensors
$S model $m >$T/rt.net 2>"$T/err"
expect_ok "$m model file round trip gives PyTorch's output" sh -c "$S run $T/rt.net --weights $W --input $FX/$m.x.npy --output $T/o3.npy && $CMP $T/o3.npy $FX/$m.out.npy"
$S summary $m >$T/s 2>$T/err
if grep -q "total parameters: 60,000$" $T/s; then ok "summary $m prints 60,000"; else bad "summary $m prints 60,000"; fi
expect_fail "$m takes no options" "lenet5-classic' takes no options" $S summary $m:size=28
expect_fail "lenet5 size must be 28 or 32" "size=30 is not 28 or 32" $S summary lenet5:size=30

# ---------------------------------------------------------------- pictures (stride plot, stride show)
# png_check FILE [W H]: a PNG (signature, IHDR), W x H pixels if given, and not blank: at least
# 20 bytes per 1000 pixels, twice what cairo's PNG of a plain white picture of that size takes (5-10)
png_check() {
    f=$1; ew=$2; eh=$3
    [ -f "$f" ] || { echo "$f: not written" >&2; return 1; }
    sig=$(od -An -tx1 -N8 "$f" | tr -d ' \n')
    [ "$sig" = 89504e470d0a1a0a ] || { echo "$f: not a PNG (starts $sig)" >&2; return 1; }
    set -- $(od -An -tu1 -j12 -N12 "$f")
    [ "$1 $2 $3 $4" = "73 72 68 82" ] || { echo "$f: no IHDR chunk" >&2; return 1; }
    w=$(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 )); h=$(( ($9 << 24) + (${10} << 16) + (${11} << 8) + ${12} ))
    [ -z "$ew" ] || [ "$w $h" = "$ew $eh" ] || { echo "$f: $w x $h, expected $ew x $eh" >&2; return 1; }
    size=$(wc -c <"$f")
    [ $((size * 1000)) -gt $((w * h * 20)) ] || { echo "$f: $size bytes for $w x $h pixels: blank?" >&2; return 1; }
}
# a CAIRO=0 build has the commands but cannot draw: they say so
if ! $S show mnist1d-cnn --filters $T/probe.png 2>&1 | grep -q "built without cairo"; then
    # a log as 'stride train --log' writes it, with nulls, missing keys, a metric and a blank line
    printf '%s\n' '{"step": 0, "epoch": 0, "lr": 0.1, "train_loss": 2.3, "train_error": 0.9, "test_loss": 2.31, "test_error": 0.91, "seconds": 0.1}' \
        '{"step": 50, "epoch": 1, "lr": 0.1, "train_loss": 1.2, "train_error": 0.4, "test_loss": null, "test_error": null, "seconds": 1.0, "test_top5": 0.8}' \
        '' '{"step": 100, "epoch": 2, "lr": 0.01, "train_loss": 0.7, "train_error": 0.2, "test_loss": 0.9, "test_error": 0.3, "seconds": 2.0, "test_top5": 0.95}' >$T/a.jsonl
    $S train mnist1d-cnn --steps 40 --eval-every 10 --quiet --log $T/b.jsonl >/dev/null 2>&1
    expect_ok "plot two logs" $S plot $T/a.jsonl $T/b.jsonl --out $T/curves.png
    expect_ok "plot: a PNG, 4 panels of 480 x 500, not blank" png_check $T/curves.png 1920 500
    printf '%s\n' '{"step": 0, "train_loss": 2.3, "train_error": 0.9, "test_loss": 2.31, "test_error": 0.91, "seconds": 0.1}' \
        '{"step": 10, "train_loss": 1.3, "train_error": 0.5, "test_loss": 1.4, "test_error": 0.6, "seconds": 0.2}' >$T/b2.jsonl
    expect_ok "plot one log without lr or metrics: 2 panels" $S plot $T/b2.jsonl --out $T/c2.png
    expect_ok "plot: 2 panels are 960 x 500" png_check $T/c2.png 960 500
    printf '%s\n' '{"step": 0, "train_loss": 1}' '{"step": 10, "train_loss": 0.5' >$T/bad.jsonl
    expect_fail "plot: a malformed line names file and line" "bad.jsonl:2:.*expected ',' or '}'" $S plot $T/bad.jsonl --out $T/x.png
    printf '%s\n' '{"step": 0, "train_loss": 1}' 'step 10' >$T/bad2.jsonl
    expect_fail "plot: a line that is not an object" "bad2.jsonl:2:1: expected '\{'" $S plot $T/bad2.jsonl --out $T/x.png
    expect_fail "plot: a missing log" "cannot open '$T/none.jsonl'" $S plot $T/none.jsonl --out $T/x.png
    # filters: 2D (one input channel), RGB, 1D
    expect_ok "show lenet5 filters" $S show lenet5 --weights $FX/lenet5.weights.safetensors --filters $T/f.png
    expect_ok "show lenet5 filters: a PNG" png_check $T/f.png
    expect_ok "show resnet18 filters (RGB, untrained)" $S show resnet18 --filters $T/f3.png
    expect_ok "show resnet18 filters: a PNG" png_check $T/f3.png
    expect_ok "show mnist1d-cnn filters (1D)" $S show mnist1d-cnn --filters $T/f1.png
    expect_ok "show mnist1d-cnn filters: a PNG" png_check $T/f1.png
    expect_fail "show --filters of a model without convolutions" "mnist1d-mlp has no convolution layer" $S show mnist1d-mlp --filters $T/x.png
    expect_fail "show an unknown model" "no-such-model" $S show no-such-model --filters $T/x.png
    # feature maps: one PNG per node with spatial output (lenet5: input, 3 conv stages x 2 ... = 7)
    expect_ok "show lenet5 features" $S show lenet5 --weights $FX/lenet5.weights.safetensors --input $FX/lenet5.x.npy --index 1 --features $T/feat
    n=$(ls $T/feat/*.png 2>/dev/null | wc -l)
    want=$($S summary lenet5 | awk '$3 ~ /^\(1,/ && $0 ~ /\(1, [0-9]+, [0-9]+, [0-9]+\)/' | wc -l)
    if [ "$n" -eq "$want" ] && [ "$n" -gt 0 ]; then ok "show lenet5 features: one PNG per spatial node ($n)"; else bad "show lenet5 features: $n PNGs, expected $want"; fi
    expect_ok "show lenet5 features: conv1 is a PNG" png_check $T/feat/001_conv1.png
    $S show lenet5 --weights $FX/lenet5.weights.safetensors --input $FX/lenet5.x.npy --index 0 --features $T/feat0 >/dev/null 2>&1
    if ! cmp -s $T/feat/001_conv1.png $T/feat0/001_conv1.png; then ok "show features depend on the sample"; else bad "show features depend on the sample"; fi
    expect_fail "show --index out of range" "--index 99 is out of range: .*lenet5.x.npy holds [0-9]+ samples" \
        $S show lenet5 --input $FX/lenet5.x.npy --index 99 --features $T/feat
    expect_fail "show --input of the wrong shape" "but the model's input is" $S show lenet5 --input $FX/mnist1d-cnn.x.npy --features $T/feat
    expect_ok "show mnist1d-cnn features, signals and confusion" $S show mnist1d-cnn --weights $FX/mnist1d-cnn.weights.safetensors \
        --input $FX/mnist1d-cnn.x.npy --features $T/feat1 --signals $T/sig.png --truth $FX/mnist1d-cnn.labels.npy --confusion $T/conf.png
    expect_ok "show 1D features: a PNG" png_check $T/feat1/001_conv1.png
    expect_ok "show signals: a PNG" png_check $T/sig.png
    expect_ok "show confusion: a PNG" png_check $T/conf.png
    expect_ok "show segmentation masks" $S show $FX/seg.net --weights $FX/seg.weights.safetensors --input $FX/seg.x.npy \
        --masks $T/masks.png --truth $FX/seg.labels.npy
    expect_ok "show masks: a PNG" png_check $T/masks.png
    expect_ok "show hourglass heatmaps" $S show $HG --weights $FX/hourglass.weights.safetensors --input $FX/hourglass.x.npy \
        --heatmaps $T/heat.png --truth $FX/hourglass.target.npy
    expect_ok "show heatmaps: a PNG" png_check $T/heat.png
    expect_fail "show --confusion without labels" "needs --truth" $S show mnist1d-cnn --input $FX/mnist1d-cnn.x.npy --confusion $T/x.png
else
    expect_fail "without cairo, plot says so" "built without cairo" $S show lenet5 --filters $T/x.png
fi
expect_ok "plot --help" $S plot --help
expect_ok "show --help" $S show --help
# ---------------------------------------------------------------- data sets (tools/data_files.c)
$S data fashion-mnist --info >$T/out 2>$T/err
if grep -q "60000 train / 10000 test samples of shape (1, 28, 28)" $T/out && grep -q "first train labels 9 0 0 3 0 2 7 2 5 5" $T/out \
    && grep -q "mean 0.28604, std 0.35302" $T/out; then ok "data fashion-mnist --info"; else bad "data fashion-mnist --info"; fi
$S data mnist1d --out $T/m1d >$T/out 2>$T/err
expect_ok "data --info reads .npy folders" sh -c "$S data $T/m1d --info | grep -q '4000 train / 1000 test samples of shape (1, 40)'"
expect_fail "data --info on a folder without data" "no data set found" $S data $T/m1d/.. --info
expect_fail "data --info on a missing folder" "no such folder" $S data $T/none --info

# ---------------------------------------------------------------- stride eval (tools/eval_cmd.c, evaluate.c, task_data.c)
# json_num FILE KEY: the number after "KEY": in a JSON file written by --json
json_num() { sed -n "s/^ *\"$2\": \([^,]*\),*$/\1/p" "$1"; }
# npy_offset FILE: where an .npy file's data start (10-byte preamble + header length)
npy_offset() { echo $((10 + $(od -An -tu2 -j8 -N2 "$1" | tr -d ' '))); }
# classification: accuracy from `stride run`'s logits and the labels, counted in awk, against eval's
W=$FX/mnist1d-cnn.weights.safetensors
$S data mnist1d --out $T/e1d >/dev/null 2>&1
$S run mnist1d-cnn --weights $W --input $T/e1d/test_x.npy --output $T/logits.npy 2>"$T/err"
correct=$( { od -An -v -tf4 -w40 -j $(npy_offset $T/logits.npy) $T/logits.npy; echo LABELS;
             od -An -v -td4 -w4 -j $(npy_offset $T/e1d/test_y.npy) $T/e1d/test_y.npy; } |
    awk '$1 == "LABELS" { lab = 1; next }
         !lab { b = 1; for (c = 2; c <= NF; c++) if ($c + 0 > $b + 0) b = c; pred[n++] = b - 1; next }
         { if (pred[m++] == $1) right++ } END { print right + 0 }')
expect_ok "eval mnist1d-cnn on mnist1d" $S eval mnist1d-cnn --weights $W --data mnist1d --json $T/e.json
acc=$(json_num $T/e.json accuracy)
if [ -n "$correct" ] && [ "$(awk -v a="$acc" 'BEGIN { printf "%d", a * 1000 + 0.5 }')" = "$correct" ]; then
    ok "eval accuracy = stride run + argmax in awk ($correct of 1000)"
else bad "eval accuracy $acc, stride run + awk counts $correct of 1000"; fi
expect_ok "eval on the .npy folder of the same data" $S eval mnist1d-cnn --weights $W --data $T/e1d --json $T/e2.json
if [ "$(json_num $T/e2.json loss)" = "$(json_num $T/e.json loss)" ] && [ -n "$acc" ]; then ok "eval: mnist1d and its folder agree"
else bad "eval: mnist1d and its folder disagree"; fi
$S eval lenet5 --weights $FX/lenet5.weights.safetensors --data fashion-mnist --n 200 --batch 64 --json $T/f.json >$T/out 2>$T/err
if grep -q "test split: 200 of 10000 samples" $T/out && grep -q "accuracy .* top-5" $T/out && grep -q "Ankle boot" $T/out &&
    grep -q "confusion matrix" $T/out && [ "$(json_num $T/f.json n)" = 200 ]; then ok "eval lenet5 on 200 Fashion-MNIST test images"
else bad "eval lenet5 on 200 Fashion-MNIST test images"; fi
# normalisation stored in the weights' metadata: add_meta IN OUT ENTRIES copies a .safetensors
# file whose header has a "__metadata__" object, with ENTRIES ('"k":"v",...') added to it
add_meta() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    hdr=$(dd if="$1" bs=1 skip=8 count="$n" 2>/dev/null)
    new=$(printf '%s' "$hdr" | sed "s/\"__metadata__\":{/\"__metadata__\":{$3,/")
    len=${#new}
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((len & 255)) $((len >> 8 & 255)) $((len >> 16 & 255)) $((len >> 24 & 255)))\\000\\000\\000\\000" >"$2"
    printf '%s' "$new" >>"$2"
    tail -c +$((9 + n)) "$1" >>"$2"
}
add_meta $W $T/norm.safetensors '"data.mean":"0.5","data.std":"0.25"'
$S eval mnist1d-cnn --weights $T/norm.safetensors --data mnist1d --json $T/n.json >$T/out 2>$T/err
if grep -q "normalised as in training.*mean 0.5, std 0.25" $T/out && grep -q '"normalized": true' $T/n.json &&
    [ "$(json_num $T/n.json loss)" != "$(json_num $T/e.json loss)" ]; then ok "eval applies data.mean/data.std from the weights"
else bad "eval applies data.mean/data.std from the weights"; fi
add_meta $W $T/norm2.safetensors '"data.mean":"0.5,0.5","data.std":"0.25,0.25"'
expect_fail "eval: normalisation for 2 channels on 1-channel data" "must each be 1 comma-separated number" \
    $S eval mnist1d-cnn --weights $T/norm2.safetensors --data mnist1d
# segmentation and keypoints on generated shapes (untrained, seeded nets)
UN=unet-same:size=64,width=4,classes=4,channels=1
HGS=hourglass:stacks=1,features=16,joints=5,depth=2,channels=1,size=64
$S eval $UN --seed 1 --data shapes:n=50 --json $T/s.json >$T/out 2>$T/err
if grep -q "pixel accuracy .*, mean IoU 0\.[0-9]" $T/out && grep -q "triangle" $T/out && [ "$(json_num $T/s.json n)" = 10 ]; then
    ok "eval unet-same on shapes: pixel accuracy, mean IoU, per-class IoU"; else bad "eval unet-same on shapes"; fi
$S data shapes --out $T/sh --n 50 >/dev/null 2>&1
$S eval $UN --seed 1 --data $T/sh --json $T/s2.json >/dev/null 2>&1
if [ -n "$(json_num $T/s.json miou)" ] && [ "$(json_num $T/s2.json miou)" = "$(json_num $T/s.json miou)" ]; then
    ok "eval: shapes:n=50 and 'stride data shapes --n 50' agree"; else bad "eval: shapes:n=50 and its folder disagree"; fi
$S eval $HGS --seed 1 --data shapes-keypoints:n=50 --json $T/k.json >$T/out 2>$T/err
if grep -q "PCK@0.1 [01]\.[0-9]*: [0-9]* of [0-9]* visible keypoints" $T/out && grep -q "loss .*(MSE, summed over" $T/out; then
    ok "eval hourglass on shapes-keypoints: PCK@0.1 and the loss"; else bad "eval hourglass on shapes-keypoints"; fi
$S eval $HGS --seed 1 --data $T/sh:keypoints --json $T/k2.json >/dev/null 2>&1
if [ -n "$(json_num $T/k.json pck)" ] && [ "$(json_num $T/k2.json pck)" = "$(json_num $T/k.json pck)" ]; then
    ok "eval: shapes-keypoints:n=50 and DIR:keypoints agree"; else bad "eval: shapes-keypoints:n=50 and DIR:keypoints disagree"; fi
expect_ok "eval --split train --n 5" sh -c "$S eval $UN --seed 1 --data shapes:n=50 --split train --n 5 | grep -q 'train split: 5 of 40'"
if ! $S show mnist1d-cnn --filters $T/probe.png 2>&1 | grep -q "built without cairo"; then
    expect_ok "eval --masks --confusion" $S eval $UN --seed 1 --data shapes:n=20 --masks $T/em.png --confusion $T/ec.png --count 2
    expect_ok "eval --masks: a PNG" png_check $T/em.png
    expect_ok "eval --confusion: a PNG" png_check $T/ec.png
    expect_ok "eval --heatmaps" $S eval $HGS --seed 1 --data shapes-keypoints:n=20 --heatmaps $T/eh.png --count 2
    expect_ok "eval --heatmaps: a PNG" png_check $T/eh.png
fi
# bad input
expect_fail "eval: unknown data" "no-such-data: no such folder, and not a data set name" $S eval lenet5 --seed 1 --data no-such-data
expect_fail "eval: unknown shapes option" "unknown option 'colour'" $S eval $UN --seed 1 --data shapes:colour=3
expect_fail "eval: weights that do not fit" "weights do not fit the model.*'conv1.weight' has shape \(6, 1, 5, 5\) in the file but \(15, 1, 3\)" \
    $S eval mnist1d-cnn --weights $FX/lenet5.weights.safetensors --data mnist1d
expect_fail "eval: a classifier on segmentation data" "output \(2, 10\) is one class per sample \(a classifier\), but the data set has per-pixel class masks of 28x28" \
    $S eval lenet5 --weights $FX/lenet5.weights.safetensors --data shapes:n=10,size=28
expect_fail "eval: input of the wrong shape" "expects shape \(-1, 1, 28, 28\).*the data set's samples are \(1, 40\)" \
    $S eval lenet5 --seed 1 --data mnist1d --n 10
expect_fail "eval: heatmaps of the wrong size" "output \(4, 5, 8, 8\) does not match the data set's heatmap targets \(4, 5, 16, 16\)" \
    $S eval hourglass:stacks=1,features=8,joints=5,depth=1,channels=1,size=32 --seed 1 --data shapes-keypoints:n=20,size=32,stride=2
expect_fail "eval: --masks on classification data" "--masks needs segmentation data" $S eval lenet5 --seed 1 --data fashion-mnist --masks $T/x.png
expect_fail "eval without --weights" "eval needs --weights" $S eval lenet5 --data fashion-mnist
expect_fail "eval: a bad --split" "--split must be 'test' or 'train'" $S eval lenet5 --seed 1 --data fashion-mnist --split val

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
