"""Large images in patches, as DOTA is trained and tested (mmrotate ``tools/data/dota/split/img_split.py``):
sliding windows, annotations assigned to windows by intersection over the box's area, and detections of
the patches merged back with class-aware rotated NMS."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from labcore.checkpoint import atomic_write, atomic_write_text
from labcore.logging import progress
from labcore.rotated import box_area, hbb_to_obb, rotated_iou
from tinydet.detector import select_detections


def sliding_windows(h: int, w: int, size: int = 1024, gap: int = 200) -> torch.Tensor:
    """``(K, 4)`` windows ``(x0, y0, x1, y1)`` of side ``size`` overlapping by ``gap``, the last one on each axis
    moved back to end at the image border (``get_sliding_window``); an image smaller than ``size`` gets one
    window from the origin, which :func:`crop_windows` pads."""
    if not 0 <= gap < size:
        raise ValueError(f"need 0 ≤ gap < size, got size {size} and gap {gap}")
    step = size - gap

    def starts(length: int) -> list[int]:
        n = 1 if length <= size else math.ceil((length - size) / step + 1)
        s = [step * i for i in range(n)]
        if n > 1 and s[-1] + size > length:
            s[-1] = length - size
        return s

    start = torch.tensor([(x, y) for x in starts(w) for y in starts(h)], dtype=torch.long)
    return torch.cat([start, start + size], 1)


def window_targets(
    boxes: torch.Tensor, labels: torch.Tensor, windows: torch.Tensor, iof_thr: float = 0.7
) -> list[dict]:
    """Each window's annotations (``get_window_obj``): the boxes whose area lies at least ``iof_thr`` inside the
    window, in the window's coordinates (not clipped), with ``labels``, ``truncated`` (partly outside) and
    ``index`` (their rows in ``boxes``)."""
    win = hbb_to_obb(windows.to(boxes))
    iou = rotated_iou(boxes, win)
    inter = iou * (box_area(boxes)[:, None] + box_area(win)[None]) / (1 + iou)  # from IoU = I / (A + B − I)
    iof = inter / box_area(boxes)[:, None].clamp_min(1e-12)
    out = []
    for k in range(windows.shape[0]):
        keep = iof[:, k] >= iof_thr
        shifted = boxes[keep].clone()
        shifted[:, :2] -= windows[k, :2].to(boxes)
        truncated = iof[keep, k] < 1 - 1e-6
        out.append({"boxes": shifted, "labels": labels[keep], "truncated": truncated, "index": keep.nonzero()[:, 0]})
    return out


def split_folder(src, dst, classes, size: int = 1024, gap: int = 200, iof_thr: float = 0.7, fill: float = 0.0) -> int:
    """Split a DOTA-layout folder (``images/``, ``labelTxt/``) into window patches under ``dst`` as mmrotate's
    ``img_split`` does: ``<name>__<size>__<x>___<y>.png`` and its ``.txt`` (each box's corners in the patch,
    class, and difficulty — ``2`` for boxes the window cuts, as there). Returns the number of patches."""
    from PIL import Image

    from labcore.rotated import obb_to_poly
    from tinydet.data import DOTAStyleDataset

    ds = DOTAStyleDataset(src, classes)
    dst = Path(dst)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "labelTxt").mkdir(parents=True, exist_ok=True)
    count = 0
    for i in progress(range(len(ds)), desc="split"):
        item = ds[i]
        windows = sliding_windows(*item["image"].shape[-2:], size, gap)
        patches = crop_windows(item["image"], windows, fill)
        for window, patch, ann in zip(
            windows.tolist(), patches, window_targets(item["boxes"], item["labels"], windows, iof_thr)
        ):
            stem = f"{item['name']}__{size}__{window[0]}___{window[1]}"
            pixels = (patch.permute(1, 2, 0) * 255).round().clamp(0, 255).byte().numpy()
            atomic_write(dst / "images" / f"{stem}.png", lambda f, px=pixels: Image.fromarray(px).save(f, "PNG"))
            difficult = torch.where(ann["truncated"], 2, item["difficult"][ann["index"]].long())
            lines = [
                " ".join(f"{v:.3f}" for v in poly) + f" {ds.classes[lab]} {diff}"
                for poly, lab, diff in zip(
                    obb_to_poly(ann["boxes"]).reshape(-1, 8).tolist(), ann["labels"].tolist(), difficult.tolist()
                )
            ]
            atomic_write_text(dst / "labelTxt" / f"{stem}.txt", "".join(line + "\n" for line in lines))
            count += 1
    return count


def crop_windows(image: torch.Tensor, windows: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """``(K, C, size, size)`` patches of a ``(C, H, W)`` image, padded with ``fill`` beyond its right and bottom
    borders (``crop_and_save_img`` without ``no_padding``)."""
    _, h, w = image.shape
    size = int(windows[0, 2] - windows[0, 0])
    pad = (0, max(0, int(windows[:, 2].max()) - w), 0, max(0, int(windows[:, 3].max()) - h))
    padded = F.pad(image, pad, value=fill)
    return torch.stack([padded[:, y0 : y0 + size, x0 : x0 + size] for x0, y0, _, _ in windows.tolist()])


@torch.no_grad()
def predict_large(
    detector,
    image: torch.Tensor,
    size: int = 1024,
    gap: int = 200,
    batch_size: int = 4,
    nms_iou_thr: float = 0.1,
    max_per_img: int = 2000,
    score_thr: float | None = None,
) -> dict:
    """Detections of a ``(3, H, W)`` image of any size from any detector with ``predict(images)``: the detector
    runs on :func:`sliding_windows` patches, boxes move back to image coordinates and overlapping windows'
    duplicates go by class-aware rotated NMS at ``nms_iou_thr`` (mmrotate's DOTA merge uses 0.1)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"give one (3, H, W) image, got shape {tuple(image.shape)}")
    windows = sliding_windows(image.shape[-2], image.shape[-1], size, gap)
    patches = crop_windows(image, windows)
    boxes, scores, labels = [], [], []
    for i in range(0, len(patches), batch_size):
        for k, det in enumerate(detector.predict(patches[i : i + batch_size], score_thr), start=i):
            shifted = det["boxes"].clone()
            shifted[:, :2] += windows[k, :2].to(shifted)
            boxes.append(shifted), scores.append(det["scores"]), labels.append(det["labels"])
    version = detector.config.angle_version
    return select_detections(torch.cat(boxes), torch.cat(scores), torch.cat(labels), nms_iou_thr, max_per_img, version)
