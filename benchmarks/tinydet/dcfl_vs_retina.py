"""DCFL vs Rotated RetinaNet on synthetic tiny objects, with label-assignment diagnostics (CPU).

Trains each head as ``python -m tinydet demo`` does (same data, seed, AdamW, DCN offsets at 0.1× lr; batch 4
unless ``--batch-size``, the demo takes 2 for its time budget) and prints a table, mean ± std over ``--seeds``
(:mod:`labcore.seeds`; the seed sets initialisation and batch order, not the scenes): AP50 / AP / AP75 / AP_vt /
AP_t / VOC mAP50 on 16 held-out scenes, then, for each trained single-stage model on those scenes, what its
assigner gives each gt: positives per gt, the share of gts left without a positive, the mean IoU of the positive
anchors and of the predicted boxes at the positives with their gt, and the mean length of DCFL's dynamic-prior
shift. ``--heads`` may add the two-stage ``dcfl-rcnn`` / ``oriented-rcnn`` (Oriented R-CNN with the DCFL / plain
RPN; AP columns only).

    OMP_NUM_THREADS=1 python benchmarks/tinydet/dcfl_vs_retina.py --heads retina dcfl --steps 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from labcore.rng import seed_everything
from labcore.rotated import rotated_iou_aligned
from labcore.seeds import over_seeds, seed_table
from tinydet.data import SYNTHETIC_CLASSES, synthetic_scene
from tinydet.demo import _fit_fresh, _val_scenes, build_detector
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.evaluate import coco_rotated_ap, voc_rotated_map

AP_KEYS = ("AP50", "AP", "AP75", "AP_vt", "AP_t", "mAP50")


@torch.no_grad()
def assignment_stats(detector: RotatedDetector, scenes: list[dict]) -> dict:
    """Per-gt statistics of the detector's own label assignment on ``scenes`` (eval-mode outputs)."""
    detector.eval()
    images = torch.stack([s["image"] for s in scenes])
    outputs = detector(images)
    flat = detector.flat_outputs(outputs)
    anchors, _, _, decoded, shift = flat
    gt_boxes, gt_labels = [s["boxes"] for s in scenes], [s["labels"] for s in scenes]
    per_image = detector.assign_targets(flat, gt_boxes, gt_labels)
    counts, anchor_iou, pred_iou = [], [], []
    for i, (assigned, boxes, _) in enumerate(per_image):
        pos = torch.nonzero(assigned > 0).flatten()
        gt = boxes[assigned[pos] - 1]
        counts.append(torch.bincount(assigned[pos] - 1, minlength=boxes.shape[0]))
        anchor_iou.append(rotated_iou_aligned(anchors[pos], gt))
        pred_iou.append(rotated_iou_aligned(decoded[i][pos], gt))
    counts = torch.cat(counts).float()
    tiny = torch.cat([b[:, 2:4].prod(1).sqrt() < 8 for _, b, _ in per_image])
    stats = {
        "pos/gt": counts.mean().item(),
        "gts w/o pos": (counts == 0).float().mean().item(),
        "w/o pos <8px": (counts[tiny] == 0).float().mean().item(),
        "IoU(anchor)": torch.cat(anchor_iou).mean().item(),
        "IoU(pred)": torch.cat(pred_iou).mean().item(),
        "shift px": 0.0 if shift is None else shift.norm(dim=-1).mean().item(),
    }
    if detector.config.head == "dcfl":  # the same assignment without the Gaussian-mixture filter
        thr, detector.config.gauss_thr = detector.config.gauss_thr, float("inf")
        unfiltered = detector.assign_targets(flat, gt_boxes, gt_labels)
        detector.config.gauss_thr = thr
        kept = torch.cat([torch.bincount(a[a > 0] - 1, minlength=b.shape[0]) for a, b, _ in unfiltered])
        stats["w/o pos, no filter"] = (kept == 0).float().mean().item()
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    heads = ["retina", "dcfl", "dcfl-rcnn", "oriented-rcnn"]
    p.add_argument("--heads", nargs="+", default=heads[:2], choices=heads)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--anchor-scale", type=float, default=2.0, help="anchor side over the stride (demo: 2)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-images", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="DetectorConfig overrides")
    p.add_argument("--protocol", choices=["aitod-r", "clean"], default="aitod-r", help="evaluation protocol")
    args = p.parse_args()
    overrides = {k: type(getattr(DetectorConfig, k))(v) for k, v in (s.split("=", 1) for s in args.set)}
    if overrides and any(h.endswith("-rcnn") for h in args.heads):
        p.error("--set takes DetectorConfig fields: use it with the single-stage heads (retina, dcfl) only")
    train = [synthetic_scene(i, 128) for i in range(args.train_images)]
    val = _val_scenes(16, 128)

    def one_seed(head: str, seed: int) -> dict[str, float]:
        seed_everything(seed)
        detector = build_detector(head, args.anchor_scale, **overrides)
        start = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            _fit_fresh(detector, train, Path(tmp), args.steps, args.batch_size, args.lr, args.steps // 6, seed)
        cpu = time.process_time() - start
        dets = detector.predict(torch.stack([v["image"] for v in val]))
        n = len(SYNTHETIC_CLASSES)
        ap = coco_rotated_ap(dets, val, n, protocol=args.protocol)
        ap |= voc_rotated_map(dets, val, n, protocol=args.protocol)
        stats = assignment_stats(detector, val) if isinstance(detector, RotatedDetector) else {}
        row = {**{k: ap[k] for k in AP_KEYS}, "CPU s": cpu, **stats}
        print(head, "seed", seed, {k: round(v, 4) for k, v in row.items()}, flush=True)
        return row

    rows = {head: over_seeds(lambda seed, h=head: one_seed(h, seed), args.seeds) for head in args.heads}
    print(f"steps {args.steps}, lr {args.lr}, anchors {args.anchor_scale}×stride, {args.set}, {args.protocol}")
    print(seed_table(rows, [*AP_KEYS, "CPU s"], args.seeds, label="head"))
    single = {h: r for h, r in rows.items() if not h.endswith("-rcnn")}
    if single:
        keys = [k for k in next(iter(single.values())) if k not in (*AP_KEYS, "CPU s")]
        keys = [k for k in keys if all(k in r for r in single.values())]
        print("\nassignment on the held-out scenes after training")
        print(seed_table(single, keys, args.seeds, label="head"))
        for head, r in single.items():  # head-specific columns (DCFL: without its Gaussian-mixture filter)
            if extra := {k: v.format() for k, v in r.items() if k not in (*AP_KEYS, "CPU s", *keys)}:
                print(head, extra)


if __name__ == "__main__":
    main()
