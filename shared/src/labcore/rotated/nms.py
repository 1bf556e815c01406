"""Greedy rotated non-maximum suppression, vectorised, and its class-aware batched form."""

from __future__ import annotations

import torch

from labcore.rotated.boxes import _half_extents, check_boxes
from labcore.rotated.iou import overlap_candidates, rotated_iou_aligned

PAIR_CHUNK = 1 << 15  # candidate pairs bounded and clipped at a time


def _suppression_edges(
    boxes1: torch.Tensor, iou_threshold: float, boxes2: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs ``(j, i)`` with IoU above the threshold: ``j < i`` within ``boxes1`` (``boxes2=None``), else
    ``j`` in ``boxes1``, ``i`` in ``boxes2``.

    Candidates are pairs whose axis-aligned hulls meet; a pair is clipped exactly only if an upper
    bound of its IoU exceeds the threshold: the intersection is at most the smaller area and at
    most the overlap of the two hulls. Bounds and clipping run ``PAIR_CHUNK`` pairs at a time.
    """
    a, b = overlap_candidates(boxes1, boxes2)
    if boxes2 is None:
        a, b, boxes2 = torch.minimum(a, b), torch.maximum(a, b), boxes1
    p64, q64 = boxes1.double(), boxes2.double()
    area_p, area_q = p64[:, 2] * p64[:, 3], q64[:, 2] * q64[:, 3]
    (cp, hp), (cq, hq) = (p64[:, :2], _half_extents(p64)), (q64[:, :2], _half_extents(q64))
    js, is_ = [], []
    for s in range(0, a.numel(), PAIR_CHUNK):
        j, i = a[s : s + PAIR_CHUNK], b[s : s + PAIR_CHUNK]
        lo = torch.maximum(cp[j] - hp[j], cq[i] - hq[i])
        hi = torch.minimum(cp[j] + hp[j], cq[i] + hq[i])
        inter = torch.minimum((hi - lo).clamp_min(0).prod(-1), torch.minimum(area_p[j], area_q[i]))
        possible = inter > iou_threshold * (area_p[j] + area_q[i] - inter)
        j, i = j[possible], i[possible]
        over = rotated_iou_aligned(boxes1[j], boxes2[i]) > iou_threshold
        js.append(j[over])
        is_.append(i[over])
    empty = torch.zeros(0, dtype=torch.long, device=boxes1.device)
    return (torch.cat(js), torch.cat(is_)) if js else (empty, empty)


def _greedy_fixed_point(src: torch.Tensor, dst: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Greedy suppression among score-sorted boxes given their overlapping pairs ``src < dst``:
    box i survives iff no surviving earlier box overlaps it; boxes already ``False`` in ``keep`` suppress
    nothing. Solved as a fixed point (each sweep, one scatter over the pairs, settles at least the next
    undecided box; most scenes settle in a few sweeps)."""
    alive = keep.clone()
    while src.numel():
        new = keep.clone()
        new[dst[alive[src]]] = False  # suppressed by some kept earlier box
        if torch.equal(new, alive):
            break
        alive = new
    return alive


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, tile: int = 256) -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, by decreasing score.

    Greedy NMS keeps box i iff no kept box of higher score overlaps it by more than the threshold.
    The score-sorted boxes are taken ``tile`` at a time: first every box of the tile that a box kept
    from earlier tiles overlaps is dropped, then the tile's own overlapping pairs are resolved as a
    fixed point (no Python loop over boxes). Memory is bounded by the pairs of one tile with the kept
    boxes (``O(N·tile)`` indices at worst, clipped ``PAIR_CHUNK`` at a time), never ``O(N²)``.
    """
    check_boxes(boxes)
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must be (N,) for (N, 5) boxes, got {tuple(scores.shape)}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    if tile < 1:
        raise ValueError(f"tile must be ≥ 1, got {tile}")
    order = torch.argsort(scores, descending=True, stable=True)
    ranked = boxes[order].detach()
    keep = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    for start in range(0, ranked.shape[0], tile):
        block = ranked[start : start + tile]
        alive = torch.ones(block.shape[0], dtype=torch.bool, device=boxes.device)
        kept = torch.nonzero(keep[:start]).squeeze(1)
        if kept.numel():
            _, hit = _suppression_edges(ranked[kept], iou_threshold, block)
            alive[hit] = False
        src, dst = _suppression_edges(block, iou_threshold)
        keep[start : start + tile] = _greedy_fixed_point(src, dst, alive)
    return order[keep]


def batched_rotated_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float, tile: int = 256
) -> torch.Tensor:
    """Class-aware NMS: boxes of different ``labels`` never suppress each other. Exactly
    :func:`rotated_nms` per class (one call per class present; no coordinate offsets, whose rounding
    changed kept sets on large images); indices by decreasing score (ties: lower index first)."""
    check_boxes(boxes)
    if labels.shape != boxes.shape[:1]:
        raise ValueError(f"labels must be (N,) for (N, 5) boxes, got {tuple(labels.shape)}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).squeeze(1)
        kept.append(idx[rotated_nms(boxes[idx], scores[idx], iou_threshold, tile)])
    kept = torch.sort(torch.cat(kept)).values
    return kept[torch.argsort(scores[kept], descending=True, stable=True)]
