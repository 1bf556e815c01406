"""Point Teacher (Zhu et al., arXiv 2412.05837): oriented tiny-object detection from point labels only.

A rotated FCOS student and its EMA teacher (``RotatedFCOS_TS`` in the reference):

* Phase 1 (``step < burn_in_steps``, "burn-in step 1"): the student learns box regression from
  *synthetic boxes* painted onto the real image away from the labelled points (mask-and-regress,
  ``syn_images_generator_v2.generate_black_paper``) and classification from the points; the MIL head
  learns to refine proposal bags around synthetic boxes.
* Phase 2 ("burn-in step 2"): the teacher turns each point into a coarse pseudo box (score-weighted
  mean of 3 of the 5 predictions nearest the point, chosen by class score and whether their box holds
  the point), the MIL head classifies a bag of rescaled boxes
  around it, the top-3 bag members are averaged and blended with the coarse box
  (``(1−β)·merged + β·coarse``), and the student regresses those pseudo boxes.

No ground-truth box is ever used for training; ``boxes`` in the batch are only read by evaluation.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import box_convert, clip_boxes_to_image, sigmoid_focal_loss
from torchvision.transforms import functional as TF

from labcore.hub import HubMixin
from labcore.rotated import (
    obb_to_poly,
    regularize_boxes,
    rotated_iou,
    rotated_iou_loss,
    rotated_nms,
)
from tinydet.data import _SYNTH_SHAPES, FLIPS, SYNTHETIC_CLASSES, _paint, flip_image, flip_points
from tinydet.detector import check_images, select_detections
from tinydet.fcos import (
    RotatedFCOS,
    bag_loss,
    centerness_target,
    nearest_points,
    obb_to_distance,
    topk_assign,
)
from tinydet.model import PixelNormalize

# the reference's shape_list: (w, h, dw, dr) priors in pixels of 1200-px SODA-A images
SODAA_SHAPES = (
    (20.0, 20.0, 0.5, 0.5),
    (10.0, 20.0, 0.5, 0.5),
    (10.0, 30.0, 0.5, 0.5),
    (40.0, 20.0, 0.5, 0.5),
    (30.0, 10.0, 0.5, 0.5),
    (20.0, 50.0, 0.5, 0.5),
    (30.0, 20.0, 0.5, 0.5),
    (35.0, 40.0, 0.6, 0.5),
)
# ... with sizes halved for 128-px tiny scenes
TINY_SHAPES = tuple((w / 2, h / 2, dw, dr) for w, h, dw, dr in SODAA_SHAPES)


def shape_priors(sizes, scale_range=(0.5, 2.5), dw: float = 0.5, dr: float = 0.5) -> tuple:
    """``(w, h, dw, dr)`` priors, one per typical ``(w, h)`` object size (pixels), whose synthetic boxes average that
    size: the generator multiplies a prior by a scale drawn uniformly from
    ``scale_range``, so each prior is the typical size over the mean scale."""
    mean_scale = (scale_range[0] + scale_range[1]) / 2
    return tuple((float(w) / mean_scale, float(h) / mean_scale, dw, dr) for w, h in sizes)


# the synthetic scenes' classes: mean long side and mean long/aspect of `tinydet.data.synthetic_scene`
SYNTHETIC_SHAPES = shape_priors(
    [
        (sum(long) / 2, sum(long) / 2 / (sum(aspect) / 2))
        for long, aspect, _ in (_SYNTH_SHAPES[c] for c in SYNTHETIC_CLASSES)
    ]
)


@dataclass
class PointTeacherConfig:
    """Defaults follow ``sodaa_fcos_pointteacher_1x.py`` (EMA 0.999, top-3 MIL merge, β 0.25, MIL loss
    weights 0.01 / 0.25, bag ratios 1.0/1.2/1.3/0.8/0.6 with min side 4, 200 negative boxes)."""

    classes: list[str]
    backbone: str = "tiny"
    fpn_channels: int = 32
    feat_channels: int = 32
    stacked_convs: int = 2
    mil_channels: int = 128  # MIL head FC width (reference: 1024)
    burn_in_steps: int = 8000
    ema_alpha: float = 0.999
    shape_list: tuple | None = None  # (w, h, dw, dr) priors, one drawn per point (reference); None: TINY_SHAPES
    syn_scale_range: tuple[float, float] = (0.5, 2.5)  # reference: rand·2 + 0.5
    syn_nms_thr: float = 0.05
    syn_gap_scale: float = 1.0  # scales the row copies' pixel gaps (reference: 1200-px images)
    top_k: int = 3  # MIL merge and coarse pseudo-box top-k
    beta: float = 0.25  # final blending weight of the coarse box
    centre_at_point: bool = False  # move coarse boxes onto their points (for centre-point labels; not in the reference)
    bag_ratios: tuple = (1.0, 1.2, 1.3, 0.8, 0.6)
    bag_min_scale: float = 4.0
    bag_valid_iof: float = 0.7
    mil_neg_samples: int = 200  # random negative boxes per image (`negative_boxes`)
    mil_neg_extent: float = 200.0  # their size draw in px (reference; for 800–1200-px images)
    strong_aug: bool = True  # the student's real-image losses on a flipped/rotated/rescaled copy (reference)
    mil_dn_hyper: float = 0.2  # side jitter of the bag loss's DN-DIoU targets (`loss_bbox_denosing` hyper)
    alpha_mil_bbox: float = 0.01
    alpha_mil_bags: float = 0.25
    score_thr: float = 0.05
    nms_iou_thr: float = 0.1
    max_per_img: int = 2000
    angle_version: str = "le135"
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def reference(cls, classes, **kw) -> PointTeacherConfig:
        """``sodaa_fcos_pointteacher_1x.py``'s network: ResNet-50, 256-channel FPN and head with 4 stacked convs,
        1024-wide MIL FCs, the SODA-A shape priors. (The defaults are a tiny network for the CPU.)"""
        base = dict(backbone="resnet50", fpn_channels=256, feat_channels=256, stacked_convs=4, mil_channels=1024)
        return cls(**{"classes": list(classes), **base, "shape_list": SODAA_SHAPES, **kw})

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ---- phase 1: synthetic boxes ------------------------------------------------------------------
def synthetic_boxes(
    points: torch.Tensor,
    size: tuple[int, int],
    shapes: torch.Tensor,
    scale_range=(0.5, 2.5),
    nms_thr: float = 0.05,
    generator: torch.Generator | None = None,
    gap_scale: float = 1.0,
) -> torch.Tensor:
    """Random rotated boxes, one candidate per labelled point, placed away from all labelled points.

    As ``genrate_syn`` + ``generate_black_paper``: each candidate takes a random one of the shape priors
    ``(w, h, dw, dr)`` (``genrate_syn`` draws the prior index uniformly, whatever the point's class), a scale in
    ``scale_range``, log-normal jitters clamped to ±1 and a uniform angle. With probability 0.2, for at most
    two candidates per image, copies follow in a row along the box's short axis: 5 with gaps of 2–6 px and a
    sideways jitter of ±4 px for priors in the first half of the list ("dense" classes), else 3 with gaps of
    10–50 px (pixel sizes × ``gap_scale``). The points occupy squares of side 0.7·w of their prior that win the
    NMS (IoU ``nms_thr``) over all candidates, which must also fit inside the image. Returns ``(M, 5)`` boxes.
    """
    h, w = size
    n = points.shape[0]
    if n == 0:
        return torch.zeros(0, 5)
    g = generator
    index = torch.randint(0, shapes.shape[0], (n,), generator=g)
    prior = shapes[index]
    scale = torch.rand(n, generator=g) * (scale_range[1] - scale_range[0]) + scale_range[0]
    bw = scale * torch.exp((torch.randn(n, generator=g) * 0.4).clamp(-1, 1) * prior[:, 2])
    bh = bw * torch.exp((torch.randn(n, generator=g) * 0.4).clamp(-1, 1) * prior[:, 3])
    bw, bh = bw * prior[:, 0], bh * prior[:, 1]
    margin = min(50.0, min(h, w) / 8)
    xy = torch.rand(n, 2, generator=g) * (torch.tensor([w, h]) - 2 * margin) + margin
    angle = torch.rand(n, generator=g) * math.pi - math.pi / 2
    cand = torch.stack([xy[:, 0], xy[:, 1], bw, bh, angle], 1)
    score = bw * bh / (h * w) + 0.1
    # rows of copies (the reference's `adjboost`): at most 2 per image, each with probability 0.2
    row = torch.rand(n, generator=g) < 0.2
    row = torch.nonzero(row & (row.cumsum(0) <= 2)).reshape(-1)
    dense = index[row] < shapes.shape[0] // 2
    u, v = torch.rand(row.numel(), generator=g), torch.rand(row.numel(), generator=g)
    gap = torch.where(dense, u * 4 + 2, u * 40 + 10) * gap_scale
    dev = torch.where(dense, v * 8 - 4, torch.zeros_like(v)) * gap_scale
    a, bh_r = angle[row], bh[row]
    step = torch.stack(
        [(bh_r + gap) * torch.sin(-a) + dev * torch.cos(a), (bh_r + gap) * torch.cos(a) + dev * torch.sin(a)], 1
    )
    k = torch.arange(1, 6, dtype=torch.float32)
    real = k[None] <= torch.where(dense, 5, 3)[:, None]  # (R, 5): 5 copies dense, 3 sparse
    copies = torch.cat(
        [
            (cand[row, None, :2] + k[None, :, None] * step[:, None]),
            cand[row, None, 2:].expand(-1, 5, 3),
        ],
        -1,
    )[real]
    copy_score = (score[row, None] - 0.001 * k[None]).expand_as(real)[real]
    side = prior[:, 0] * 0.7
    occupied = torch.cat([points.float().cpu(), side[:, None], side[:, None], torch.zeros(n, 1)], 1)
    everything = torch.cat([occupied, cand, copies])
    score = torch.cat([torch.full((n,), 2.0), score, copy_score])
    keep = rotated_nms(everything, score, nms_thr)
    keep = keep[keep >= n]
    boxes = everything[keep]
    corners = obb_to_poly(boxes)
    inside = (corners.amin((1, 2)) >= 0) & (corners[..., 0].amax(1) <= w - 1) & (corners[..., 1].amax(1) <= h - 1)
    return boxes[inside]


def paint_synthetic(image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fill ``boxes`` on a copy of ``image`` with the image's maximum value (the reference's mask)."""
    if boxes.shape[0] == 0:
        return image.clone()
    _, alpha = _paint(boxes.cpu(), torch.ones(boxes.shape[0], 3), image.shape[-2], image.shape[-1])
    alpha = alpha.clamp(max=1).to(image)
    return image * (1 - alpha) + alpha * image.max()


# ---- strong augmentation of the student's real image ---------------------------------------------
def strong_augmentation(
    image: torch.Tensor,
    points: torch.Tensor,
    boxes: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The reference's ``strong_augmentation`` for one ``(C, H, W)`` image with ``(N, 2)`` points and optional
    ``(N, 5)`` boxes: a flip (horizontal, vertical, both or none, equally likely), a rotation by 1–19° about the
    image centre (``TF.rotate``, counter-clockwise on screen, nearest, fill 0), then a rescale by 0.8–1.2
    (rounded to 0.1) about the centre, cropped or zero-padded back to ``H × W``. Points leaving the image are
    dropped with their boxes; returns the image, kept points and boxes and the ``(N,)`` keep mask. (The
    reference also rounds the normalised image to integers; we do not.)"""
    _, h, w = image.shape
    flip = int(torch.randint(4, (1,), generator=generator))  # an index into FLIPS, or 3: none
    deg = int(torch.randint(1, 20, (1,), generator=generator))
    scale = round(float(torch.rand(1, generator=generator)) * 0.4 + 0.8, 1)
    n = points.shape[0]
    xy = points.float() if boxes is None else torch.cat([points.float(), boxes[:, :2].float()])
    angle = None if boxes is None else boxes[:, 4].float()
    if flip < len(FLIPS):
        image, xy = flip_image(image, FLIPS[flip]), flip_points(xy, (h, w), FLIPS[flip])
        if angle is not None and FLIPS[flip] != "diagonal":  # a mirror reverses the angle; both = a half-turn
            angle = -angle
    image = TF.rotate(image, deg, fill=0.0)
    theta = math.radians(deg)  # counter-clockwise on screen = −θ in image coordinates (y down)
    c, s = math.cos(theta), math.sin(theta)
    centre = xy.new_tensor([w / 2, h / 2])
    d = xy - centre
    xy = torch.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1) + centre
    sh, sw = int(h * scale), int(w * scale)
    resized = nn.functional.interpolate(image[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
    if scale < 1:  # centred on a zero canvas
        top, left = (h - sh) // 2, (w - sw) // 2
        image = image.new_zeros(image.shape)
        image[:, top : top + sh, left : left + sw] = resized
        xy = xy * scale + xy.new_tensor([left, top])
    else:  # centre crop
        top, left = (sh - h) // 2, (sw - w) // 2
        image = resized[:, top : top + h, left : left + w]
        xy = xy * scale - xy.new_tensor([left, top])
    pts = xy[:n]
    keep = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    if boxes is not None:
        boxes = torch.cat([xy[n:], boxes[:, 2:4].float() * scale, (angle - theta)[:, None]], 1)[keep]
    return image, pts[keep], boxes, keep


# ---- phase 2: MIL bags ---------------------------------------------------------------------------
def mil_bags(
    boxes: torch.Tensor,
    ratios,
    min_scale: float,
    size: tuple[int, int],
    valid_iof: float = 0.7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bags of rescaled boxes around each coarse box (``fine_proposals_from_cfg``, ``fix_gen``).

    Sides are clamped to ≥ ``min_scale``, then width and height are scaled by every pair of
    ``ratios`` (centre and angle kept): ``(G, R², 5)`` proposals, valid where the axis-aligned
    ``(cx, cy, w, h)`` box lies at least ``valid_iof`` inside the image (as the reference checks).
    """
    r = torch.as_tensor(ratios, dtype=boxes.dtype, device=boxes.device)
    rw, rh = torch.meshgrid(r, r, indexing="ij")
    wh = boxes[:, None, 2:4].clamp_min(min_scale) * torch.stack([rw.reshape(-1), rh.reshape(-1)], -1)[None]
    g, u = boxes.shape[0], wh.shape[1]
    bags = torch.cat([boxes[:, None, :2].expand(g, u, 2), wh, boxes[:, None, 4:].expand(g, u, 1)], -1)
    inside = clip_boxes_to_image(box_convert(bags[..., :4], "cxcywh", "xyxy"), size)
    iof = (inside[..., 2:] - inside[..., :2]).prod(-1) / (bags[..., 2] * bags[..., 3]).clamp_min(1e-6)
    return bags, iof > valid_iof


def negative_boxes(
    coarse: torch.Tensor,
    size: tuple[int, int],
    num: int,
    extent: float = 200.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MIL negatives as ``gen_negative_proposals`` builds them: ``x1 = U·0.8W``, ``y1 = U·0.8H``,
    ``x2 = x1 + U·extent``, ``y2 = y1 + U·extent`` (200 px there) and a uniform angle, read as
    ``(cx, cy, w, h, θ)`` (so centres in the top-left 80 % and sides ``x1 + U·extent``); weight 1 where
    the IoU with every coarse box is < 0.3. Returns ``(num, 5)`` boxes and ``(num,)`` weights."""
    h, w = size
    x1, y1 = torch.rand(num, generator=generator) * w * 0.8, torch.rand(num, generator=generator) * h * 0.8
    x2 = x1 + torch.rand(num, generator=generator) * extent
    y2 = y1 + torch.rand(num, generator=generator) * extent
    theta = torch.rand(num, generator=generator) * math.pi - math.pi / 2
    boxes = torch.stack([x1, y1, x2, y2, theta], 1).to(coarse.device)
    if coarse.shape[0] == 0:
        return boxes, torch.ones(num, dtype=torch.bool, device=coarse.device)
    return boxes, (rotated_iou(boxes, coarse.detach().float()) < 0.3).all(1)


def gfocal_loss(p: torch.Tensor, q: torch.Tensor, w: torch.Tensor | float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """The reference's bag loss: ``−Σ_c (p−q)² · [q log p + (1−q) log(1−p)] · w`` per row."""
    return -((p - q) ** 2 * (q * (p + eps).log() + (1 - q) * (1 - p + eps).log()) * w).sum(-1)


def bag_scores(cls_logits: torch.Tensor, ins_logits: torch.Tensor, valid: torch.Tensor) -> tuple:
    """Per proposal ``σ(cls)`` and instance weights: softmax over the bag, masked to valid members and
    L1-renormalised; their product summed over the bag is the bag score (``mil_bag_training``)."""
    cls = cls_logits.sigmoid()
    ins = ins_logits.softmax(1) * valid[..., None]
    ins = ins / ins.sum(1, keepdim=True).clamp_min(1e-12)
    return cls, ins


def merge_bag(
    proposals: torch.Tensor, scores: torch.Tensor, coarse: torch.Tensor, top_k: int, beta: float, size: tuple[int, int]
) -> torch.Tensor:
    """Final boxes (``mil_bag_selection_single``): the score-weighted mean of each bag's ``top_k``
    proposals, centre clamped to the image, then ``(1−β)·merged + β·coarse``."""
    top, idx = scores.topk(min(top_k, scores.shape[1]), dim=1)
    weight = top / (top.sum(1, keepdim=True) + 1e-8)
    merged = (proposals.gather(1, idx[..., None].expand(-1, -1, 5)) * weight[..., None]).sum(1)
    merged = torch.cat([merged[:, :1].clamp(0, size[1]), merged[:, 1:2].clamp(0, size[0]), merged[:, 2:]], 1)
    return (1 - beta) * merged + beta * coarse


def focal_cost(logits: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0, eps: float = 1e-12) -> torch.Tensor:
    """mmdet ``FocalLossCost`` (weight 1): ``−α(1−p)^γ log p + (1−α)p^γ log(1−p)`` with ``p = σ(logit)``;
    lower for higher scores."""
    p = logits.sigmoid()
    return -(p + eps).log() * alpha * (1 - p) ** gamma + (1 - p + eps).log() * (1 - alpha) * p**gamma


def point_outside(boxes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The reference's ``InsiderCost`` (weight 1): 1 where the point lies outside ``cx ± w/2, cy ± h/2`` of
    the box (its angle is ignored there), else 0."""
    return ((points - boxes[..., :2]).abs() > boxes[..., 2:4] / 2).any(-1).to(boxes.dtype)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """``θ_t ← α·θ_t + (1−α)·θ_s`` for parameters (the reference's ``update_teacher_model``); buffers
    (BatchNorm statistics) are copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


class PointTeacher(nn.Module, HubMixin, library_name="tinydet", paper_url="https://arxiv.org/abs/2412.05837"):
    """Student :class:`RotatedFCOS` + EMA teacher trained from points; see the module docstring."""

    def __init__(self, config: PointTeacherConfig):
        super().__init__()
        if not config.classes:
            raise ValueError("classes must name at least one class")
        self.config = config
        self.student = RotatedFCOS(
            config.num_classes,
            config.backbone,
            config.fpn_channels,
            config.feat_channels,
            config.stacked_convs,
            mil_channels=config.mil_channels,
        )
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.normalize = PixelNormalize(config.pixel_mean, config.pixel_std)
        shapes = torch.tensor(TINY_SHAPES if config.shape_list is None else config.shape_list, dtype=torch.float32)
        if shapes.ndim != 2 or shapes.shape[0] == 0 or shapes.shape[1] != 4:
            raise ValueError(
                f"shape_list must hold (w, h, dw, dr) rows, got shape {tuple(shapes.shape)} "
                "(tinydet.point_teacher.shape_priors builds them from typical object sizes)"
            )
        self.register_buffer("shapes", shapes, persistent=False)

    def train(self, mode: bool = True) -> PointTeacher:
        super().train(mode)
        self.teacher.eval()  # the EMA teacher always runs with its (copied) BatchNorm statistics
        return self

    def _norm(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, 32, "backbone's stride")
        return self.normalize(images)

    def _check_points(self, points, labels, batch: int):
        if len(points) != batch or len(labels) != batch:
            raise ValueError("give one (N, 2) points tensor and one (N,) labels tensor per image")
        for i, (p, lab) in enumerate(zip(points, labels)):
            if p.ndim != 2 or p.shape[-1] != 2 or lab.shape != p.shape[:1]:
                raise ValueError(
                    f"image {i}: points must be (N, 2) with (N,) labels, got {tuple(p.shape)} and {tuple(lab.shape)}"
                )
            if not torch.isfinite(p).all():
                raise ValueError(f"image {i}: points hold NaN or infinite values")
            if lab.numel() and (lab.min() < 0 or lab.max() >= self.config.num_classes):
                raise ValueError(f"image {i}: labels must lie in [0, {self.config.num_classes})")

    # ---- losses --------------------------------------------------------------------------------
    def _point_cls_loss(self, out: dict, points, labels) -> torch.Tensor:
        """Focal loss with one grid location per point positive: the lowest focal cost for the point's label
        + L1 distance (the reference's ``assigner``, ``TopkAssigner`` topk 1)."""
        target = torch.zeros_like(out["cls"])
        for i, (p, lab) in enumerate(zip(points, labels)):
            if p.shape[0]:
                lab = lab.to(out["cls"].device).long()
                cost = focal_cost(out["cls"][i].detach()[:, lab]) + torch.cdist(out["points"], p.to(out["points"]), p=1)
                rows, cols = topk_assign(cost, 1)
                target[i, rows, lab[cols]] = 1
        num_pos = max(float(target.sum()), 1.0)
        return sigmoid_focal_loss(out["cls"], target, 0.25, 2.0, reduction="sum") / num_pos

    def _box_losses(self, out: dict, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre-ness-weighted rotated IoU loss (``Σ c·(−log IoU) / Σ c`` with the centre-ness targets ``c``)
        and centre-ness BCE at the 3 grid points nearest (L1) each box centre, each grid point regressing one
        box (``syn_assigner``/``pseudo_assigner``: ``TopkAssigner`` topk 3, point cost only)."""
        preds, targets, ctr_pred, ctr_tgt = [], [], [], []
        for i, b in enumerate(boxes):
            if b.shape[0] == 0:
                continue
            b = b.to(out["points"])
            rows, cols = topk_assign(torch.cdist(out["points"], b[:, :2], p=1), 3)
            preds.append(out["boxes"][i, rows])
            targets.append(b[cols])
            ctr_pred.append(out["centerness"][i, rows])
            ctr_tgt.append(centerness_target(obb_to_distance(out["points"][rows], targets[-1])))
        if not preds:
            zero = out["dist"].sum() * 0
            return zero, zero
        pred, tgt, ctr = torch.cat(preds), torch.cat(targets), torch.cat(ctr_tgt)
        loss_bbox = (rotated_iou_loss(pred, tgt, "log") * ctr).sum() / ctr.sum().clamp_min(1e-6)
        ctr_pred = torch.cat(ctr_pred)  # targets from float32 geometry: the loss takes the model's dtype
        loss_ctr = nn.functional.binary_cross_entropy_with_logits(ctr_pred, ctr.to(ctr_pred.dtype))
        return loss_bbox, loss_ctr

    def _mil(
        self, model, feature, coarse: list[torch.Tensor], labels, size, classify: bool = True, negatives: bool = True
    ):
        """Bag regression towards the ``coarse`` boxes, then (``classify``) MIL classification of the refined
        bags; returns ``(loss_mil_bbox, loss_mil_bags, merged and blended boxes per image)``."""
        cfg = self.config
        bags = [mil_bags(c, cfg.bag_ratios, cfg.bag_min_scale, size, cfg.bag_valid_iof) for c in coarse]
        u = len(cfg.bag_ratios) ** 2
        refined = model.mil_head.refine(feature, [b.reshape(-1, 5) for b, _ in bags], size)
        valid = torch.cat([v.reshape(-1) for _, v in bags]).float()
        reference = torch.cat([c.repeat_interleave(u, 0) for c in coarse]).to(refined)
        loss_bbox = bag_loss(refined, reference, valid, cfg.mil_dn_hyper)
        g = sum(c.shape[0] for c in coarse)
        if not classify or g == 0:
            return loss_bbox, refined.sum() * 0, [c.clone() for c in coarse]
        refined_lists = [r.detach() for r in torch.split(refined, [b.shape[0] * u for b, _ in bags])]
        cls, ins = model.mil_head.classify(feature, refined_lists)
        valid = valid.reshape(g, u)
        cls_p, ins_w = bag_scores(cls.reshape(g, u, -1), ins.reshape(g, u, -1), valid)
        lab = torch.cat(labels).to(cls.device).long()
        bag = (cls_p * ins_w).sum(1)
        has_valid = (valid.sum(1) > 0).float()[:, None]
        num_bags = max(float(has_valid.sum()), 1.0)
        loss_bags = 0.25 * gfocal_loss(bag, nn.functional.one_hot(lab, cfg.num_classes).to(bag), has_valid).sum()
        if negatives:
            neg = [negative_boxes(c, size, cfg.mil_neg_samples, cfg.mil_neg_extent) for c in coarse]
            neg_cls, _ = model.mil_head.classify(feature, [n for n, _ in neg])
            neg_w = torch.cat([w for _, w in neg]).float()[:, None].to(neg_cls)
            loss_bags = loss_bags + 0.75 * gfocal_loss(neg_cls.sigmoid(), torch.zeros_like(neg_cls), neg_w).sum()
        pick = (cls_p * ins_w).gather(2, lab[:, None, None].expand(-1, u, 1))[..., 0].detach()
        merged = merge_bag(
            torch.cat(refined_lists).reshape(g, u, 5), pick, torch.cat(coarse).to(refined), cfg.top_k, cfg.beta, size
        )
        return loss_bbox, loss_bags / num_bags, list(torch.split(merged, [c.shape[0] for c in coarse]))

    def _augmented(self, x: torch.Tensor, points, labels, boxes=None):
        """The student's pass over the strongly augmented images (:func:`strong_augmentation` per image) and the
        points, labels and (optional) boxes carried along, as the reference's ``loss_pseudo`` inputs."""
        images, pts, labs, bxs = [], [], [], []
        for i in range(x.shape[0]):
            b = None if boxes is None else boxes[i].to(x)
            image, p, b, keep = strong_augmentation(x[i], points[i].to(x), b)
            images.append(image), pts.append(p), labs.append(labels[i].to(keep.device)[keep]), bxs.append(b)
        return self.student(torch.stack(images)), pts, labs, bxs

    @torch.no_grad()
    def coarse_boxes(self, out: dict, points, labels) -> list[torch.Tensor]:
        """The teacher's coarse pseudo boxes (``_gnerate_pseudo_single`` with ``FUSETopkAssigner``): the 5 grid
        points nearest each labelled point (L1, ``num_pre``), of which the ``top_k`` with the lowest
        :func:`focal_cost` for the point's label + :func:`point_outside` cost; their decoded boxes averaged with
        their class scores as weights (centred on the points if ``centre_at_point``)."""
        res = []
        for i, (p, lab) in enumerate(zip(points, labels)):
            if p.shape[0] == 0:
                res.append(out["boxes"].new_zeros(0, 5))
                continue
            p = p.to(out["points"])
            near = nearest_points(out["points"], p, 5)  # (G, 5)
            logits = out["cls"][i][near, lab.to(near.device).long()[:, None]]  # (G, 5)
            boxes = out["boxes"][i][near]  # (G, 5, 5)
            cost = focal_cost(logits) + point_outside(boxes, p[:, None])
            k = cost.topk(min(self.config.top_k, near.shape[1]), dim=1, largest=False).indices
            score = logits.sigmoid().gather(1, k)
            chosen = boxes.gather(1, k[..., None].expand(-1, -1, 5))
            coarse = (chosen * score[..., None]).sum(1) / score.sum(1, keepdim=True).clamp_min(1e-12)
            if self.config.centre_at_point:
                coarse = torch.cat([p.to(coarse), coarse[:, 2:]], 1)
            res.append(coarse)
        return res

    def loss(self, images: torch.Tensor, points: list[torch.Tensor], labels: list[torch.Tensor]) -> dict:
        """Student losses for one batch (phase by ``self.step``); call :meth:`update_teacher` after the step."""
        cfg = self.config
        self._check_points(points, labels, images.shape[0])
        size = tuple(images.shape[-2:])
        x = self._norm(images)
        b = images.shape[0]
        with torch.no_grad():  # both phases train the MIL head on bags around the teacher's coarse boxes
            coarse = self.coarse_boxes(self.teacher(x), points, labels)
        if int(self.step) < cfg.burn_in_steps:  # phase 1: synthetic boxes teach regression
            syn = [
                synthetic_boxes(
                    p.cpu(),
                    size,
                    self.shapes.cpu(),
                    cfg.syn_scale_range,
                    cfg.syn_nms_thr,
                    gap_scale=cfg.syn_gap_scale,
                ).to(x)
                for p in points
            ]
            syn_images = torch.stack([paint_synthetic(im, s) for im, s in zip(images, syn)])
            both = self.student(torch.cat([self._norm(syn_images), x]))  # one pass, as the reference
            out_syn = {k: v if k == "points" else v[:b] for k, v in both.items()}
            out = {k: v if k == "points" else v[b:] for k, v in both.items()}
            loss_bbox, loss_ctr = self._box_losses(out_syn, syn)
            real = self._augmented(x, points, labels)[:3] if cfg.strong_aug else (out, points, labels)
            loss_cls = self._point_cls_loss(*real)
            # the MIL head learns to regress rescaled synthetic boxes back onto them ...
            mil_bbox, _, _ = self._mil(self.student, out_syn["feature"], syn, None, size, classify=False)
            # ... and to classify bags around the teacher's coarse boxes
            _, mil_bags_loss, _ = self._mil(self.student, out["feature"], coarse, labels, size)
        else:  # phase 2: teacher coarse boxes → MIL refinement → student regression
            out = self.student(x)
            mil_bbox, mil_bags_loss, pseudo = self._mil(self.student, out["feature"], coarse, labels, size)
            pseudo = [p.detach() for p in pseudo]
            if cfg.strong_aug:
                out, points, labels, pseudo = self._augmented(x, points, labels, pseudo)
            loss_cls = self._point_cls_loss(out, points, labels)
            loss_bbox, loss_ctr = self._box_losses(out, pseudo)
        return {
            "loss_cls": loss_cls,
            "loss_bbox": loss_bbox,
            "loss_centerness": loss_ctr,
            "loss_mil_bbox": cfg.alpha_mil_bbox * mil_bbox,
            "loss_mil_bags": cfg.alpha_mil_bags * mil_bags_loss,
        }

    def training_loss(self, batch: dict) -> dict:
        if "points" not in batch:
            raise ValueError("Point Teacher trains from point labels: wrap the dataset in tinydet.data.PointLabels")
        return self.loss(batch["image"], batch["points"], batch["labels"])

    def after_step(self) -> None:
        """EMA teacher update and step count (the reference updates before each step; same sequence)."""
        ema_update(self.teacher, self.student, self.config.ema_alpha)
        self.step += 1

    # ---- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def pseudo_boxes(
        self, images: torch.Tensor, points: list[torch.Tensor], labels: list[torch.Tensor], refine: bool = True
    ) -> list[torch.Tensor]:
        """Boxes for labelled points: the teacher's coarse boxes, MIL-refined and blended (``refine``)."""
        self._check_points(points, labels, images.shape[0])
        self.teacher.eval()
        out = self.teacher(self._norm(images))
        coarse = self.coarse_boxes(out, points, labels)
        if not refine:
            return [regularize_boxes(c, self.config.angle_version) for c in coarse]
        _, _, merged = self._mil(
            self.teacher, out["feature"], coarse, labels, tuple(images.shape[-2:]), negatives=False
        )
        return [regularize_boxes(m, self.config.angle_version) for m in merged]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_thr: float | None = None) -> list[dict]:
        """Teacher detections (the reference tests with the teacher): score threshold, rotated NMS."""
        cfg = self.config
        thr = cfg.score_thr if score_thr is None else score_thr
        self.teacher.eval()
        out = self.teacher(self._norm(images))
        res = []
        for i in range(images.shape[0]):
            scores = out["cls"][i].sigmoid() * out["centerness"][i].sigmoid()[:, None]
            idx, lab = torch.nonzero(scores > thr, as_tuple=True)
            res.append(
                select_detections(
                    out["boxes"][i][idx], scores[idx, lab], lab, cfg.nms_iou_thr, cfg.max_per_img, cfg.angle_version
                )
            )
        return res
