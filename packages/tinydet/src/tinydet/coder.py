"""Anchors and the rotated delta box coder (mmrotate ``DeltaXYWHAOBBoxCoder``, ``proj_xy=True``)."""

from __future__ import annotations

import math

import torch

from labcore.rotated import norm_angle


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


class DeltaXYWHACoder:
    """Deltas ``(dx, dy, dw, dh, da)``: centre offset in the anchor's frame over its size, log size
    ratio, and angle difference wrapped to the angle version and divided by π (``norm_factor=1``)."""

    def __init__(self, version: str = "le135", means=(0.0,) * 5, stds=(1.0,) * 5, wh_ratio_clip: float = 16 / 1000):
        self.version = version
        self.means, self.stds = torch.tensor(means), torch.tensor(stds)
        self.max_ratio = abs(math.log(wh_ratio_clip))

    def encode(self, anchors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        px, py, pw, ph, pa = anchors.unbind(-1)
        gx, gy, gw, gh, ga = gt.unbind(-1)
        c, s = torch.cos(pa), torch.sin(pa)
        dx = (c * (gx - px) + s * (gy - py)) / pw
        dy = (-s * (gx - px) + c * (gy - py)) / ph
        da = norm_angle(ga - pa, self.version) / math.pi
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
        ga = norm_angle(pa + da * math.pi, self.version)
        return torch.stack([gx, gy, pw * dw.exp(), ph * dh.exp(), ga], -1)
