"""Data: synthetic oriented tiny-object scenes, DOTA / AI-TOD-R annotation readers, random flips, point labels."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from labcore.rotated import batched_rotated_nms, poly_to_obb, regularize_boxes

AITOD_CLASSES = ("airplane", "bridge", "storage-tank", "ship", "swimming-pool", "vehicle", "person", "wind-mill")
DOTA_CLASSES = (
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
)
SYNTHETIC_CLASSES = ("vehicle", "ship", "storage-tank")
# per synthetic class: long side range (px), aspect (long/short) range, base colour
_SYNTH_SHAPES = {
    "vehicle": ((4.0, 10.0), (1.8, 2.4), (0.95, 0.85, 0.2)),
    "ship": ((10.0, 26.0), (2.8, 4.0), (0.95, 0.95, 0.95)),
    "storage-tank": ((4.0, 14.0), (1.0, 1.15), (0.2, 0.8, 0.95)),
}


def _texture(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Smooth multi-scale noise tinted like ground/water: ``(3, h, w)`` in [0, 1]."""
    img = torch.zeros(3, h, w)
    for cells, amp in ((4, 0.35), (16, 0.15)):
        coarse = torch.rand(3, max(2, h * cells // 128), max(2, w * cells // 128), generator=g)
        img += amp * torch.nn.functional.interpolate(coarse[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    tint = 0.25 + 0.2 * torch.rand(3, 1, 1, generator=g)
    return (img * 0.7 + tint).clamp(0, 1)


def _paint(
    boxes: torch.Tensor,
    colours: torch.Tensor,
    h: int,
    w: int,
    supersample: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint boxes by supersampled coverage in a window around each box: ``(paint (3,h,w), alpha (h,w))``."""
    k = int(math.ceil(float(boxes[:, 2:4].norm(dim=-1).max()))) + 2  # window side (px) holding any box
    x0 = (boxes[:, 0] - k / 2).floor().long()
    y0 = (boxes[:, 1] - k / 2).floor().long()
    offs = (torch.arange(k)[:, None] + (torch.arange(supersample) + 0.5)[None] / supersample).reshape(-1)
    px = x0[:, None, None].float() + offs[None, None, :]
    py = y0[:, None, None].float() + offs[None, :, None]
    cx, cy, bw, bh, a = (v[:, None, None] for v in boxes.unbind(-1))
    dx, dy = px - cx, py - cy
    u = dx * torch.cos(a) + dy * torch.sin(a)
    v = -dx * torch.sin(a) + dy * torch.cos(a)
    cover = ((u.abs() <= bw / 2) & (v.abs() <= bh / 2)).float()
    cover = cover.reshape(-1, k, supersample, k, supersample).mean((2, 4))  # (N, k, k)
    ys = (y0[:, None, None] + torch.arange(k)[None, :, None]).expand_as(cover)
    xs = (x0[:, None, None] + torch.arange(k)[None, None, :]).expand_as(cover)
    ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w) & (cover > 0)
    flat = (ys * w + xs)[ok]
    alpha = torch.zeros(h * w).index_add_(0, flat, cover[ok])
    paint = torch.zeros(3, h * w).index_add_(1, flat, (cover[..., None] * colours[:, None, None])[ok].T)
    return paint.reshape(3, h, w), alpha.reshape(h, w)


def synthetic_scene(seed: int, size: int = 128, max_objects: int = 24, version: str = "le135") -> dict:
    """One textured scene with oriented tiny objects: ``{"image": (3,H,W), "boxes": (N,5), "labels": (N,)}``.

    Objects of a class share a shape prior (long side, aspect, colour) and get a darker
    "cabin" stripe on one end so the orientation is visible, as vehicles and ships are.
    """
    g = torch.Generator().manual_seed(int(seed))
    img = _texture(size, size, g)
    n = int(torch.randint(max_objects // 3, max_objects + 1, (1,), generator=g))
    labels = torch.randint(0, len(SYNTHETIC_CLASSES), (n,), generator=g)
    specs = [_SYNTH_SHAPES[c] for c in SYNTHETIC_CLASSES]
    lo_l = torch.tensor([s[0][0] for s in specs])[labels]
    hi_l = torch.tensor([s[0][1] for s in specs])[labels]
    lo_r = torch.tensor([s[1][0] for s in specs])[labels]
    hi_r = torch.tensor([s[1][1] for s in specs])[labels]
    long = lo_l + (hi_l - lo_l) * torch.rand(n, generator=g)
    short = long / (lo_r + (hi_r - lo_r) * torch.rand(n, generator=g))
    xy = 6 + torch.rand(n, 2, generator=g) * (size - 12)
    angle = torch.rand(n, generator=g) * math.pi
    boxes = torch.stack([xy[:, 0], xy[:, 1], long, short, angle], 1)
    # drop objects that would touch an earlier one (greedy, in random order)
    spaced = boxes.clone()
    spaced[:, 2:4] += 2
    keep = batched_rotated_nms(spaced, torch.rand(n, generator=g), torch.zeros(n, dtype=torch.long), 0.0)
    boxes, labels = boxes[keep], labels[keep]
    if boxes.shape[0]:
        colours = torch.tensor([s[2] for s in specs])[labels] * (0.8 + 0.2 * torch.rand(len(labels), 1, generator=g))
        paint, alpha = _paint(boxes, colours, size, size)
        cabin = boxes.clone()
        cabin[:, 2] = boxes[:, 2] * 0.3
        cabin[:, 0] += 0.25 * boxes[:, 2] * torch.cos(boxes[:, 4])
        cabin[:, 1] += 0.25 * boxes[:, 2] * torch.sin(boxes[:, 4])
        shade = colours * 0.5 * (labels != 2).float()[:, None]
        cabin_paint, _ = _paint(cabin, shade, size, size)
        img = img * (1 - alpha.clamp(max=1)) + paint - cabin_paint
        img = img + 0.02 * torch.randn(img.shape, generator=g)
    return {"image": img.clamp(0, 1), "boxes": regularize_boxes(boxes, version), "labels": labels}


class SyntheticTinyObjects(Dataset):
    """A deterministic dataset of :func:`synthetic_scene` images (index ``i`` → seed ``seed·100003 + i``)."""

    classes = SYNTHETIC_CLASSES

    def __init__(self, num_images: int, size: int = 128, seed: int = 0, max_objects: int = 24, version: str = "le135"):
        self.num_images, self.size, self.seed = num_images, size, seed
        self.max_objects, self.version = max_objects, version

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, i: int) -> dict:
        return synthetic_scene(self.seed * 100003 + i, self.size, self.max_objects, self.version)


def collate(batch: Sequence[dict]) -> dict:
    """Stack same-sized images; keep per-image boxes/labels/points as lists."""
    sizes = {tuple(b["image"].shape) for b in batch}
    if len(sizes) != 1:
        raise ValueError(f"images in a batch must share one size, got {sorted(sizes)}; resize or pad them first")
    out = {"image": torch.stack([b["image"] for b in batch])}
    for key in ("boxes", "labels", "points"):
        if key in batch[0]:
            out[key] = [b[key] for b in batch]
    return out


def aitodr_poly_to_obb(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AI-TOD-R's loader conversion (mmrotate ``poly2obb_np_le135``), vectorised with its arithmetic.

    ``(N, 8)`` polygons, read as float32 → ``(boxes (N, 5) float32, keep (N,) bool)``: edges
    ``p1p2`` and ``p2p3`` (float32); a polygon with either under 2 px is dropped; width = the longer
    of the two, height = the shorter (so collinear or bow-tie quadrilaterals keep these edge lengths);
    angle of ``p1→p2`` (if ``p1p2`` is longer) or ``p1→p4``, wrapped to le135; centre = midpoint of
    ``p1, p3``. Rows with NaN pass the 2-px test there; here they raise.
    """
    poly = np.asarray(polys, dtype=np.float32).reshape(-1, 4, 2)
    if not np.isfinite(poly).all():
        raise ValueError("polygons hold NaN or infinite coordinates")
    p1, p2, p3, p4 = (poly[:, i] for i in range(4))
    d12, d23 = p1 - p2, p2 - p3
    e1 = np.sqrt(d12[:, 0] * d12[:, 0] + d12[:, 1] * d12[:, 1])
    e2 = np.sqrt(d23[:, 0] * d23[:, 0] + d23[:, 1] * d23[:, 1])
    keep = ~((e1 < 2) | (e2 < 2))
    direction = np.where((e1 > e2)[:, None], p2 - p1, p4 - p1).astype(np.float64)
    angle = np.arctan2(direction[:, 1], direction[:, 0])
    angle = (angle + np.pi / 4) % np.pi - np.pi / 4
    centre = (p1 + p3).astype(np.float64) / 2
    boxes = np.stack([centre[:, 0], centre[:, 1], np.maximum(e1, e2), np.minimum(e1, e2), angle], 1)
    return boxes.astype(np.float32), keep


def read_dota_txt(
    path: str | os.PathLike,
    classes: Sequence[str] = DOTA_CLASSES,
    version: str = "le135",
    skip_difficult: bool = False,
    protocol: str = "clean",
) -> dict:
    """Parse one DOTA-style annotation file (``x1 y1 … x4 y4 class difficult`` per line).

    Header lines (``imagesource:``, ``gsd:``) are skipped; an empty file gives zero boxes.
    Unknown class names raise a ``ValueError`` naming the file, the line and the known classes.
    ``protocol="aitod-r"`` converts like AI-TOD-R's loader (:func:`aitodr_poly_to_obb`: float32,
    boxes with an edge under 2 px dropped, le135 only); ``"clean"`` keeps every box
    (:func:`labcore.rotated.poly_to_obb`: centroid, mean opposite edges, float64 → float32).
    """
    if protocol not in ("clean", "aitod-r"):
        raise ValueError(f"unknown protocol {protocol!r}; use 'clean' or 'aitod-r'")
    if protocol == "aitod-r" and version != "le135":
        raise ValueError(f"protocol 'aitod-r' converts polygons as AI-TOD-R's le135 loader; got version={version!r}")
    path = Path(path)
    polys, labels, difficult = [], [], []
    index = {c: i for i, c in enumerate(classes)}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith(("imagesource", "gsd")):
            continue
        if len(parts) < 9:
            raise ValueError(f"{path}:{lineno}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]', got {line!r}")
        name = parts[8]
        if name not in index:
            raise ValueError(f"{path}:{lineno}: unknown class {name!r}; known classes: {', '.join(classes)}")
        diff = int(parts[9]) if len(parts) > 9 else 0
        if skip_difficult and diff:
            continue
        polys.append(parts[:8])
        labels.append(index[name])
        difficult.append(bool(diff))
    labels_t, difficult_t = torch.tensor(labels, dtype=torch.long), torch.tensor(difficult, dtype=torch.bool)
    if protocol == "aitod-r":
        try:
            boxes, keep = aitodr_poly_to_obb(np.array(polys, dtype=np.float32).reshape(-1, 8))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        keep_t = torch.from_numpy(keep)
        return {"boxes": torch.from_numpy(boxes[keep]), "labels": labels_t[keep_t], "difficult": difficult_t[keep_t]}
    poly = torch.tensor([[float(v) for v in p] for p in polys], dtype=torch.float64).reshape(-1, 8)
    if not torch.isfinite(poly).all():
        raise ValueError(f"{path}: non-finite coordinates")
    boxes = poly_to_obb(poly, version).float() if len(polys) else torch.zeros(0, 5)
    return {"boxes": boxes, "labels": labels_t, "difficult": difficult_t}


def read_aitodr_txt(path: str | os.PathLike, version: str = "le135", protocol: str = "aitod-r") -> dict:
    """An AI-TOD-R annotation file: DOTA format with the eight AI-TOD class names (AI-TOD-R's loader by default)."""
    return read_dota_txt(path, AITOD_CLASSES, version, protocol=protocol)


class DOTAStyleDataset(Dataset):
    """Images ``images/<stem>.png|jpg|tif`` with annotations ``labelTxt/<stem>.txt`` (DOTA, AI-TOD-R layout).

    ``protocol`` (default: ``"aitod-r"`` for the AI-TOD classes, else ``"clean"``) is passed to
    :func:`read_dota_txt`; under ``"aitod-r"`` images whose annotation file is empty (0 bytes) are left
    out, as AI-TOD-R's ``AITODRDataset.load_annotations`` does (so they are neither trained nor evaluated).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        classes: Sequence[str] = AITOD_CLASSES,
        version: str = "le135",
        image_dir: str = "images",
        ann_dir: str = "labelTxt",
        protocol: str | None = None,
    ):
        self.root, self.classes, self.version = Path(root), tuple(classes), version
        self.protocol = protocol or ("aitod-r" if self.classes == AITOD_CLASSES else "clean")
        ann = self.root / ann_dir
        if not ann.is_dir():
            raise FileNotFoundError(f"no annotation folder {ann}; expected {image_dir}/ and {ann_dir}/ under {root}")
        self.items = []
        for txt in sorted(ann.glob("*.txt")):
            if self.protocol == "aitod-r" and txt.stat().st_size == 0:
                continue
            candidates = [self.root / image_dir / (txt.stem + ext) for ext in (".png", ".jpg", ".jpeg", ".tif", ".bmp")]
            found = [p for p in candidates if p.exists()]
            if not found:
                raise FileNotFoundError(f"annotation {txt} has no image {txt.stem}.* in {self.root / image_dir}")
            self.items.append((found[0], txt))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        img_path, txt = self.items[i]
        pixels = np.asarray(Image.open(img_path).convert("RGB"), dtype=np.float32) / 255
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        ann = read_dota_txt(txt, self.classes, self.version, protocol=self.protocol)
        return {"image": image, **ann, "name": txt.stem}


FLIPS = ("horizontal", "vertical", "diagonal")


def flip_points(xy: torch.Tensor, size: tuple[int, int], direction: str) -> torch.Tensor:
    """Mirror ``(…, 2)`` continuous image coordinates of an ``(h, w)`` image: ``x → w − x`` (horizontal),
    ``y → h − y`` (vertical) or both (diagonal)."""
    if direction not in FLIPS:
        raise ValueError(f"unknown flip direction {direction!r}; use one of {FLIPS}")
    x, y = xy.unbind(-1)
    x = size[1] - x if direction != "vertical" else x
    y = size[0] - y if direction != "horizontal" else y
    return torch.stack([x, y], -1)


def flip_image(image: torch.Tensor, direction: str) -> torch.Tensor:
    """Mirror a ``(…, H, W)`` image like :func:`flip_points`."""
    return image.flip({"horizontal": (-1,), "vertical": (-2,), "diagonal": (-2, -1)}[direction])


def flip_boxes(boxes: torch.Tensor, size: tuple[int, int], direction: str, version: str = "le135") -> torch.Tensor:
    """Mirror ``(N, 5)`` rotated boxes like :func:`flip_points` (mmrotate ``RRandomFlip.bbox_flip``): a single mirror
    turns the angle ``a → −a``, the diagonal one (a half-turn) keeps it; regularised to ``version``. (mmrotate
    maps centres to ``w − x − 1``, one pixel off under continuous coordinates; we do not.)"""
    angle = boxes[:, 4:] if direction == "diagonal" else -boxes[:, 4:]
    return regularize_boxes(torch.cat([flip_points(boxes[:, :2], size, direction), boxes[:, 2:4], angle], 1), version)


class RandomFlip(Dataset):
    """mmrotate's ``RRandomFlip`` as AI-TOD-R's training pipelines configure it: each item is flipped
    horizontally, vertically or diagonally with probability ``ratio`` each (default 0.25: left as is 1/4 of the
    time), its ``image``, ``boxes`` and (if present) ``points`` together; a fresh draw on every access."""

    def __init__(self, dataset: Dataset, ratio: float = 0.25, version: str = "le135"):
        if not 0 <= ratio <= 1 / 3:
            raise ValueError(f"ratio is the probability of each of 3 directions: give 0–1/3, got {ratio}")
        self.dataset, self.ratio, self.version = dataset, ratio, version

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        k = int(torch.rand(()) // self.ratio) if self.ratio else len(FLIPS)
        if k >= len(FLIPS):
            return item
        size = tuple(item["image"].shape[-2:])
        item["image"] = flip_image(item["image"], FLIPS[k])
        item["boxes"] = flip_boxes(item["boxes"], size, FLIPS[k], self.version)
        if "points" in item:
            item["points"] = flip_points(item["points"], size, FLIPS[k])
        return item


def boxes_to_points(
    boxes: torch.Tensor,
    mode: str = "centre",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Point labels for point-supervised training: box centres or uniform points inside each box."""
    if mode == "centre":
        return boxes[:, :2].clone()
    if mode != "random":
        raise ValueError(f"unknown point mode {mode!r}; use 'centre' or 'random'")
    uv = torch.rand(boxes.shape[0], 2, generator=generator, dtype=boxes.dtype) - 0.5
    u, v = uv[:, 0] * boxes[:, 2], uv[:, 1] * boxes[:, 3]
    c, s = torch.cos(boxes[:, 4]), torch.sin(boxes[:, 4])
    return torch.stack([boxes[:, 0] + u * c - v * s, boxes[:, 1] + u * s + v * c], 1)


class PointLabels(Dataset):
    """Wrap a box dataset for point supervision: adds ``points`` (centres or random points in the boxes,
    fixed per image) to every item; the boxes stay in the item for evaluation only."""

    def __init__(self, dataset: Dataset, mode: str = "centre", seed: int = 0):
        self.dataset, self.mode, self.seed = dataset, mode, seed
        boxes_to_points(torch.zeros(0, 5), mode)  # validates the mode early

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        g = torch.Generator().manual_seed(self.seed * 100003 + i)
        item["points"] = boxes_to_points(item["boxes"], self.mode, g)
        return item
