"""Rotated IoU by exact convex-polygon clipping, vectorised over box pairs, and the IoU loss.

The intersection of two rectangles is the convex polygon whose vertices are the corners of each
box lying inside the other plus the crossings of their edges (at most 4 + 4 + 16 candidates).
The candidates are ordered by angle around their mean and the area follows from the shoelace
formula. Work is done in float64; gradients flow through the vertex coordinates.
"""

from __future__ import annotations

import torch

from labcore.kernels import kernel
from labcore.rotated.boxes import check_boxes, obb_to_poly

_TOL = 1e-9
_PAIR_CHUNK = 65536


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _corners_inside(corners: torch.Tensor, boxes: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """``(N, 4)`` mask: corner k of one box lies in (or on) the paired box of ``boxes``."""
    d = corners - boxes[:, None, :2]
    c, s = torch.cos(boxes[:, 4:5]), torch.sin(boxes[:, 4:5])
    u = d[..., 0] * c + d[..., 1] * s
    v = -d[..., 0] * s + d[..., 1] * c
    return (u.abs() <= boxes[:, 2:3] / 2 + tol) & (v.abs() <= boxes[:, 3:4] / 2 + tol)


def _edge_crossings(p1: torch.Tensor, p2: torch.Tensor, tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crossings of every edge of ``p1`` with every edge of ``p2``: points ``(N, 16, 2)`` and mask."""
    r1 = (p1.roll(-1, dims=1) - p1)[:, :, None]  # (N, 4, 1, 2)
    r2 = (p2.roll(-1, dims=1) - p2)[:, None]  # (N, 1, 4, 2)
    qp = p2[:, None] - p1[:, :, None]  # (N, 4, 4, 2)
    denom = _cross(r1, r2)
    scale = r1.norm(dim=-1) * r2.norm(dim=-1)
    ok = denom.abs() > 1e-12 * scale.clamp_min(1e-30)
    safe = torch.where(ok, denom, torch.ones_like(denom))
    t = _cross(qp, r2) / safe
    u = _cross(qp, r1) / safe
    rel = tol[:, :, None] / r1.norm(dim=-1).clamp_min(1e-30)
    rel2 = tol[:, :, None] / r2.norm(dim=-1).clamp_min(1e-30)
    ok = ok & (t >= -rel) & (t <= 1 + rel) & (u >= -rel2) & (u <= 1 + rel2)
    pts = p1[:, :, None] + t[..., None] * r1
    return pts.reshape(-1, 16, 2), ok.reshape(-1, 16)


def _intersection_area(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    p1, p2 = obb_to_poly(b1), obb_to_poly(b2)
    scale = torch.maximum(b1[:, 2:4].amax(-1), b2[:, 2:4].amax(-1)).clamp_min(1.0)[:, None]
    tol = _TOL * scale
    cross_pts, cross_ok = _edge_crossings(p1, p2, tol)
    pts = torch.cat([p1, p2, cross_pts], 1)  # (N, 24, 2)
    ok = torch.cat([_corners_inside(p1, b2, tol), _corners_inside(p2, b1, tol), cross_ok], 1)
    count = ok.sum(1)
    with torch.no_grad():
        centre = (pts * ok[..., None]).sum(1) / count.clamp_min(1)[:, None]
        d = pts - centre[:, None]
        angle = torch.where(ok, torch.atan2(d[..., 1], d[..., 0]), torch.full_like(d[..., 0], 10.0))
        order = angle.argsort(dim=1, stable=True)
    pts = pts.gather(1, order[..., None].expand(-1, -1, 2))
    ok = ok.gather(1, order)
    pts = torch.where(ok[..., None], pts, pts[:, :1])  # unused slots repeat the first vertex: zero area
    area = 0.5 * _cross(pts, pts.roll(-1, dims=1)).sum(1).abs()
    return torch.where(count >= 3, area, torch.zeros_like(area))


def _check_pair(boxes1: torch.Tensor, boxes2: torch.Tensor) -> None:
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    if boxes1.shape != boxes2.shape or boxes1.ndim != 2:
        raise ValueError(f"aligned IoU needs two (N, 5) tensors, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")


@kernel
def rotated_iou_aligned(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` for ``(N, 5)`` inputs; 0 where both areas are 0. Differentiable.

    On CUDA without autograd a fused Triton kernel runs instead (:mod:`labcore.rotated.triton_iou`).
    """
    _check_pair(boxes1, boxes2)
    dtype = boxes1.dtype
    b1, b2 = boxes1.double(), boxes2.double()
    outs = []
    for s in range(0, b1.shape[0], _PAIR_CHUNK):
        x1, x2 = b1[s : s + _PAIR_CHUNK], b2[s : s + _PAIR_CHUNK]
        inter = _intersection_area(x1, x2)
        union = x1[:, 2] * x1[:, 3] + x2[:, 2] * x2[:, 3] - inter
        ok = union > 0
        outs.append(torch.where(ok, inter / torch.where(ok, union, torch.ones_like(union)), torch.zeros_like(union)))
    if not outs:
        return boxes1.new_zeros(0)
    return torch.cat(outs).clamp(0, 1).to(dtype)


def _half_extents(boxes: torch.Tensor) -> torch.Tensor:
    """Half side lengths ``(N, 2)`` of each rotated box's axis-aligned bounding box."""
    c, s = torch.cos(boxes[:, 4]).abs(), torch.sin(boxes[:, 4]).abs()
    w, h = boxes[:, 2] / 2, boxes[:, 3] / 2
    return torch.stack([w * c + h * s, w * s + h * c], 1)


def _expand_runs(start: torch.Tensor, stop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(k, p)`` with ``start[k] ≤ p < stop[k]``, without a Python loop."""
    counts = (stop - start).clamp_min(0)
    owner = torch.repeat_interleave(torch.arange(start.shape[0], device=start.device), counts)
    offset = torch.arange(owner.shape[0], device=start.device) - (torch.cumsum(counts, 0) - counts)[owner]
    return owner, start[owner] + offset


def _x_sweep(left1, right1, left2, right2, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs ``(i, j)`` whose x intervals meet (sort-and-sweep, each pair once)."""
    left2_sorted, order2 = torch.sort(left2)
    if same:  # partners of the p-th box by left edge: the later ones starting before its right edge
        pos = torch.arange(left2.shape[0], device=left2.device)
        stop = torch.searchsorted(left2_sorted, right2[order2], right=True)
        p, q = _expand_runs(pos + 1, stop)
        return order2[p], order2[q]
    # j starting inside i's interval, or i starting strictly inside j's
    i, q = _expand_runs(torch.searchsorted(left2_sorted, left1), torch.searchsorted(left2_sorted, right1, right=True))
    left1_sorted, order1 = torch.sort(left1)
    j, p = _expand_runs(torch.searchsorted(left1_sorted, left2, right=True),
                        torch.searchsorted(left1_sorted, right2, right=True))
    return torch.cat([i, order1[p]]), torch.cat([order2[q], j])


def overlap_candidates(boxes1: torch.Tensor, boxes2: torch.Tensor | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(i, j)`` whose axis-aligned bounding boxes meet: every pair with IoU > 0 is among them.

    Sort-and-sweep along x, then a test along y; the work is ``O(N log N)`` plus the number of
    x-overlapping pairs. ``boxes2=None`` pairs ``boxes1`` with itself, each unordered pair once.
    """
    same = boxes2 is None
    boxes2 = boxes1 if same else boxes2
    empty = torch.zeros(0, dtype=torch.long, device=boxes1.device)
    if boxes1.shape[0] == 0 or boxes2.shape[0] == 0:
        return empty, empty
    c1, c2 = boxes1[:, :2].double(), boxes2[:, :2].double()
    e1, e2 = _half_extents(boxes1.double()) + 1e-6, _half_extents(boxes2.double())
    i, j = _x_sweep(c1[:, 0] - e1[:, 0], c1[:, 0] + e1[:, 0], c2[:, 0] - e2[:, 0], c2[:, 0] + e2[:, 0], same)
    meet = (c1[i, 1] - c2[j, 1]).abs() <= e1[i, 1] + e2[j, 1]
    return i[meet], j[meet]


def rotated_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(N, M)`` of ``(N, 5)`` and ``(M, 5)`` boxes.

    Only pairs whose axis-aligned bounding boxes meet are clipped; the rest are exactly 0.
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    n, m = boxes1.shape[0], boxes2.shape[0]
    out = boxes1.new_zeros(n, m)
    if n == 0 or m == 0:
        return out
    i, j = overlap_candidates(boxes1, boxes2)
    if i.numel():
        out[i, j] = rotated_iou_aligned(boxes1[i], boxes2[j]).to(out.dtype)
    return out


def rotated_iou_loss(pred: torch.Tensor, target: torch.Tensor, mode: str = "log", eps: float = 1e-6) -> torch.Tensor:
    """Per-pair rotated IoU loss: ``-log IoU`` (``log``, mmrotate's default), ``1 - IoU`` or ``1 - IoU²``."""
    iou = rotated_iou_aligned(pred, target).clamp_min(eps)
    if mode == "log":
        return -iou.log()
    if mode == "linear":
        return 1 - iou
    if mode == "square":
        return 1 - iou**2
    raise ValueError(f"unknown IoU loss mode {mode!r}; use 'log', 'linear' or 'square'")
