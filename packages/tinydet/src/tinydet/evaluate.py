"""AI-TOD-R evaluation: COCO-style AP with rotated IoU and tiny-object size bins, and DOTA's VOC mAP50.

Detections and ground truths are lists (one entry per image) of dicts with ``boxes (N, 5)``,
``labels (N,)`` and, for detections, ``scores (N,)``; ground truths may carry ``difficult (N,)``
(ignored by both metrics).
"""

from __future__ import annotations

import numpy as np
import torch

from labcore.rotated import rotated_iou

# AI-TOD size bins on sqrt(area) in pixels (aitodr_eval): very tiny 2–8, tiny 8–16, small 16–32, medium 32–64
AREA_RANGES = {
    "all": (0.0, 1e10),
    "vt": (2.0**2, 8.0**2),
    "t": (8.0**2, 16.0**2),
    "s": (16.0**2, 32.0**2),
    "m": (32.0**2, 64.0**2),
}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def _check(dets: list[dict], gts: list[dict]) -> None:
    if len(dets) != len(gts):
        raise ValueError(f"got detections for {len(dets)} images but ground truth for {len(gts)}")


def _match(iou: np.ndarray, gt_ignore: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching for score-sorted dets, all IoU thresholds at once.

    Returns ``det_gt (T, D)`` (matched gt index or −1) and ``det_ignored (T, D)``.
    """
    t, (d, g) = len(thresholds), iou.shape
    det_gt = np.full((t, d), -1)
    det_ig = np.zeros((t, d), dtype=bool)
    gt_taken = np.zeros((t, g), dtype=bool)
    rows = np.arange(t)
    if g == 0:
        return det_gt, det_ig
    for k in range(d):
        ok = (~gt_taken) & (iou[k][None] >= np.minimum(thresholds, 1 - 1e-10)[:, None])
        regular = np.where(ok & ~gt_ignore[None], iou[k][None], -1.0)
        ignored = np.where(ok & gt_ignore[None], iou[k][None], -1.0)
        best_r, best_i = regular.argmax(1), ignored.argmax(1)
        has_r, has_i = regular[rows, best_r] >= 0, ignored[rows, best_i] >= 0
        m = np.where(has_r, best_r, np.where(has_i, best_i, -1))
        hit = m >= 0
        det_gt[hit, k] = m[hit]
        det_ig[hit, k] = gt_ignore[m[hit]]
        gt_taken[rows[hit], m[hit]] = True
    return det_gt, det_ig


def _precision_at_recalls(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> np.ndarray:
    """COCO's interpolated precision at the 101 recall thresholds (0 beyond the reached recall)."""
    tpc, fpc = np.cumsum(tp), np.cumsum(fp)
    rc = tpc / n_gt
    pr = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
    idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
    out = np.zeros(len(RECALL_THRESHOLDS))
    inside = idx < len(pr)
    out[inside] = pr[idx[inside]]
    return out


def coco_rotated_ap(
    detections: list[dict], ground_truths: list[dict], num_classes: int, max_dets: int = 1500
) -> dict[str, float]:
    """AP@[.5:.95], AP50, AP75, AP per size bin (vt/t/s/m) and AR@max_dets, as AI-TOD-R reports them.

    Faithful to pycocotools' evaluateImg/accumulate: per image and class the top ``max_dets``
    detections are greedily matched; gts outside a size bin (or difficult) are ignored, as are
    unmatched detections outside it; classes without gts in a bin are left out of its mean.
    """
    _check(detections, ground_truths)
    t = len(IOU_THRESHOLDS)
    per = {a: [[[] for _ in range(num_classes)], np.zeros(num_classes, dtype=int)] for a in AREA_RANGES}
    for det, gt in zip(detections, ground_truths):
        for c in range(num_classes):
            dm = (det["labels"] == c).cpu()
            gm = (gt["labels"] == c).cpu()
            if not dm.any() and not gm.any():
                continue
            scores = det["scores"].cpu()[dm].double().numpy()
            order = np.argsort(-scores, kind="mergesort")[:max_dets]
            dboxes, gboxes = det["boxes"].cpu()[dm][order], gt["boxes"].cpu()[gm]
            scores = scores[order]
            iou = rotated_iou(dboxes.double(), gboxes.double()).numpy()
            d_area = (dboxes[:, 2] * dboxes[:, 3]).double().numpy()
            g_area = (gboxes[:, 2] * gboxes[:, 3]).double().numpy()
            difficult = gt.get("difficult", torch.zeros(len(gt["labels"]), dtype=torch.bool)).cpu()[gm].numpy()
            for name, (lo, hi) in AREA_RANGES.items():
                g_ig = difficult | (g_area < lo) | (g_area > hi)
                g_order = np.argsort(g_ig, kind="mergesort")  # regular gts first
                det_gt, det_ig = _match(iou[:, g_order], g_ig[g_order], IOU_THRESHOLDS)
                det_ig |= (det_gt < 0) & ((d_area < lo) | (d_area > hi))[None]
                per[name][0][c].append((scores, det_gt >= 0, det_ig))
                per[name][1][c] += int((~g_ig).sum())
    out = {}
    for name, (items, n_gt) in per.items():
        ap = np.full((t, num_classes), -1.0)
        ar = np.full((t, num_classes), -1.0)
        for c in range(num_classes):
            if n_gt[c] == 0:
                continue
            if items[c]:
                scores = np.concatenate([s for s, _, _ in items[c]])
                matched = np.concatenate([m for _, m, _ in items[c]], 1)
                ignored = np.concatenate([i for _, _, i in items[c]], 1)
                order = np.argsort(-scores, kind="mergesort")
                matched, ignored = matched[:, order], ignored[:, order]
            else:
                matched = ignored = np.zeros((t, 0), dtype=bool)
            for k in range(t):
                tp, fp = matched[k] & ~ignored[k], ~matched[k] & ~ignored[k]
                ap[k, c] = _precision_at_recalls(tp, fp, n_gt[c]).mean()
                ar[k, c] = tp.sum() / n_gt[c]
        valid = ap > -1
        key = "AP" if name == "all" else f"AP_{name}"
        out[key] = float(ap[valid].mean()) if valid.any() else -1.0
        if name == "all":
            out["AP50"] = float(ap[0][valid[0]].mean()) if valid[0].any() else -1.0
            out["AP75"] = float(ap[5][valid[5]].mean()) if valid[5].any() else -1.0
            out["AR"] = float(ar[valid].mean()) if valid.any() else -1.0
    return out


def voc_rotated_map(
    detections: list[dict], ground_truths: list[dict], num_classes: int, iou_thr: float = 0.5
) -> dict[str, float]:
    """DOTA-style mAP: per class all detections by score, each matched to its highest-IoU gt
    (true positive if ≥ ``iou_thr`` and that gt is still free; difficult gts neither count nor
    penalise), area-under-PR ("area" mode) AP, averaged over classes that have gts."""
    _check(detections, ground_truths)
    aps = []
    for c in range(num_classes):
        records, n_gt = [], 0
        for det, gt in zip(detections, ground_truths):
            dm, gm = (det["labels"] == c).cpu(), (gt["labels"] == c).cpu()
            difficult = gt.get("difficult", torch.zeros(len(gt["labels"]), dtype=torch.bool)).cpu()[gm].numpy()
            n_gt += int((~difficult).sum())
            if not dm.any():
                continue
            scores = det["scores"].cpu()[dm].double().numpy()
            order = np.argsort(-scores, kind="mergesort")
            iou = rotated_iou(det["boxes"].cpu()[dm][order].double(), gt["boxes"].cpu()[gm].double()).numpy()
            covered = np.zeros(iou.shape[1], dtype=bool)
            for k in range(iou.shape[0]):  # sequential: a gt can be claimed once
                j = int(iou[k].argmax()) if iou.shape[1] else -1
                if j >= 0 and iou[k, j] >= iou_thr:
                    if difficult[j]:
                        records.append((scores[order[k]], 0, 0))
                    elif not covered[j]:
                        covered[j] = True
                        records.append((scores[order[k]], 1, 0))
                    else:
                        records.append((scores[order[k]], 0, 1))
                else:
                    records.append((scores[order[k]], 0, 1))
        if n_gt == 0:
            continue
        rec = np.array(records, dtype=np.float64).reshape(-1, 3)
        rec = rec[np.argsort(-rec[:, 0], kind="mergesort")]
        tp, fp = np.cumsum(rec[:, 1]), np.cumsum(rec[:, 2])
        recall = tp / n_gt
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]).sum()))
    return {"mAP50": float(np.mean(aps)) if aps else -1.0}
