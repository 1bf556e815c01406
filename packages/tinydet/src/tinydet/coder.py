"""Anchors and box coders: the rotated delta coder (mmrotate ``DeltaXYWHAOBBoxCoder``, ``proj_xy=True``) and
Oriented R-CNN's midpoint-offset coder (``MidpointOffsetCoder``)."""

from __future__ import annotations

import math

import torch

from labcore.rotated import hbb_to_obb, norm_angle, obb_to_poly, poly_to_obb


def grid_anchors(
    featmap_sizes: list[tuple[int, int]],
    strides: list[int],
    octave_base_scale: float,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """One square, axis-aligned anchor of side ``octave_base_scale·stride`` per location and level.

    Centres sit at ``(x·stride, y·stride)`` (mmdet's ``center_offset=0``), row-major per level.
    """
    out = []
    for (h, w), s in zip(featmap_sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        size = torch.full((h * w,), octave_base_scale * s, dtype=torch.float32, device=device)
        out.append(
            torch.stack([xs.reshape(-1).float() * s, ys.reshape(-1).float() * s, size, size, torch.zeros_like(size)], 1)
        )
    return out


def horizontal_anchors(
    featmap_sizes: list[tuple[int, int]],
    strides: list[int],
    scale: float = 8.0,
    ratios: tuple[float, ...] = (1.0,),
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """mmdet ``AnchorGenerator`` (``scales=[scale]``, ``center_offset=0``): per level ``(H·W·A, 4)``
    ``(x1, y1, x2, y2)`` anchors, location-major with the ``A = len(ratios)`` anchors of a location
    adjacent; ratio ``r = h/w`` gives sides ``stride·scale·(1/√r, √r)``."""
    r = torch.tensor(ratios, dtype=torch.float32, device=device).sqrt()
    out = []
    for (h, w), s in zip(featmap_sizes, strides):
        half = torch.stack([s * scale / r, s * scale * r], 1) / 2  # (A, 2) half sides (w, h)
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        centres = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float()[:, None] * s  # (HW, 1, 2)
        out.append(torch.cat([centres - half, centres + half], -1).reshape(-1, 4))
    return out


class DeltaXYWHACoder:
    """Deltas ``(dx, dy, dw, dh, da)``: centre offset in the anchor's frame over its size, log size
    ratio, and angle difference wrapped to the angle version, divided by ``norm_factor·π``
    (``norm_factor=1``: RetinaNet/DCFL heads; ``None``: radians, Oriented R-CNN's RoI head).

    ``edge_swap=True`` (Oriented R-CNN's RoI head) encodes each target as whichever of its two
    equivalent forms, ``(w, h, a)`` or ``(h, w, a + π/2)``, turns least from the proposal, and decodes
    to the long-side-first form.
    """

    def __init__(
        self,
        version: str = "le135",
        means=(0.0,) * 5,
        stds=(1.0,) * 5,
        wh_ratio_clip: float = 16 / 1000,
        norm_factor: float | None = 1.0,
        edge_swap: bool = False,
    ):
        self.version, self.norm_factor, self.edge_swap = version, norm_factor, edge_swap
        self.means, self.stds = torch.tensor(means), torch.tensor(stds)
        self.max_ratio = abs(math.log(wh_ratio_clip))

    def encode(self, anchors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        px, py, pw, ph, pa = anchors.unbind(-1)
        gx, gy, gw, gh, ga = gt.unbind(-1)
        c, s = torch.cos(pa), torch.sin(pa)
        dx = (c * (gx - px) + s * (gy - py)) / pw
        dy = (-s * (gx - px) + c * (gy - py)) / ph
        da = norm_angle(ga - pa, self.version)
        if self.edge_swap:  # the swapped form (h, w, a + π/2) when it needs the smaller turn
            da2 = norm_angle(ga - pa + math.pi / 2, self.version)
            swap = da2.abs() <= da.abs()  # ties take the swapped form, as mmrotate
            gw, gh, da = torch.where(swap, gh, gw), torch.where(swap, gw, gh), torch.where(swap, da2, da)
        if self.norm_factor is not None:
            da = da / (self.norm_factor * math.pi)
        deltas = torch.stack([dx, dy, torch.log(gw / pw), torch.log(gh / ph), da], -1)
        return (deltas - self.means.to(deltas)) / self.stds.to(deltas)

    def decode(self, anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        deltas = deltas * self.stds.to(deltas) + self.means.to(deltas)
        dx, dy, dw, dh, da = deltas.unbind(-1)
        px, py, pw, ph, pa = anchors.unbind(-1)
        dw, dh = dw.clamp(-self.max_ratio, self.max_ratio), dh.clamp(-self.max_ratio, self.max_ratio)
        c, s = torch.cos(pa), torch.sin(pa)
        gx = px + pw * dx * c - ph * dy * s
        gy = py + pw * dx * s + ph * dy * c
        gw, gh = pw * dw.exp(), ph * dh.exp()
        ga = pa + da * (1.0 if self.norm_factor is None else self.norm_factor * math.pi)
        if self.edge_swap:  # long side first
            long = gw >= gh
            gw, gh, ga = torch.where(long, gw, gh), torch.where(long, gh, gw), torch.where(long, ga, ga + math.pi / 2)
        return torch.stack([gx, gy, gw, gh, norm_angle(ga, self.version)], -1)


class MidpointOffsetCoder:
    """Oriented R-CNN's midpoint-offset coder (mmrotate ``MidpointOffsetCoder``): horizontal anchors
    ``(x1, y1, x2, y2)`` ↔ rotated boxes through 6 deltas ``(dx, dy, dw, dh, da, db)``.

    A rotated box is its axis-aligned hull ``(gx, gy, gw, gh)`` plus two midpoint offsets: ``da`` puts
    the corner on the hull's top edge at ``x = gx + da·gw`` and ``db`` the corner on its right edge at
    ``y = gy + db·gh`` (the other two corners are their reflections through the centre). Corners
    within ``tol`` px of an edge count as on it; of several, the one furthest right/down is taken.
    """

    def __init__(
        self,
        version: str = "le135",
        means=(0.0,) * 6,
        stds=(1.0, 1.0, 1.0, 1.0, 0.5, 0.5),
        wh_ratio_clip: float = 16 / 1000,
        tol: float = 0.1,
    ):
        self.version, self.tol = version, tol
        self.means, self.stds = torch.tensor(means), torch.tensor(stds)
        self.max_ratio = abs(math.log(wh_ratio_clip))

    def encode(self, anchors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if anchors.shape[-1] != 4 or gt.shape[-1] != 5 or anchors.shape[:-1] != gt.shape[:-1]:
            raise ValueError(
                f"encode takes (N, 4) xyxy anchors and (N, 5) boxes, got {tuple(anchors.shape)}, {tuple(gt.shape)}"
            )
        px, py, pw, ph = hbb_to_obb(anchors).unbind(-1)[:4]
        corners = obb_to_poly(gt)
        cx, cy = corners[..., 0], corners[..., 1]
        x1, y1 = cx.amin(-1), cy.amin(-1)
        x2, y2 = cx.amax(-1), cy.amax(-1)
        gx, gy, gw, gh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        far = torch.full_like(cx, -math.inf)
        ga = torch.where((cy - y1[..., None]).abs() <= self.tol, cx, far).amax(-1)  # corner on the top edge
        gb = torch.where((cx - x2[..., None]).abs() <= self.tol, cy, far).amax(-1)  # corner on the right edge
        deltas = torch.stack(
            [(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph), (ga - gx) / gw, (gb - gy) / gh], -1
        )
        return (deltas - self.means.to(deltas)) / self.stds.to(deltas)

    def decode(self, anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        if anchors.shape[-1] != 4 or deltas.shape[-1] != 6:
            raise ValueError(
                f"decode takes (N, 4) xyxy anchors and (N, 6) deltas, got {tuple(anchors.shape)}, {tuple(deltas.shape)}"
            )
        deltas = deltas * self.stds.to(deltas) + self.means.to(deltas)
        dx, dy, dw, dh, da, db = deltas.unbind(-1)
        px, py, pw, ph = hbb_to_obb(anchors).unbind(-1)[:4]
        gw = pw * dw.clamp(-self.max_ratio, self.max_ratio).exp()
        gh = ph * dh.clamp(-self.max_ratio, self.max_ratio).exp()
        gx, gy = px + pw * dx, py + ph * dy
        da, db = da.clamp(-0.5, 0.5) * gw, db.clamp(-0.5, 0.5) * gh
        # corner offsets from the centre: top, right, bottom, left (a parallelogram)
        off = torch.stack(
            [torch.stack(v, -1) for v in ((da, -gh / 2), (gw / 2, db), (-da, gh / 2), (-gw / 2, -db))], -2
        )
        # stretch each corner radially to the longest half-diagonal: the parallelogram becomes a rectangle
        length = off.norm(dim=-1, keepdim=True)
        off = off * length.amax(-2, keepdim=True) / length
        return poly_to_obb(off + torch.stack([gx, gy], -1)[..., None, :], self.version)
