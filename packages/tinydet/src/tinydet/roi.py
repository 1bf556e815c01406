"""Rotated RoI feature extraction shared by Point Teacher's MIL head and the two-stage detector."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotated_roi_align(
    feature: torch.Tensor,
    boxes: list[torch.Tensor],
    out_size: int,
    stride: int,
    samples: int = 2,
) -> torch.Tensor:
    """Rotated RoIAlign (mmcv ``RoIAlignRotated``, ``aligned=True``, ``clockwise=True``, ``sample_num=2``):
    ``(K, C, out, out)`` features, each bin the mean of ``samples²`` bilinear samples, for per-image box
    lists. Outside the map as mmcv's (and torchvision's) kernel: a sample up to one pixel out reads the
    border pixel, one further out reads 0."""
    n = out_size * samples
    t = (torch.arange(n, device=feature.device, dtype=feature.dtype) + 0.5) / n - 0.5  # bin-sample offsets
    h, w = feature.shape[-2:]
    out = []
    for img, bx in enumerate(boxes):
        if bx.shape[0] == 0:
            continue
        bx = bx.to(feature.dtype)
        u, v = t[None, None, :] * bx[:, 2, None, None], t[None, :, None] * bx[:, 3, None, None]  # (K, n, n)
        c, s = torch.cos(bx[:, 4])[:, None, None], torch.sin(bx[:, 4])[:, None, None]
        x = (bx[:, 0, None, None] + c * u - s * v) / stride - 0.5  # feature-pixel coordinates (aligned)
        y = (bx[:, 1, None, None] + s * u + c * v) / stride - 0.5
        grid = torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], -1)  # align_corners=False
        sampled = F.grid_sample(
            feature[img : img + 1], grid.reshape(1, -1, n, 2), padding_mode="border", align_corners=False
        )
        sampled = sampled.reshape(feature.shape[1], -1, n, n).transpose(0, 1)
        sampled = sampled * ((x >= -1) & (x <= w) & (y >= -1) & (y <= h))[:, None].to(sampled)
        out.append(F.avg_pool2d(sampled, samples))
    if not out:
        return feature.new_zeros(0, feature.shape[1], out_size, out_size)
    return torch.cat(out)


def map_roi_levels(boxes: torch.Tensor, num_levels: int, finest_scale: float = 56.0) -> torch.Tensor:
    """mmdet ``SingleRoIExtractor.map_roi_levels``: level ``⌊log2(√(wh) / finest_scale)⌋`` clamped to
    ``[0, num_levels)`` (boxes under 112 px go to the finest level, so all tiny objects do)."""
    scale = (boxes[:, 2] * boxes[:, 3]).clamp_min(0).sqrt()
    return torch.floor(torch.log2(scale / finest_scale + 1e-6)).clamp(0, num_levels - 1).long()


def multilevel_roi_align(
    features: list[torch.Tensor], strides: list[int], boxes: list[torch.Tensor], out_size: int = 7
) -> torch.Tensor:
    """mmrotate ``RotatedSingleRoIExtractor``: each RoI is pooled (mmcv's border rule) from the level
    :func:`map_roi_levels` picks; ``(K, C, out, out)`` in the order of the concatenated per-image ``boxes``."""
    flat = torch.cat(boxes) if boxes else features[0].new_zeros(0, 5)
    image = torch.cat([torch.full((b.shape[0],), i, device=flat.device) for i, b in enumerate(boxes)])
    levels = map_roi_levels(flat, len(features))
    out = features[0].new_zeros(flat.shape[0], features[0].shape[1], out_size, out_size)
    for lvl, (feat, stride) in enumerate(zip(features, strides)):
        idx = (levels == lvl).nonzero().squeeze(1)  # ascending: already grouped by image, as ``flat`` is
        if idx.numel():
            per_image = flat[idx].split(torch.bincount(image[idx], minlength=len(boxes)).tolist())
            out[idx] = rotated_roi_align(feat, list(per_image), out_size, stride)
    return out
