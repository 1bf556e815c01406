"""Throughput of labcore.rotated (aligned and pairwise IoU, NMS) against shapely (and mmcv when
installed), plus detector images/s at 800×800. Prints a markdown table. Usage:

    python benchmarks/tinydet/bench_rotated_ops.py [--device cpu|cuda] [--quick]

On CUDA the IoU/NMS rows run twice: with the Triton fast path of ``rotated_iou_aligned`` (what the
dispatch picks) and with ``LABCORE_DISABLE_FAST_KERNELS=1`` (the PyTorch reference). Triton's
CPU interpreter is for tests only; its timings say nothing about speed, so it is never timed here.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from unittest import mock

import torch

from labcore.rotated import obb_to_poly, rotated_iou, rotated_iou_aligned, rotated_nms


def _boxes(n: int, extent: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat(
        [
            torch.rand(n, 2, generator=g) * extent,
            2 + torch.rand(n, 2, generator=g) * 30,
            torch.rand(n, 1, generator=g) * math.pi,
        ],
        1,
    )


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(fn, repeat: int = 3) -> float:
    fn()
    _sync()  # the warm-up's queued CUDA work must not count in the first timed run
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t)
    return best


def _fast_kernels(enabled: bool):
    """Context: the dispatch's fast kernels on or off (``LABCORE_DISABLE_FAST_KERNELS``), restored on exit."""
    return mock.patch.dict(os.environ, {"LABCORE_DISABLE_FAST_KERNELS": "0" if enabled else "1"})


def _labcore_paths(device: str, *example: torch.Tensor) -> list[tuple[str, bool]]:
    """(label, fast kernels on) for each labcore path worth timing on ``device``."""
    with torch.no_grad(), _fast_kernels(True):
        fast = rotated_iou_aligned.select(*example) is not rotated_iou_aligned.reference
    reference = [(f"labcore {device}, PyTorch reference", False)]
    return [(f"labcore {device}, Triton", True), *reference] if fast else reference


def bench_aligned_iou(n: int, device: str) -> list[tuple[str, str, float]]:
    a, b = _boxes(n, 200, 5).to(device), _boxes(n, 200, 6).to(device)
    rows = []
    for label, fast in _labcore_paths(device, a, b):
        with torch.no_grad(), _fast_kernels(fast):
            rows.append(("aligned IoU", label, n / _time(lambda: rotated_iou_aligned(a, b))))
    try:
        from shapely import area, intersection, polygons

        pa, pb = (polygons(obb_to_poly(x.cpu().double()).numpy()) for x in (a, b))

        def shp():
            inter = area(intersection(pa, pb))
            return inter / (area(pa) + area(pb) - inter)

        rows.append(("aligned IoU", "shapely 2 (vectorised clip, CPU)", n / _time(shp)))
    except ImportError:
        pass
    return rows


def bench_iou(n: int, device: str) -> list[tuple[str, str, float]]:
    a, b = _boxes(n, 200, 0).to(device), _boxes(n, 200, 1).to(device)
    rows = []
    for label, fast in _labcore_paths(device, a, b):
        with torch.no_grad(), _fast_kernels(fast):
            rows.append(("pairwise IoU", label, n * n / _time(lambda: rotated_iou(a, b))))
    try:
        from shapely import STRtree, area, intersection, polygons

        pa = polygons(obb_to_poly(a.cpu().double()).numpy())
        pb = polygons(obb_to_poly(b.cpu().double()).numpy())

        def shp():  # same sparse strategy: only pairs whose envelopes intersect are clipped
            i, j = STRtree(pb).query(pa)
            inter = area(intersection(pa[i], pb[j]))
            return inter / (area(pa[i]) + area(pb[j]) - inter)

        rows.append(("pairwise IoU", "shapely 2 (STRtree + vectorised clip)", n * n / _time(shp)))
    except ImportError:
        pass
    try:
        from mmcv.ops import box_iou_rotated

        rows.append(("pairwise IoU", f"mmcv {device}", n * n / _time(lambda: box_iou_rotated(a, b))))
    except ImportError:
        pass
    return rows


def _clustered(n: int, seed: int) -> torch.Tensor:
    """Raw-detection-like boxes: clusters of 30 jittered copies of a tiny object (dense overlaps)."""
    g = torch.Generator().manual_seed(seed)
    k = -(-n // 30)
    base = torch.cat(
        [
            torch.rand(k, 2, generator=g) * 800,
            4 + torch.rand(k, 2, generator=g) * 12,
            torch.rand(k, 1, generator=g) * math.pi,
        ],
        1,
    ).repeat_interleave(30, 0)[:n]
    jitter = torch.cat(
        [
            torch.randn(n, 2, generator=g),
            1 + 0.1 * torch.randn(n, 2, generator=g),
            0.1 * torch.randn(n, 1, generator=g),
        ],
        1,
    )
    return torch.cat([base[:, :2] + jitter[:, :2], base[:, 2:4] * jitter[:, 2:4].abs(), base[:, 4:] + jitter[:, 4:]], 1)


def bench_nms(n: int, device: str) -> list[tuple[str, str, float]]:
    rows = []
    for name, boxes in (("random", _boxes(n, 400, 2)), ("clustered", _clustered(n, 4))):
        boxes = boxes.to(device)
        scores = torch.rand(n, generator=torch.Generator().manual_seed(3)).to(device)
        op = f"NMS IoU 0.4, {name}"
        for label, fast in _labcore_paths(device, boxes, boxes):
            with _fast_kernels(fast):
                rows.append((op, label, n / _time(lambda b=boxes, s=scores: rotated_nms(b, s, 0.4))))
        try:
            from mmcv.ops import nms_rotated

            rows.append((op, f"mmcv {device}", n / _time(lambda b=boxes, s=scores: nms_rotated(b, s, 0.4))))
        except ImportError:
            pass
    return rows


def bench_detector(backbone: str, head: str, device: str, size: int) -> tuple[str, str, float]:
    from tinydet.data import AITOD_CLASSES
    from tinydet.detector import DetectorConfig, RotatedDetector
    from tinydet.two_stage import TwoStageConfig, TwoStageDetector

    if head.endswith("-rcnn"):  # Oriented R-CNN with the DCFL (dcfl-rcnn) or the plain RPN (oriented-rcnn)
        model_class, preset = TwoStageDetector, TwoStageConfig.tiny if backbone == "tiny" else TwoStageConfig.reference
        cfg = preset(AITOD_CLASSES, head.removesuffix("-rcnn"), backbone=backbone)
    else:
        model_class = RotatedDetector
        cfg = (
            DetectorConfig.tiny(AITOD_CLASSES, head=head)
            if backbone == "tiny"
            else DetectorConfig(classes=list(AITOD_CLASSES), head=head, backbone=backbone)
        )
    model = model_class(cfg).to(device).eval()
    images = torch.rand(1, 3, size, size, device=device)
    return (f"{head} {backbone} predict {size}²", device, 1 / _time(lambda: model.predict(images), repeat=2))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    args = p.parse_args()
    n_iou, n_nms = (300, 500) if args.quick else (2000, 3000)
    n_aligned = (10**4 if args.quick else 10**5) * (10 if args.device == "cuda" else 1)
    sizes = {"aligned IoU": n_aligned, "pairwise IoU": n_iou}
    rows = bench_aligned_iou(n_aligned, args.device) + bench_iou(n_iou, args.device) + bench_nms(n_nms, args.device)
    print("| op | implementation | throughput |\n|---|---|---|")
    for op, impl, v in rows:
        unit = "boxes/s" if op.startswith("NMS") else "pairs/s"
        print(f"| {op} (n={sizes.get(op, n_nms)}) | {impl} | {v:,.0f} {unit} |")
    for backbone, head in (
        ("tiny", "retina"),
        ("tiny", "dcfl"),
        ("tiny", "dcfl-rcnn"),
        ("tiny", "oriented-rcnn"),
        ("resnet50", "retina"),
        ("resnet50", "dcfl"),
        ("resnet50", "dcfl-rcnn"),
    ):
        if args.quick and backbone != "tiny":
            continue
        op, dev, v = bench_detector(backbone, head, args.device, 800)
        print(f"| {op} | {dev} | {v:.2f} images/s |")


if __name__ == "__main__":
    main()
