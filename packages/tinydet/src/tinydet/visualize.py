"""Draw rotated boxes on images (PIL) for figures."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from labcore.rotated import obb_to_poly

PALETTE = [
    (255, 64, 64),
    (64, 255, 64),
    (64, 160, 255),
    (255, 200, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 128, 0),
    (160, 64, 255),
]


def draw_boxes(
    image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, scale: int = 3, gt_boxes: torch.Tensor | None = None
) -> torch.Tensor:
    """``(3, H, W)`` image in [0, 1] upscaled by ``scale`` with boxes outlined per class (gts in white)."""
    arr = (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    img = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    if gt_boxes is not None:
        for poly in (obb_to_poly(gt_boxes.detach().cpu().float()) * scale).tolist():
            draw.polygon([tuple(p) for p in poly], outline=(255, 255, 255))
    for poly, lab in zip((obb_to_poly(boxes.detach().cpu().float()) * scale).tolist(), labels.tolist()):
        draw.polygon([tuple(p) for p in poly], outline=PALETTE[lab % len(PALETTE)], width=2)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
