"""Quick start: DCFL vs Rotated RetinaNet trained the same way on synthetic oriented tiny objects (CPU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from labcore.claims import Claim, verdict
from labcore.figures import save_image_grid, save_line_plot
from labcore.logging import get_logger
from labcore.rng import seed_everything
from tinydet.data import SYNTHETIC_CLASSES, synthetic_scene
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.evaluate import coco_rotated_ap, voc_rotated_map
from tinydet.train import fit
from tinydet.two_stage import TwoStageConfig, TwoStageDetector
from tinydet.visualize import draw_boxes

log = get_logger("tinydet.demo")
HEAD_NAMES = {"retina": "RetinaNet", "dcfl": "DCFL", "dcfl-rcnn": "DCFL-RCNN", "oriented-rcnn": "OrientedRCNN"}


def _val_scenes(num: int, size: int) -> list[dict]:
    """Held-out synthetic scenes (seeds from 10⁶ on, never among the training seeds)."""
    return [synthetic_scene(10**6 + i, size) for i in range(num)]


def _fit_fresh(model, data, ckpt_dir: Path, steps: int, batch_size: int, lr: float, warmup: int, seed: int = 0):
    """Train with the demos' AdamW settings as a fresh run: old checkpoints in ``ckpt_dir`` are removed, not resumed."""
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return fit(
        model,
        data,
        ckpt_dir,
        max_steps=steps,
        batch_size=batch_size,
        lr=lr,
        optimizer="adamw",
        warmup=warmup,
        resume=False,
        progress=False,
        seed=seed,
    )


def build_detector(head: str, anchor_scale: float, **overrides) -> RotatedDetector | TwoStageDetector:
    """The demo's tiny detector for ``head`` (``retina``, ``dcfl``, ``dcfl-rcnn``, ``oriented-rcnn``) with anchors
    of ``anchor_scale``·stride (two-stage P2 anchors ``2·anchor_scale``·stride: the same pixel size);
    ``overrides`` go to its config."""
    if head.endswith("-rcnn"):
        rpn = head.removesuffix("-rcnn")
        return TwoStageDetector(
            TwoStageConfig.tiny(SYNTHETIC_CLASSES, rpn=rpn, rpn_anchor_scale=2 * anchor_scale, **overrides)
        )
    return RotatedDetector(
        DetectorConfig.tiny(SYNTHETIC_CLASSES, head=head, octave_base_scale=anchor_scale, **overrides)
    )


def run(
    out_dir: Path,
    train_images: int = 48,
    val_images: int = 16,
    steps: int = 100,
    batch_size: int = 2,
    lr: float = 2e-3,
    size: int = 128,
    anchor_scale: float = 4.0,
    heads: tuple[str, ...] = ("retina", "dcfl"),
    seeds: tuple[int, ...] = (0, 1, 2),
) -> dict:
    """Train Rotated RetinaNet and DCFL the same way (AdamW, DCN offsets at 0.1× lr) once per seed and
    evaluate both with the AI-TOD-R protocol; returns the mean over ``seeds`` of AP, AP50, AP_vt, AP_t and
    mAP50 per head (and the per-seed values). ``heads`` may add ``"dcfl-rcnn"``/``"oriented-rcnn"``
    (Oriented R-CNN with the DCFL / plain RPN; their P2 anchors get ``2·anchor_scale``·stride, the same
    pixel size as the single-stage P3 anchors).

    ``anchor_scale`` is the anchor side over the stride. The default 4 is the paper's setting for both
    detectors (32-px anchors on P3 for 3–26 px objects): the prior/object mismatch DCFL addresses. With
    anchors hand-matched to the objects (2 = 16 px) max-IoU RetinaNet no longer suffers from it and is level
    with DCFL at this budget (README, "DCFL vs RetinaNet"). lr 5e-3 made both detectors' box regression
    overshoot into non-overlap, where the IoU loss has no gradient; 2e-3 does not.
    """
    out_dir = Path(out_dir)
    train = [synthetic_scene(i, size) for i in range(train_images)]
    val = _val_scenes(val_images, size)
    images = torch.stack([v["image"] for v in val])
    per_seed, curves, drawn = {h: [] for h in heads}, {}, []
    for seed in seeds:
        for head in heads:
            seed_everything(seed)
            detector = build_detector(head, anchor_scale)
            ckpt = out_dir / f"checkpoints_{head}"
            module = _fit_fresh(detector, train, ckpt, steps, batch_size, lr, steps // 6, seed)
            shutil.rmtree(ckpt, ignore_errors=True)
            dets = detector.predict(images)
            n = len(SYNTHETIC_CLASSES)
            metrics = {
                **coco_rotated_ap(dets, val, n, protocol="aitod-r"),
                **voc_rotated_map(dets, val, n, protocol="aitod-r"),
            }
            per_seed[head].append(metrics)
            log.info("%s seed %d: %s", head, seed, {k: round(v, 4) for k, v in metrics.items()})
            if seed != seeds[0]:
                continue
            curves[f"{head} loss"] = [h["loss"] for h in module.history]
            confident = [d["scores"] > 0.3 for d in dets[:4]]
            drawn += [
                draw_boxes(v["image"], d["boxes"][m], d["labels"][m], gt_boxes=v["boxes"])
                for v, d, m in zip(val[:4], dets[:4], confident)
            ]
            if head == "dcfl":
                detector.save_pretrained(out_dir / "dcfl_model")
    save_image_grid(torch.stack(drawn), out_dir / "detections.png", nrow=4, value_range=(0, 1))
    save_line_plot(curves, out_dir / "loss.png", ylabel="sum of losses", title=f"training loss (seed {seeds[0]})")
    out: dict = {
        "seeds": " ".join(map(str, seeds)),
        "anchors": f"{anchor_scale:g}·stride",
        "training": f"{steps} steps of {batch_size} images",
    }
    for head, runs in per_seed.items():
        for k in ("AP", "AP50", "AP_vt", "AP_t", "mAP50"):
            values = torch.tensor([r[k] for r in runs], dtype=torch.float64)
            out[f"{HEAD_NAMES[head]} {k}"] = values.mean().item()
            out[f"{HEAD_NAMES[head]} {k} per seed"] = " ".join(f"{v:.3f}" for v in values.tolist())
    return out


def run_point_teacher(
    out_dir: Path,
    train_images: int = 16,
    val_images: int = 8,
    steps: int = 800,
    burn_in_steps: int = 400,
    batch_size: int = 4,
    lr: float = 2e-3,
    size: int = 128,
    seed: int = 0,
    **overrides,
) -> dict:
    """Point Teacher from centre points only (phase 1 for ``burn_in_steps``, then phase 2); reports the
    mean IoU of its pseudo boxes (coarse and MIL-refined) with the hidden true boxes of held-out
    scenes, next to the reference's point-only fallback box (8×8 at the point). ``seed`` seeds the
    initialisation and the random draws of training (the scenes stay the same)."""
    from labcore.rotated import rotated_iou_aligned
    from tinydet.data import PointLabels
    from tinydet.point_teacher import SYNTHETIC_SHAPES, PointTeacher, PointTeacherConfig

    out_dir = Path(out_dir)
    seed_everything(seed)
    train = PointLabels([synthetic_scene(i, size) for i in range(train_images)])
    val = _val_scenes(val_images, size)
    # the reference's 200-px negative extent and row gaps are for 1200-px SODA-A images: scaled with the image here
    overrides = {"mil_neg_extent": 200.0 * size / 1200, "syn_gap_scale": size / 1200, **overrides}
    config = PointTeacherConfig(
        list(SYNTHETIC_CLASSES), burn_in_steps=burn_in_steps, ema_alpha=0.99, shape_list=SYNTHETIC_SHAPES, **overrides
    )
    model = PointTeacher(config)
    images = torch.stack([v["image"] for v in val])
    points, labels = [v["boxes"][:, :2] for v in val], [v["labels"] for v in val]
    truth = torch.cat([v["boxes"] for v in val])
    untrained = torch.cat(model.pseudo_boxes(images, points, labels, refine=False))
    module = _fit_fresh(model, train, out_dir / "checkpoints_point_teacher", steps, batch_size, lr, steps // 10)
    coarse = torch.cat(model.pseudo_boxes(images, points, labels, refine=False))
    refined_per_image = model.pseudo_boxes(images, points, labels)
    refined = torch.cat(refined_per_image)
    trained_with = model.config.centre_at_point
    model.config.centre_at_point = True  # the same network's boxes moved onto the (centre) points
    at_point = torch.cat(model.pseudo_boxes(images, points, labels))
    model.config.centre_at_point = trained_with
    fallback = torch.cat([truth[:, :2], torch.full((len(truth), 2), 8.0), torch.zeros(len(truth), 1)], 1)
    dets = model.predict(images)
    result = {
        "PointTeacher pseudo IoU untrained": rotated_iou_aligned(untrained, truth).mean().item(),
        "PointTeacher pseudo IoU coarse": rotated_iou_aligned(coarse, truth).mean().item(),
        "PointTeacher pseudo IoU refined": rotated_iou_aligned(refined, truth).mean().item(),
        "PointTeacher pseudo IoU refined at point": rotated_iou_aligned(at_point, truth).mean().item(),
        "point-only 8x8 box IoU": rotated_iou_aligned(fallback, truth).mean().item(),
        **{
            f"PointTeacher {k}": v
            for k, v in coco_rotated_ap(dets, val, len(SYNTHETIC_CLASSES)).items()
            if k in ("AP", "AP50")
        },
    }
    save_line_plot(
        {"point teacher loss": [h["loss"] for h in module.history]},
        out_dir / "point_teacher_loss.png",
        ylabel="total loss",
        title="Point Teacher training loss",
    )
    drawn = [
        draw_boxes(v["image"], b, v["labels"], gt_boxes=v["boxes"]) for v, b in zip(val[:4], refined_per_image[:4])
    ]
    save_image_grid(torch.stack(drawn), out_dir / "point_teacher_pseudo_boxes.png", nrow=4, value_range=(0, 1))
    log.info("point teacher: %s", {k: round(v, 4) for k, v in result.items()})
    return result


def main(out_dir: Path) -> dict:
    res = run(Path(out_dir))
    ours, base = res["DCFL AP_t"], res["RetinaNet AP_t"]
    claim = Claim(
        claim="DCFL's dynamic priors and coarse-to-fine assignment detect tiny oriented objects better than "
        "a detector with the same priors and max-IoU assignment (AI-TOD-R: higher AP_vt / AP_t)",
        measure=f"AP_t (8–16 px), mean of seeds {res['seeds']}, AI-TOD-R protocol, 32-px anchors, {res['training']}",
        ours=ours,
        baseline=base,
        baseline_name="Rotated RetinaNet, same anchors, data and training",
        verdict=verdict(ours > base),
        note="Synthetic 128-px scenes, tiny backbone, CPU budget: absolute APs are far below the paper's. With "
        "anchors hand-matched to the objects (16 px) the two are level (README, 'DCFL vs RetinaNet').",
        figures=["detections.png", "loss.png"],
    )
    return {**res, "claim": claim.as_dict()}
