"""Greedy rotated non-maximum suppression, vectorised, and its class-aware batched form."""

from __future__ import annotations

import torch

from labcore.rotated.boxes import _half_extents, check_boxes
from labcore.rotated.iou import overlap_candidates, rotated_iou_aligned


def _suppression_edges(boxes: torch.Tensor, iou_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs ``(j, i)``, ``j < i``, of score-sorted boxes with IoU above the threshold.

    Candidates are pairs whose axis-aligned hulls meet; a pair is clipped exactly only if an upper
    bound of its IoU exceeds the threshold: the intersection is at most the smaller area and at
    most the overlap of the two hulls.
    """
    a, b = overlap_candidates(boxes)
    j, i = torch.minimum(a, b), torch.maximum(a, b)
    b64 = boxes.double()
    area = b64[:, 2] * b64[:, 3]
    centre, half = b64[:, :2], _half_extents(b64)
    lo = torch.maximum(centre[j] - half[j], centre[i] - half[i])
    hi = torch.minimum(centre[j] + half[j], centre[i] + half[i])
    inter = torch.minimum((hi - lo).clamp_min(0).prod(-1), torch.minimum(area[j], area[i]))
    possible = inter > iou_threshold * (area[j] + area[i] - inter)
    j, i = j[possible], i[possible]
    over = rotated_iou_aligned(boxes[j], boxes[i]) > iou_threshold
    return j[over], i[over]


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, by decreasing score.

    Greedy NMS keeps box i iff no kept box of higher score overlaps it by more than the threshold.
    With the sparse list of such overlapping pairs, that triangular recursion is solved as a fixed
    point: each sweep (one scatter over the pairs) settles at least the next undecided box, and
    most scenes settle in a few sweeps, so no Python loop runs over boxes.
    """
    check_boxes(boxes)
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must be (N,) for (N, 5) boxes, got {tuple(scores.shape)}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    src, dst = _suppression_edges(boxes[order].detach(), iou_threshold)
    keep = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    while src.numel():
        new = torch.ones_like(keep)
        new[dst[keep[src]]] = False  # suppressed by some kept earlier box
        if torch.equal(new, keep):
            break
        keep = new
    return order[keep]


def batched_rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                        iou_threshold: float) -> torch.Tensor:
    """Class-aware NMS: boxes of different ``labels`` never suppress each other."""
    check_boxes(boxes)
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # shift each class to its own region of the plane, far from every other class
    extent = (boxes[:, :2].abs().max() + boxes[:, 2:4].max() + 1).detach()
    shifted = boxes.detach().clone()
    shifted[:, 0] = shifted[:, 0] + labels.to(boxes.dtype) * 3 * extent
    return rotated_nms(shifted, scores, iou_threshold)
