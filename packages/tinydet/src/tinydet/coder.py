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
