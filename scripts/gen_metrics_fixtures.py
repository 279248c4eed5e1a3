#!/usr/bin/python3
"""gen_metrics_fixtures.py - NumPy reference values for src/metrics.c, written as small
.npy files into the folder given (tests/fixtures/metrics). Only NumPy is needed.

The references are computed independently of the C code's loops: the confusion matrix by
np.add.at, IoU/precision/recall by matrix sums, top-k by a stable argsort with the
documented tie rule (lower class index first), PCK by NumPy peak detection (sliding
windows) and a greedy matching over a sorted distance table."""
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/metrics"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(4)


def save(name, a):
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(a))


# ---------------------------------------------------------------- segmentation confusion
N, C, H, W, IGNORE = 6, 5, 4, 3, 255
logits = rng.standard_normal((N, C, H, W)).astype(np.float32)
labels = rng.integers(0, C, size=(N, H, W)).astype(np.int32)
labels[labels == 4] = rng.integers(0, 3, size=(labels == 4).sum())  # class 4 never true...
labels[0, 0, :] = IGNORE                                            # ...and some ignored pixels
pred = logits.argmax(axis=1)
keep = labels != IGNORE
conf = np.zeros((C, C), np.int64)
np.add.at(conf, (labels[keep], pred[keep]), 1)
tp = np.diag(conf).astype(np.float64)
with np.errstate(invalid="ignore", divide="ignore"):
    precision = tp / conf.sum(axis=0)
    recall = tp / conf.sum(axis=1)
    iou = tp / (conf.sum(axis=0) + conf.sum(axis=1) - tp)
present = (conf.sum(axis=0) + conf.sum(axis=1)) > 0
save("seg_logits", logits)
save("seg_labels", labels)
save("seg_confusion", conf)
save("seg_scalars", np.array([np.trace(conf) / conf.sum(), iou[present].mean(), IGNORE], np.float64))
save("seg_precision", precision)
save("seg_recall", recall)
save("seg_iou", iou)

# ---------------------------------------------------------------- top-k with ties
N, C = 64, 10
logits = np.round(rng.standard_normal((N, C)) * 2).astype(np.float32) / 2  # many ties
labels = rng.integers(0, C, size=N).astype(np.int32)
order = np.argsort(-logits, axis=1, kind="stable")  # equal values keep index order
rank = np.argmax(order == labels[:, None], axis=1)
save("topk_logits", logits)
save("topk_labels", labels)
save("topk_correct", np.array([(rank < k).sum() for k in (1, 2, 3, 5, 10)], np.int64))

# ---------------------------------------------------------------- PCK
N, J, HS, STRIDE, K = 8, 3, 16, 4, 12
kp = np.zeros((N, K, 4), np.float32)
kp[:, :, 0:2] = rng.uniform(0, HS * STRIDE, size=(N, K, 2))
kp[:, :, 2] = rng.integers(0, J, size=(N, K))
kp[:, :, 3] = rng.choice([0, 1, 2], size=(N, K), p=[0.2, 0.7, 0.1])  # 2: visible, not scored
kp[:, -1, 2] = -1  # an unused row
kp[:, -1, 3] = 0
# predicted heatmaps: bumps near (some of) the truths, some spurious ones, noise
ys, xs = np.mgrid[0:HS, 0:HS].astype(np.float64)
hm = np.zeros((N, J, HS, HS))
for i in range(N):
    for r in range(K):
        if kp[i, r, 2] < 0 or rng.uniform() < 0.15:
            continue
        x = kp[i, r, 0] / STRIDE - 0.5 + rng.normal(0, 0.8)
        y = kp[i, r, 1] / STRIDE - 0.5 + rng.normal(0, 0.8)
        j = int(kp[i, r, 2])
        hm[i, j] = np.maximum(hm[i, j], rng.uniform(0.3, 1) * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2))
    for _ in range(2):
        j = rng.integers(0, J)
        x, y = rng.uniform(0, HS, size=2)
        hm[i, j] = np.maximum(hm[i, j], rng.uniform(0.3, 1) * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2))
hm = (hm + rng.normal(0, 0.02, size=hm.shape)).astype(np.float32)


def peaks(h, thr):
    p = np.pad(h.astype(np.float64), 1, constant_values=-np.inf)
    idx = np.arange(HS * HS).reshape(HS, HS)
    pidx = np.pad(idx, 1, constant_values=-1)
    ok = h >= thr
    for du in (-1, 0, 1):
        for dv in (-1, 0, 1):
            if du == 0 and dv == 0:
                continue
            nb = p[1 + du:1 + du + HS, 1 + dv:1 + dv + HS]
            ni = pidx[1 + du:1 + du + HS, 1 + dv:1 + dv + HS]
            ok &= ~((nb > h) | ((nb == h) & (ni >= 0) & (ni < idx)))
    out = []
    for u, v in zip(*np.nonzero(ok)):
        x, y = float(v), float(u)
        if 0 < v < HS - 1:
            x += 0.25 * np.sign(h[u, v + 1] - h[u, v - 1])
        if 0 < u < HS - 1:
            y += 0.25 * np.sign(h[u + 1, v] - h[u - 1, v])
        out.append(((x + 0.5) * STRIDE, (y + 0.5) * STRIDE))
    return np.array(out).reshape(-1, 2)


cases = []
for alpha in (0.02, 0.05, 0.1, 0.2):
    for thr in (0.1, 0.5):
        npk = nkp = ncor = 0
        radius = alpha * HS * STRIDE
        for i in range(N):
            for j in range(J):
                P = peaks(hm[i, j], thr)
                T = kp[i][(kp[i, :, 3] == 1) & (kp[i, :, 2] == j), 0:2].astype(np.float64)
                npk += len(P)
                nkp += len(T)
                if len(P) == 0 or len(T) == 0:
                    continue
                d2 = ((T[:, None, :] - P[None, :, :]) ** 2).sum(-1)
                ti, pi = np.nonzero(d2 <= radius * radius)
                order = np.lexsort((pi, ti, d2[ti, pi]))
                ut, up = set(), set()
                for o in order:
                    if ti[o] not in ut and pi[o] not in up:
                        ut.add(ti[o])
                        up.add(pi[o])
                        ncor += 1
        cases.append([alpha, thr, nkp, ncor, npk])
save("pck_heatmaps", hm)
save("pck_keypoints", kp)
save("pck_cases", np.array(cases, np.float64))  # rows: alpha, threshold, keypoints, correct, peaks
print("wrote", out, "pck cases:", cases)
