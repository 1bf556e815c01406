"""Exact rotated IoU, vectorised over box pairs, and the IoU loss.

The intersection area is computed in the frame of the second box, where that box is the
axis-aligned rectangle ``|x| ≤ w/2, |y| ≤ h/2`` and the first is a quadrilateral ``P``. By Green's
theorem, area(P ∩ rectangle) is the sum over the 4 edges of ``P`` of the signed integral of
``clamp(y, -h/2, h/2) + h/2 dx`` along the edge's part with ``|x| ≤ w/2`` (exact for any simple
polygon). Along an edge that integrand is linear between the ends of that part and the crossings
of ``y = ±h/2``, so the midpoint rule on those ≤ 3 pieces is exact. No vertex list is built or
sorted and no two lines are intersected, so identical, nested, touching and perpendicular boxes
need no tolerance or special case. Work is done in float64 and is differentiable (the inner
piece boundaries sit where the integrand is continuous, so moving them contributes nothing).
The Triton kernel of :mod:`labcore.rotated.triton_iou` evaluates the same formula on CUDA.
"""

from __future__ import annotations

import torch

from labcore.kernels import kernel
from labcore.rotated.boxes import _half_extents, check_boxes, obb_to_poly

_PAIR_CHUNK = 65536
_PARALLEL = 1e-12  # edges within this slope of an axis of the other box count as parallel to it


def _corners_in_frame_of(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """Corners ``(N, 4, 2)`` of ``b1`` in the frame of ``b2`` (its centre at 0, its width along x)."""
    c2, s2 = torch.cos(b2[:, 4]), torch.sin(b2[:, 4])
    d = b1[:, :2] - b2[:, :2]
    centre = torch.stack([d[:, 0] * c2 + d[:, 1] * s2, d[:, 1] * c2 - d[:, 0] * s2], -1)
    return obb_to_poly(torch.cat([centre, b1[:, 2:4], b1[:, 4:] - b2[:, 4:]], 1))


def _clamped_edge_integrals(p: torch.Tensor, q: torch.Tensor, hw: torch.Tensor, hh: torch.Tensor) -> torch.Tensor:
    """Signed ``∫ clamp(y, -hh, hh) + hh dx`` along edges ``p → q``, over their part with ``|x| ≤ hw``.

    With the edge as ``p + t·(q − p)``, ``t ∈ [0, 1]``, this is ``dx · ∫ h(t) dt`` over the t window
    where ``|x(t)| ≤ hw``; ``h`` is linear between the window's ends and the crossings of
    ``y = ±hh``, so the midpoint rule on those ≤ 3 pieces is exact. The factor ``dx`` outside keeps
    the derivative right for edges parallel to y (``dx = 0``).
    """
    x0, y0, dx, dy = p[..., 0], p[..., 1], q[..., 0] - p[..., 0], q[..., 1] - p[..., 1]
    one = torch.ones_like(dx)
    # t window inside |x| ≤ hw (all or nothing for edges parallel to y, up to |dx| ≤ 1e-12·|dy|)
    vertical = dx.abs() <= _PARALLEL * dy.abs()
    dx_safe = torch.where(vertical, one, dx)
    ta, tb = (-hw - x0) / dx_safe, (hw - x0) / dx_safe
    inside = ((x0 + dx / 2).abs() <= hw).to(dx.dtype)
    lo = torch.where(vertical, 1 - inside, torch.minimum(ta, tb).clamp(0, 1))
    hi = torch.where(vertical, one, torch.maximum(ta, tb).clamp(0, 1))
    hi = torch.maximum(hi, lo)
    # crossings of y = ±hh inside the window (none for edges parallel to x: error ≤ |dx·dy|)
    flat = dy.abs() <= _PARALLEL * dx.abs()
    dy_safe = torch.where(flat, one, dy)
    s1, s2 = (-hh - y0) / dy_safe, (hh - y0) / dy_safe
    first = torch.where(flat, lo, torch.minimum(torch.maximum(torch.minimum(s1, s2), lo), hi))
    second = torch.where(flat, lo, torch.minimum(torch.maximum(torch.maximum(s1, s2), lo), hi))

    def height(t):
        return torch.minimum(torch.maximum(y0 + t * dy, -hh), hh) + hh

    pieces = (first - lo) * height((lo + first) / 2) + (second - first) * height((first + second) / 2)
    return dx * (pieces + (hi - second) * height((second + hi) / 2))


def _separated(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """Pairs that one of the 4 box axes separates (touching counts): their intersection is exactly 0.

    The edge sum of :func:`_clamped_edge_integrals` cancels only to rounding (~1e-17) for disjoint
    boxes; this separating-axis test makes their IoU an exact 0, so NMS at threshold 0 keeps them.
    """
    c2, s2 = torch.cos(b2[:, 4]), torch.sin(b2[:, 4])
    dx, dy = b1[:, 0] - b2[:, 0], b1[:, 1] - b2[:, 1]
    cx, cy = dx * c2 + dy * s2, dy * c2 - dx * s2  # centre of b1 in the frame of b2
    cos, sin = torch.cos(b1[:, 4] - b2[:, 4]), torch.sin(b1[:, 4] - b2[:, 4])
    ac, as_ = cos.abs(), sin.abs()
    hw1, hh1, hw2, hh2 = b1[:, 2] / 2, b1[:, 3] / 2, b2[:, 2] / 2, b2[:, 3] / 2
    return ((cx.abs() >= hw2 + hw1 * ac + hh1 * as_)  # axes of b2
            | (cy.abs() >= hh2 + hw1 * as_ + hh1 * ac)
            | ((cx * cos + cy * sin).abs() >= hw1 + hw2 * ac + hh2 * as_)  # axes of b1
            | ((cy * cos - cx * sin).abs() >= hh1 + hw2 * as_ + hh2 * ac))


def _intersection_area(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    p = _corners_in_frame_of(b1, b2)
    edges = _clamped_edge_integrals(p, p.roll(-1, dims=1), b2[:, 2:3] / 2, b2[:, 3:4] / 2)
    area = edges.sum(1).abs()
    return torch.where(_separated(b1, b2), torch.zeros_like(area), area)


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
