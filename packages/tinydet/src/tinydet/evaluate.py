"""AI-TOD-R evaluation: COCO-style AP with rotated IoU and tiny-object size bins, and DOTA's VOC mAP50.

Detections and ground truths are lists (one entry per image) of dicts with ``boxes (N, 5)``,
``labels (N,)`` and, for detections, ``scores (N,)``; ground truths may carry ``difficult (N,)``.

Two protocols (``protocol=``):

- ``"aitod-r"``: exactly what AI-TOD-R's released evaluator reports (``AITODReval`` in
  ``mmrotate/datasets/aitodr_eval/aitodr_eval.py`` and mmrotate's ``eval_rbbox_map``, Chasel-Tsui/AI-TOD-R
  @847c656), quirks included: difficult boxes count like any other (the dataset's ``difficulty=100``);
  size bins on ``int(w·h)`` of float32 boxes (capped at 1e6) with both ends inclusive; IoUs in float32;
  gts and detections numbered from 0 through the whole set, and — as pycocotools' code, which expects
  ids from 1, then reads them — a detection matched to the set's first gt counts as a false positive and
  a gt matched by the set's first detection stays free; VOC ranks detections with numpy's default
  (unstable) sort, float32 counts. Golden numbers: ``tests/golden``.
- ``"clean"``: the same COCO matching without those quirks: difficult gts ignored (neither counted nor
  penalised), float areas, float64 IoUs, no id artefacts, stable sorts.
"""

from __future__ import annotations

import numpy as np
import torch

from labcore.rotated import rotated_iou

PROTOCOLS = ("aitod-r", "clean")
# AI-TOD size bins on sqrt(area) in pixels (aitodr_eval): very tiny 2–8, tiny 8–16, small 16–32, medium 32–64
AREA_RANGES = {
    "all": (0.0, 1e4**2),
    "vt": (2.0**2, 8.0**2),
    "t": (8.0**2, 16.0**2),
    "s": (16.0**2, 32.0**2),
    "m": (32.0**2, 64.0**2),
}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def _check(dets: list[dict], gts: list[dict], protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    if len(dets) != len(gts):
        raise ValueError(f"got detections for {len(dets)} images but ground truth for {len(gts)}")


def _difficult(gt: dict) -> torch.Tensor:
    return gt.get("difficult", torch.zeros(len(gt["labels"]), dtype=torch.bool)).cpu().bool()


def _areas(boxes: torch.Tensor, protocol: str) -> np.ndarray:
    """Box areas for the size bins: ``min(int(w·h), 1e6)`` in float32 (aitod-r) or float64 ``w·h``."""
    if protocol == "aitod-r":
        wh = boxes[:, 2:4].cpu().numpy().astype(np.float32)
        return np.minimum(np.trunc(wh[:, 0] * wh[:, 1]), 1e6).astype(np.float64)
    return (boxes[:, 2] * boxes[:, 3]).cpu().double().numpy()


def _iou(d: torch.Tensor, g: torch.Tensor, protocol: str) -> np.ndarray:
    iou = rotated_iou(d.cpu().double(), g.cpu().double()).numpy()
    return iou.astype(np.float32) if protocol == "aitod-r" else iou


def _match(
    iou: np.ndarray, gt_ignore: np.ndarray, gt_ids: np.ndarray, det_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``evaluateImg`` matching for score-sorted dets, all IoU thresholds at once.

    Each det takes the free gt of highest IoU ≥ the threshold (ties: the later gt), regular gts before
    ignored ones. A gt counts as taken once a det with a nonzero id matched it; a det counts as matched
    when its gt's id is nonzero (pycocotools' 0 = "none"). Returns ``matched (T, D)``, ``ignored (T, D)``.
    """
    t, (d, g) = len(IOU_THRESHOLDS), iou.shape
    matched = np.zeros((t, d), dtype=bool)
    det_ig = np.zeros((t, d), dtype=bool)
    if g == 0:
        return matched, det_ig
    taken = np.zeros((t, g), dtype=bool)
    rows = np.arange(t)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[:, None]
    for k in range(d):
        ok = ~taken & (iou[k][None] >= thr)
        best = np.full(t, -1)
        for group in (~gt_ignore, gt_ignore):  # regular gts first; ignored ones only if no regular matched
            cand = np.where(ok & group[None], iou[k][None], -np.inf)
            last = g - 1 - cand[:, ::-1].argmax(1)  # the later gt wins ties
            hit = (best < 0) & np.isfinite(cand[rows, last])
            best[hit] = last[hit]
        hit = best >= 0
        m = best[hit]
        matched[hit, k] = gt_ids[m] != 0
        det_ig[hit, k] = gt_ignore[m]
        if det_ids[k] != 0:
            taken[rows[hit], m] = True
    return matched, det_ig


def _precision_at_recalls(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> np.ndarray:
    """COCO's interpolated precision at the 101 recall thresholds (0 beyond the reached recall)."""
    tpc, fpc = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    rc = tpc / n_gt
    pr = tpc / (fpc + tpc + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
    idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
    out = np.zeros(len(RECALL_THRESHOLDS))
    inside = idx < len(pr)
    out[inside] = pr[idx[inside]]
    return out


def _by_class(det: dict, c: int) -> tuple[torch.Tensor, np.ndarray]:
    m = (det["labels"] == c).cpu()
    return det["boxes"].cpu()[m], det["scores"].cpu()[m].float().numpy()


def coco_rotated_ap(
    detections: list[dict],
    ground_truths: list[dict],
    num_classes: int,
    max_dets: int = 1500,
    protocol: str = "clean",
) -> dict[str, float]:
    """AP@[.5:.95], AP50, AP75, AP per size bin (vt/t/s/m) and AR (all and per bin) at ``max_dets``
    detections per image and class, as AI-TOD-R's ``AITODReval`` reports them (its ``stats``).

    pycocotools' evaluateImg/accumulate/summarize: per image and class the top ``max_dets``
    detections are greedily matched; gts outside a size bin are ignored, as are unmatched detections
    outside it; classes without gts in a bin are left out of its mean. See the module doc for
    ``protocol``.
    """
    _check(detections, ground_truths, protocol)
    t, areas = len(IOU_THRESHOLDS), list(AREA_RANGES.items())
    precision = -np.ones((t, len(RECALL_THRESHOLDS), num_classes, len(areas)))
    recall = -np.ones((t, num_classes, len(areas)))
    per = [[[] for _ in areas] for _ in range(num_classes)]  # (scores, matched, ignored, gt_ignore) per image
    gt_base = det_base = 0  # running ids over the set, as AITODReval numbers them
    for det, gt in zip(detections, ground_truths):
        dets_c = [_by_class(det, c) for c in range(num_classes)]
        sizes = [len(s) for _, s in dets_c]
        det_start = det_base + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        det_base += sum(sizes)
        g_labels = gt["labels"].cpu()
        g_all_ids = gt_base + np.arange(len(g_labels))
        gt_base += len(g_labels)
        for c in range(num_classes):
            gm = (g_labels == c).numpy()
            dboxes, scores = dets_c[c]
            if not gm.any() and not len(scores):
                continue
            order = np.argsort(-scores, kind="mergesort")[:max_dets]
            dboxes, scores, det_ids = dboxes[order], scores[order], det_start[c] + order
            gboxes, gt_ids = gt["boxes"].cpu()[torch.from_numpy(gm)], g_all_ids[gm]
            iou = _iou(dboxes, gboxes, protocol)
            d_area, g_area = _areas(dboxes, protocol), _areas(gboxes, protocol)
            if protocol == "aitod-r":
                base_ig = np.zeros(len(gt_ids), dtype=bool)
            else:
                base_ig, gt_ids, det_ids = _difficult(gt)[torch.from_numpy(gm)].numpy(), gt_ids + 1, det_ids + 1
            for a, (_, (lo, hi)) in enumerate(areas):
                g_ig = base_ig | (g_area < lo) | (g_area > hi)
                g_order = np.argsort(g_ig, kind="mergesort")  # regular gts first
                matched, det_ig = _match(iou[:, g_order], g_ig[g_order], gt_ids[g_order], det_ids)
                det_ig |= ~matched & ((d_area < lo) | (d_area > hi))[None]
                per[c][a].append((scores, matched, det_ig, g_ig))
    for c in range(num_classes):
        for a in range(len(areas)):
            items = per[c][a]
            n_gt = sum(int((~g).sum()) for *_, g in items)
            if n_gt == 0:
                continue
            scores = np.concatenate([s for s, *_ in items])
            order = np.argsort(-scores, kind="mergesort")
            matched = np.concatenate([m for _, m, _, _ in items], 1)[:, order]
            ignored = np.concatenate([i for _, _, i, _ in items], 1)[:, order]
            for k in range(t):
                tp, fp = matched[k] & ~ignored[k], ~matched[k] & ~ignored[k]
                precision[k, :, c, a] = _precision_at_recalls(tp, fp, n_gt)
                recall[k, c, a] = tp.sum() / n_gt
    out = {}
    for a, (name, _) in enumerate(areas):
        suffix = "" if name == "all" else f"_{name}"
        out[f"AP{suffix}"] = _mean_valid(precision[..., a])
        if name == "all":
            out["AP50"], out["AP75"] = _mean_valid(precision[0, ..., a]), _mean_valid(precision[5, ..., a])
        out[f"AR{suffix}"] = _mean_valid(recall[..., a])
    return out


def _mean_valid(x: np.ndarray) -> float:
    """pycocotools' ``summarize``: the mean over entries > −1, −1 when there are none."""
    x = x[x > -1]
    return float(np.mean(x)) if x.size else -1.0


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> tuple[float, float]:
    """mmdet's ``average_precision`` (float32, as mmrotate reports it): area under the PR envelope and the
    VOC07 11-point mean of the best precision at recall ≥ 0, 0.1, …, 1."""
    mrec = np.concatenate([[0.0], recall, [1.0]]).astype(recall.dtype)
    mpre = np.concatenate([[0.0], precision, [0.0]]).astype(precision.dtype)
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    area = np.float32(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    points = np.float32(0)
    for thr in np.arange(0, 1 + 1e-3, 0.1):
        p = precision[recall >= thr]
        points += p.max() if p.size else 0
    return area, points / np.float32(11)


def voc_rotated_map(
    detections: list[dict],
    ground_truths: list[dict],
    num_classes: int,
    iou_thr: float = 0.5,
    protocol: str = "clean",
) -> dict[str, float]:
    """DOTA/mmrotate ``eval_rbbox_map``: per class and image, detections by score, each matched to its
    highest-IoU gt (true positive if ≥ ``iou_thr`` and that gt is still free, else false positive); all
    detections of a class ranked by score; ``mAP50`` = area under the PR envelope ("area" mode),
    ``mAP50_07`` = VOC07 11-point (mmrotate's default), each averaged over classes with gts.
    ``protocol="aitod-r"`` counts difficult gts and reproduces mmrotate's float32 arithmetic and
    unstable sorts; ``"clean"`` ignores difficult gts (neither counted nor penalised), float64, stable sorts.
    """
    _check(detections, ground_truths, protocol)
    ref = protocol == "aitod-r"
    ftype, kind = (np.float32, "quicksort") if ref else (np.float64, "mergesort")
    aps = []
    for c in range(num_classes):
        tps, fps, all_scores, n_gt = [], [], [], 0
        for det, gt in zip(detections, ground_truths):
            dboxes, scores = _by_class(det, c)
            gm = (gt["labels"] == c).cpu()
            difficult = np.zeros(int(gm.sum()), dtype=bool) if ref else _difficult(gt)[gm].numpy()
            n_gt += int((~difficult).sum())
            tp, fp = np.zeros(len(scores), dtype=ftype), np.zeros(len(scores), dtype=ftype)
            if len(scores):
                iou = _iou(dboxes, gt["boxes"].cpu()[gm], protocol)
                if iou.shape[1] == 0:
                    fp[:] = 1
                else:
                    best, arg = iou.max(1), iou.argmax(1)
                    covered = np.zeros(iou.shape[1], dtype=bool)
                    for k in np.argsort(-scores, kind=kind):  # sequential: a gt can be claimed once
                        if best[k] < iou_thr:
                            fp[k] = 1
                        elif not difficult[arg[k]]:
                            tp[k], fp[k] = (0, 1) if covered[arg[k]] else (1, 0)
                            covered[arg[k]] = True
            tps.append(tp)
            fps.append(fp)
            all_scores.append(scores)
        if n_gt == 0:
            continue
        order = np.argsort(-np.concatenate(all_scores), kind=kind)
        tp, fp = np.cumsum(np.concatenate(tps)[order]), np.cumsum(np.concatenate(fps)[order])
        eps = np.finfo(np.float32 if ref else np.float64).eps
        rec = tp.astype(np.float64) / max(n_gt, eps)  # float64 as mmrotate's; numpy<2 made float32 of a 0-d divisor
        prec = tp / np.maximum(tp + fp, eps)
        aps.append(_average_precision(rec, prec))
    if not aps:
        return {"mAP50": -1.0, "mAP50_07": -1.0}
    area, points = np.array(aps, dtype=np.float32 if ref else np.float64).T
    return {"mAP50": float(area.mean()), "mAP50_07": float(points.mean())}
