#!/usr/bin/env python3
"""Writes PyTorch references for training: optimisers, LR schedules, gradient clipping
and label smoothing (tests/test_optim.c reads them).

Models, weights and batches come from tests/fixtures/models (mnist1d-cnn, bn, seg), so this runs after gen_model_fixtures.py. Files in OUT (tests/fixtures/optim):
  optim.safetensors    for each run RUN on each model M: "M.RUN.stepK.PARAM" = the
                       parameters after step K (1..3) of CE training on M's batch;
                       metadata "M.RUN" = the settings as JSON (bn: Adam eps 1e-4); for the "adam" run also
                       "M.adam.exp_avg.PARAM", "M.adam.exp_avg_sq.PARAM" after step 3
  schedules.safetensors  for each schedule S: "S" = float64 (200,) the learning rate of
                       each optimiser step as PyTorch's schedulers set it; metadata "S" =
                       the st_schedule_parse text, "S.base_lr", "S.total"
  clip.safetensors     mnist1d-cnn gradients of its CE batch: "grad.P"; for max norms
                       0.05 and 1000: "maxK.norm" (the returned norm) and "maxK.P" after
  smooth.safetensors   F.cross_entropy(label_smoothing=eps): "cnn.*" on mnist1d-cnn with a
                       batch of 64 (so stride splits it into two shards), some labels
                       -100 (ignored); "seg.*" per pixel on seg with ignore_index 255;
                       each: "loss", "grad.P", "input" (input gradient), inputs "x",
                       "labels"

Run with Debian's PyTorch: /usr/bin/python3 scripts/gen_optim_fixtures.py tests/fixtures/optim
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import read_safetensors, write_safetensors  # noqa: E402
from gen_model_fixtures import Bn, Cnn, Seg  # noqa: E402

MODELS = "tests/fixtures/models"
STEPS = 3


def f32(t):
    return t.detach().contiguous().numpy().astype("<f4")


def load_model(name, module):
    weights, _ = read_safetensors(os.path.join(MODELS, name + ".weights.safetensors"))
    module.load_state_dict({k: torch.tensor(np.array(v)) for k, v in weights.items()})
    x = torch.tensor(np.load(os.path.join(MODELS, name + ".x.npy")))
    labels = torch.tensor(np.load(os.path.join(MODELS, name + ".labels.npy")))
    return module, x, labels


# (tag, optimiser, settings, learning rate per step: a schedule changing lr between steps)
RUNS = [
    ("adam", torch.optim.Adam, dict(lr=0.01), None),
    ("adam_wd", torch.optim.Adam, dict(lr=0.01, weight_decay=0.1), None),
    ("adamw", torch.optim.AdamW, dict(lr=0.01), None),  # default weight_decay 0.01
    ("adamw_wd", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.5, betas=(0.8, 0.99), eps=1e-6), [0.01, 0.003, 0.02]),
    ("sgd_nesterov", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001), [0.05, 0.1, 0.02]),
]


def gen_optim(out):
    tensors, meta = [], {"torch": torch.__version__}
    for name, cls in (("mnist1d-cnn", Cnn), ("bn", Bn)):
        for tag, opt_cls, kw, lrs in RUNS:
            torch.manual_seed(0)
            model, x, labels = load_model(name, cls())
            model.train()
            if name == "bn" and opt_cls is not torch.optim.SGD:
                # bn1.bias of channels 2 and 3 has gradients of ~1e-8, rounding noise of a
                # true zero, which Adam with eps 1e-8 turns into steps of about lr whose
                # sign is the noise's: a larger eps keeps the comparison meaningful
                kw = {**kw, "eps": 1e-4}
            opt = opt_cls(model.parameters(), **kw)
            for k in range(STEPS):
                if lrs:
                    for g in opt.param_groups:
                        g["lr"] = lrs[k]
                opt.zero_grad()
                F.cross_entropy(model(x), labels).backward()
                opt.step()
                tensors += [(f"{name}.{tag}.step{k + 1}.{p}", f32(v)) for p, v in model.named_parameters()]
            if tag == "adam":
                for p, v in model.named_parameters():
                    st = opt.state[v]
                    tensors.append((f"{name}.adam.exp_avg.{p}", f32(st["exp_avg"])))
                    tensors.append((f"{name}.adam.exp_avg_sq.{p}", f32(st["exp_avg_sq"])))
            meta[f"{name}.{tag}"] = json.dumps({"kind": opt_cls.__name__.lower(), **kw, "lrs": lrs}, separators=(",", ":"))
    write_safetensors(os.path.join(out, "optim.safetensors"), tensors, meta)


def gen_schedules(out, steps=200):
    L = torch.optim.lr_scheduler
    cases = [
        # name, stride text, base lr, make(opt)
        ("step", "step:30:0.1", 0.1, lambda o: L.StepLR(o, step_size=30, gamma=0.1)),
        ("step7", "step:7,gamma=0.7", 0.3, lambda o: L.StepLR(o, step_size=7, gamma=0.7)),
        ("multistep", "multistep:30,60,90:0.5", 0.1, lambda o: L.MultiStepLR(o, milestones=[30, 60, 90], gamma=0.5)),
        ("cosine", "cosine", 0.1, lambda o: L.CosineAnnealingLR(o, T_max=steps)),
        ("cosine_eta", "cosine:0.001,t_max=150", 0.05, lambda o: L.CosineAnnealingLR(o, T_max=150, eta_min=0.001)),
        ("warmup_cosine", "cosine,warmup=20,warmup_start=0.01", 0.1,
         lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.01, total_iters=20),
                                      L.CosineAnnealingLR(o, T_max=steps - 20)], milestones=[20])),
        ("warmup_step", "step:50:0.5,warmup=10", 0.2,
         lambda o: L.SequentialLR(o, [L.LinearLR(o, total_iters=10), L.StepLR(o, step_size=50, gamma=0.5)],
                                  milestones=[10])),
    ]
    tensors, meta = [], {"torch": torch.__version__, "steps": str(steps)}
    for name, text, base, make in cases:
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=base)
        sched = make(opt)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        tensors.append((name, np.array(lrs, dtype="<f8")))
        meta[name] = text
        meta[name + ".base_lr"] = repr(base)
        meta[name + ".total"] = str(steps)
    write_safetensors(os.path.join(out, "schedules.safetensors"), tensors, meta)


def gen_clip(out):
    torch.manual_seed(0)
    model, x, labels = load_model("mnist1d-cnn", Cnn())
    tensors = []
    for max_norm in (0.05, 1000.0):
        model.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        if max_norm == 0.05:
            tensors += [(f"grad.{p}", f32(v.grad)) for p, v in model.named_parameters()]
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        tag = "max0.05" if max_norm == 0.05 else "max1000"
        tensors.append((tag + ".norm", f32(norm.reshape(()))))
        tensors += [(f"{tag}.{p}", f32(v.grad)) for p, v in model.named_parameters()]
    write_safetensors(os.path.join(out, "clip.safetensors"), tensors, {"torch": torch.__version__})


def smooth_case(prefix, model, x, labels, eps, ignore_index):
    model.zero_grad()
    xi = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xi), labels, ignore_index=ignore_index, label_smoothing=eps)
    loss.backward()
    t = [(prefix + "loss", f32(loss.reshape(()))), (prefix + "x", f32(x)), (prefix + "labels", labels.numpy()),
         (prefix + "input", f32(xi.grad))]
    return t + [(f"{prefix}grad.{p}", f32(v.grad)) for p, v in model.named_parameters()]


def gen_smooth(out):
    torch.manual_seed(1)
    cnn, _, _ = load_model("mnist1d-cnn", Cnn())
    x = torch.randn(64, 1, 40)
    labels = torch.randint(0, 10, (64,), dtype=torch.int64)
    labels[::7] = -100
    tensors = smooth_case("cnn.", cnn, x, labels, 0.1, -100)
    seg, sx, slabels = load_model("seg", Seg())
    tensors += smooth_case("seg.", seg, sx, slabels, 0.2, 255)
    write_safetensors(os.path.join(out, "smooth.safetensors"), tensors,
                      {"torch": torch.__version__, "cnn.eps": "0.1", "cnn.ignore_index": "-100",
                       "seg.eps": "0.2", "seg.ignore_index": "255"})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim"
    os.makedirs(out, exist_ok=True)
    gen_optim(out)
    gen_schedules(out)
    gen_clip(out)
    gen_smooth(out)
    for f in sorted(os.listdir(out)):
        print(f"{out}/{f}: {os.path.getsize(os.path.join(out, f))} bytes")


if __name__ == "__main__":
    main()
