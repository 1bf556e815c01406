"""Box conversions: ``(cx, cy, w, h, a)`` ↔ 4-corner polygons, and angle conventions (mmrotate's)."""

from __future__ import annotations

import math

import torch

ANGLE_VERSIONS = ("oc", "le90", "le135")


def _check_version(version: str) -> None:
    if version not in ANGLE_VERSIONS:
        raise ValueError(f"unknown angle version {version!r}; use one of {ANGLE_VERSIONS}")


def check_boxes(boxes: torch.Tensor, name: str = "boxes") -> torch.Tensor:
    """Raise a clear error unless ``boxes`` is a finite ``(..., 5)`` tensor with ``w, h ≥ 0``."""
    if not torch.is_tensor(boxes) or boxes.shape[-1:] != (5,):
        shape = tuple(boxes.shape) if torch.is_tensor(boxes) else type(boxes).__name__
        raise ValueError(f"{name} must be a (..., 5) tensor (cx, cy, w, h, angle), got {shape}")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} holds NaN or infinite values (e.g. NaN angles); drop or fix those boxes first")
    if (boxes[..., 2:4] < 0).any():
        raise ValueError(f"{name} has negative widths/heights; widths and heights must be ≥ 0")
    return boxes


def norm_angle(angle: torch.Tensor, version: str) -> torch.Tensor:
    """Wrap angles into the range of ``version`` modulo π (le90: [-π/2, π/2), le135: [-π/4, 3π/4))."""
    _check_version(version)
    if version == "le90":
        return torch.remainder(angle + math.pi / 2, math.pi) - math.pi / 2
    if version == "le135":
        return torch.remainder(angle + math.pi / 4, math.pi) - math.pi / 4
    return torch.remainder(angle, math.pi)


def regularize_boxes(boxes: torch.Tensor, version: str = "le90") -> torch.Tensor:
    """The same rectangles expressed in the canonical form of ``version``.

    ``le90``/``le135``: width is the longer side, angle in the version's range. ``oc``: angle in
    (0, π/2], width is the side at that angle (OpenCV ``minAreaRect``).
    """
    _check_version(version)
    x, y, w, h, a = boxes.unbind(-1)
    if version == "oc":
        # rotate by -π/2 steps until a ∈ (0, π/2]; each quarter turn swaps w and h
        k = torch.ceil(a / (math.pi / 2)) - 1  # number of quarter turns to remove
        a = a - k * (math.pi / 2)
        odd = torch.remainder(k, 2) == 1
        w, h = torch.where(odd, h, w), torch.where(odd, w, h)
        return torch.stack([x, y, w, h, a], -1)
    swap = w < h
    w, h = torch.where(swap, h, w), torch.where(swap, w, h)
    a = norm_angle(torch.where(swap, a + math.pi / 2, a), version)
    return torch.stack([x, y, w, h, a], -1)


def obb_to_poly(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` boxes → ``(..., 4, 2)`` corners, in order (+w/2,+h/2), (−,+), (−,−), (+,−) of the box frame."""
    x, y, w, h, a = boxes.unbind(-1)
    c, s = torch.cos(a), torch.sin(a)
    sx = torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=boxes.dtype, device=boxes.device)
    sy = torch.tensor([0.5, 0.5, -0.5, -0.5], dtype=boxes.dtype, device=boxes.device)
    dx, dy = w[..., None] * sx, h[..., None] * sy
    px = x[..., None] + dx * c[..., None] - dy * s[..., None]
    py = y[..., None] + dx * s[..., None] + dy * c[..., None]
    return torch.stack([px, py], -1)


def poly_to_obb(polys: torch.Tensor, version: str = "le90") -> torch.Tensor:
    """``(..., 4, 2)`` or ``(..., 8)`` quadrilaterals → ``(..., 5)`` boxes in ``version``.

    Exact for rectangles; for general quadrilaterals (annotation noise) it takes the centroid,
    the mean lengths of opposite edges and the direction of the longer edge pair.
    """
    if polys.shape[-1] == 8:
        polys = polys.reshape(*polys.shape[:-1], 4, 2)
    if polys.shape[-2:] != (4, 2):
        raise ValueError(f"polygons must be (..., 4, 2) or (..., 8), got {tuple(polys.shape)}")
    p0, p1, p2, p3 = polys.unbind(-2)
    e1, e2 = (p1 - p0 + p2 - p3) / 2, (p2 - p1 + p3 - p0) / 2
    w, h = e1.norm(dim=-1), e2.norm(dim=-1)
    a = torch.where(w >= h, torch.atan2(e1[..., 1], e1[..., 0]), torch.atan2(e2[..., 1], e2[..., 0]))
    w, h = torch.maximum(w, h), torch.minimum(w, h)
    centre = polys.mean(-2)
    return regularize_boxes(torch.stack([centre[..., 0], centre[..., 1], w, h, a], -1), version)


def _half_extents(boxes: torch.Tensor) -> torch.Tensor:
    """Half side lengths ``(..., 2)`` of each rotated box's axis-aligned hull."""
    c, s = torch.cos(boxes[..., 4]).abs(), torch.sin(boxes[..., 4]).abs()
    w, h = boxes[..., 2] / 2, boxes[..., 3] / 2
    return torch.stack([w * c + h * s, w * s + h * c], -1)


def obb_to_hbb(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` rotated boxes → axis-aligned hulls ``(x1, y1, x2, y2)`` (mmrotate ``obb2xyxy``)."""
    half = _half_extents(boxes)
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], -1)


def hbb_to_obb(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(x1, y1, x2, y2)`` → ``(..., 5)`` ``(cx, cy, w, h, 0)``."""
    centre, size = (boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]
    return torch.cat([centre, size, torch.zeros_like(size[..., :1])], -1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return boxes[..., 2] * boxes[..., 3]
