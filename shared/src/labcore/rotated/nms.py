"""Greedy rotated non-maximum suppression, vectorised, and its class-aware batched form."""

from __future__ import annotations

import torch

from labcore.rotated.boxes import check_boxes
from labcore.rotated.iou import rotated_iou


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, by decreasing score.

    Greedy NMS keeps box i iff no kept box of higher score overlaps it by more than the
    threshold. That triangular recursion is solved as a fixed point over the whole IoU matrix
    (each sweep fixes at least one more box), so no Python loop runs over boxes.
    """
    check_boxes(boxes)
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must be (N,) for (N, 5) boxes, got {tuple(scores.shape)}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].detach()
    over = torch.triu(rotated_iou(b, b) > iou_threshold, diagonal=1)  # over[j, i]: earlier j suppresses i
    keep = torch.ones(b.shape[0], dtype=torch.bool, device=b.device)
    candidates = over.any(0)  # only boxes with some earlier overlap can be suppressed
    rows = over[:, candidates].float()
    while True:
        suppressed = (keep.float()[None] @ rows)[0] > 0
        new = keep.clone()
        new[candidates] = ~suppressed
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
