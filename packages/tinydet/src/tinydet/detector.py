"""``RotatedDetector``: Rotated RetinaNet or DCFL (backbone → FPN → head), losses, inference, save/load."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from labcore.hub import HubMixin
from labcore.rotated import batched_rotated_nms, check_boxes, regularize_boxes, rotated_iou_loss
from labcore.validate import check_finite
from tinydet.assign import coarse_to_fine_assign, max_iou_assign
from tinydet.coder import DeltaXYWHACoder, grid_anchors
from tinydet.data import AITOD_CLASSES
from tinydet.model import FPN, DCFLHead, PixelNormalize, RetinaHead, build_backbone, dynamic_prior_shift

IMAGE_RANGE_SLACK = 0.5


def check_images(images: torch.Tensor, min_side: int, stride_name: str, remedy: str = "") -> torch.Tensor:
    """Raise a clear error unless ``images`` is a finite float ``(B, 3, H, W)`` tensor in ``[0, 1]`` with both
    sides ≥ ``min_side`` (uint8 or 0–255 images would give a different detector output, not an error)."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) float tensor in [0, 1], got {shape}")
    if min(images.shape[-2:]) < min_side:
        raise ValueError(
            f"images of {tuple(images.shape[-2:])} are smaller than the {stride_name} {min_side}; "
            f"pad or resize them to at least {min_side}×{min_side}{remedy}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"images must be float in [0, 1], got {images.dtype}; convert 8-bit images with x.float() / 255"
        )
    check_finite(images, "images")
    lo, hi = (float(v) for v in torch.aminmax(images))
    if lo < -IMAGE_RANGE_SLACK or hi > 1 + IMAGE_RANGE_SLACK:  # slack: resampling overshoot of [0, 1] images
        raise ValueError(
            f"images must be float in [0, 1] (the detector normalises them itself), got values in "
            f"[{lo:.3g}, {hi:.3g}]; divide 0-255 images by 255 and pass them un-normalised"
        )
    return images


def select_detections(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, nms_iou_thr: float, max_per_img: int, version: str
) -> dict:
    """One image's detections from scored candidate boxes: non-finite or empty boxes dropped, class-aware
    rotated NMS, the ``max_per_img`` best, angles regularised to ``version``."""
    ok = torch.isfinite(boxes).all(1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
    keep = batched_rotated_nms(boxes, scores, labels, nms_iou_thr)[:max_per_img]
    return {"boxes": regularize_boxes(boxes[keep], version), "scores": scores[keep], "labels": labels[keep]}


def clean_targets(boxes: torch.Tensor, labels: torch.Tensor, i: int, num_classes: int, device) -> tuple:
    """Checked gt boxes/labels of image ``i`` on ``device``; zero-size boxes (unmatchable) are dropped."""
    boxes = check_boxes(boxes.to(device=device, dtype=torch.float32), f"gt boxes of image {i}")
    labels = labels.to(device).long()
    if labels.shape != boxes.shape[:1]:
        raise ValueError(f"image {i} has {boxes.shape[0]} boxes but labels of shape {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels of image {i} must lie in [0, {num_classes}), got {labels.tolist()}")
    sized = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    return boxes[sized], labels[sized]


def fpn_features(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The FPN maps (strides ``model.config.strides``) of normalised ``images``: the ``features`` method
    of both detectors."""
    check_images(images, model.config.strides[-1], "largest stride", ", or use fewer FPN levels (num_outs)")
    return model.neck(model.backbone(model.normalize(images)))


@dataclass
class DetectorConfig:
    """Defaults follow the DCFL AI-TOD-R config (R-50 FPN P3–P7, one anchor of 4·stride, le135 deltas,
    focal + rotated IoU loss, C2F assigner topk 16 / topq 12 / gauss_thr 0.8, NMS 0.4)."""

    classes: list[str] = field(default_factory=lambda: list(AITOD_CLASSES))
    head: str = "dcfl"  # "dcfl" or "retina"
    backbone: str = "resnet50"
    frozen_stages: int = 1  # ResNet stem + layer1 frozen (mmdet frozen_stages=1)
    norm_requires_grad: bool = False  # BatchNorm affine frozen too (norm_cfg requires_grad=False); stats always
    fpn_channels: int = 256
    num_outs: int = 5
    feat_channels: int = 256
    stacked_convs: int = 4
    dilation_rate: int = 3
    head_norm: str | None = None  # None as in the paper; "gn" (GroupNorm) trains faster from scratch
    octave_base_scale: float = 4.0
    angle_version: str = "le135"
    # assigners
    topk: int = 16
    topq: int = 12
    gauss_thr: float = 0.8
    prior_offset_scale: float = 0.5  # anchor shift = mean DCN offset × stride × this (spec: stride/2)
    # boxes whose IoU the C2F fine stage scores: "reference" = r_dcfl_head/C2FAssigner's (deltas decoded
    # from the shifted priors, angle delta in radians); "loss" = the boxes the loss and inference use
    assigner_boxes: str = "reference"
    pos_iou_thr: float = 0.5
    neg_iou_thr: float = 0.4
    # losses
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    iou_loss_mode: str = "log"
    # inference
    nms_pre: int = 3000
    score_thr: float = 0.05
    nms_iou_thr: float = 0.4
    max_per_img: int = 3000  # the reference's test_cfg (the metric then keeps 1500 per class)
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def tiny(cls, classes, head: str = "dcfl", **kw) -> DetectorConfig:
        """A small CPU configuration (tiny conv backbone, 32-channel FPN P3–P5, 3 GroupNorm head convs)."""
        base = dict(
            classes=list(classes),
            head=head,
            backbone="tiny",
            fpn_channels=32,
            num_outs=3,
            feat_channels=32,
            stacked_convs=3,
            topk=9,
            topq=6,
            head_norm="gn",
        )
        return cls(**{**base, **kw})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def strides(self) -> list[int]:
        return [8 * 2**i for i in range(self.num_outs)]

    def validate(self) -> None:
        if self.head not in ("dcfl", "retina"):
            raise ValueError(f"unknown head {self.head!r}; use 'dcfl' or 'retina'")
        if not self.classes:
            raise ValueError("classes must name at least one class")
        if self.assigner_boxes not in ("reference", "loss"):
            raise ValueError(f"unknown assigner_boxes {self.assigner_boxes!r}; use 'reference' or 'loss'")


class RotatedDetector(nn.Module, HubMixin, library_name="tinydet", paper_url="https://arxiv.org/abs/2412.11582"):
    """Single-stage oriented detector. ``head='retina'`` is Rotated RetinaNet (max-IoU assignment);
    ``head='dcfl'`` adds the dilated/deformable head, dynamic prior and coarse-to-fine assigner.

    ``save_pretrained`` writes keys ``backbone.*``, ``neck.*``, ``bbox_head.*``."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = build_backbone(config.backbone, 3, config.frozen_stages, config.norm_requires_grad)
        self.neck = FPN(self.backbone.out_channels, config.fpn_channels, config.num_outs)
        if config.head == "dcfl":
            self.bbox_head = DCFLHead(
                config.num_classes,
                config.fpn_channels,
                config.feat_channels,
                config.stacked_convs,
                config.dilation_rate,
                config.head_norm,
            )
        else:
            self.bbox_head = RetinaHead(
                config.num_classes, config.fpn_channels, config.feat_channels, config.stacked_convs, config.head_norm
            )
        self.coder = DeltaXYWHACoder(config.angle_version)
        self.assigner_coder = DeltaXYWHACoder(config.angle_version, norm_factor=None)
        self.normalize = PixelNormalize(config.pixel_mean, config.pixel_std)

    # ---- forward -------------------------------------------------------------------------------
    features = fpn_features

    def forward(self, images: torch.Tensor):
        """Per-level ``(cls logits (B,C,H,W), deltas (B,5,H,W), DCN offsets (B,18,H,W) or None)``."""
        return self.bbox_head(self.features(images))

    # ---- training ------------------------------------------------------------------------------
    def loss(self, images: torch.Tensor, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> dict:
        """Focal loss over non-ignored anchors + rotated IoU loss on positives (decoded boxes), both
        averaged over the number of positives in the batch."""
        if len(gt_boxes) != images.shape[0] or len(gt_labels) != images.shape[0]:
            raise ValueError("give one boxes tensor and one labels tensor per image")
        return self.head_loss(self(images), gt_boxes, gt_labels)

    def head_loss(self, outputs, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> dict:
        """:meth:`loss` from the head's ``outputs`` (``self(images)``). As mmdet's ``num_total_pos``, the
        normaliser counts every image's positives but at least one per image."""
        flat = self.flat_outputs(outputs)
        _, cls, reg, decoded, _ = flat
        targets, weights, pos_pred, pos_gt = [], [], [], []
        for i, (assigned, boxes, labels) in enumerate(self.assign_targets(flat, gt_boxes, gt_labels)):
            pos = assigned > 0
            onehot = torch.zeros_like(cls[i])
            onehot[pos, labels[assigned[pos] - 1]] = 1
            targets.append(onehot)
            weights.append((assigned >= 0).float())
            pos_pred.append(decoded[i][pos])
            pos_gt.append(boxes[assigned[pos] - 1])
        num_pos = sum(max(p.shape[0], 1) for p in pos_pred)
        focal = sigmoid_focal_loss(
            cls, torch.stack(targets), self.config.focal_alpha, self.config.focal_gamma, reduction="none"
        )
        loss_cls = (focal * torch.stack(weights)[..., None]).sum() / num_pos
        pred, tgt = torch.cat(pos_pred), torch.cat(pos_gt)
        loss_bbox = (
            rotated_iou_loss(pred, tgt, self.config.iou_loss_mode).sum() / num_pos if pred.numel() else reg.sum() * 0
        )
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "num_pos": torch.tensor(float(num_pos))}

    def flat_outputs(self, outputs) -> tuple:
        """The head's ``outputs`` over all levels: anchors ``(A, 5)``, class logits ``(B, A, C)``, deltas
        ``(B, A, 5)``, boxes decoded from the anchors ``(B, A, 5)`` (those the loss and inference use) and
        DCFL's dynamic-prior shift ``(B, A, 2)`` (``None`` for RetinaNet)."""
        cls, reg, offsets = outputs
        b = cls[0].shape[0]
        sizes = [tuple(c.shape[-2:]) for c in cls]
        anchors = torch.cat(grid_anchors(sizes, self.config.strides, self.config.octave_base_scale, cls[0].device))
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(b, -1, self.config.num_classes) for c in cls], 1)
        flat_reg = torch.cat([r.permute(0, 2, 3, 1).reshape(b, -1, 5) for r in reg], 1)
        shift = None
        if offsets[0] is not None:
            shift = dynamic_prior_shift(offsets, self.config.strides, self.config.prior_offset_scale)
        return anchors, flat_cls, flat_reg, self.coder.decode(anchors[None], flat_reg), shift

    def assign_targets(self, flat, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> list[tuple]:
        """Per image ``(assigned (A,), gt boxes, gt labels)`` (``assign.py`` codes; gts cleaned by
        :func:`clean_targets`) for :meth:`flat_outputs` ``flat``."""
        anchors, cls, reg, decoded, shift = flat
        out = []
        for i, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels)):
            boxes, labels = clean_targets(boxes, labels, i, self.config.num_classes, anchors.device)
            if self.config.head == "dcfl":
                priors = anchors.clone()
                priors[:, :2] += shift[i]  # dynamic prior (§4.2)
                if self.config.assigner_boxes == "reference":
                    # r_dcfl_head passes the shifted priors to C2FAssigner, which decodes the deltas from
                    # them with its default coder: angle delta read in radians (norm_factor=None), not ×π
                    pred = self.assigner_coder.decode(priors, reg[i].detach())
                else:
                    pred = decoded[i].detach()
                assigned = coarse_to_fine_assign(
                    priors, pred, cls[i], boxes, self.config.topk, self.config.topq, self.config.gauss_thr
                )
            else:
                assigned = max_iou_assign(anchors, boxes, self.config.pos_iou_thr, self.config.neg_iou_thr)
            out.append((assigned, boxes, labels))
        return out

    def training_loss(self, batch: dict) -> dict:
        return self.loss(batch["image"], batch["boxes"], batch["labels"])

    # ---- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_thr: float | None = None) -> list[dict]:
        """Detections per image: ``{"boxes": (N,5) xywha in the angle version, "scores", "labels"}``."""
        cfg = self.config
        was_training = self.training
        self.eval()
        outputs = self(images)
        self.train(was_training)
        return self.decode(outputs, cfg.score_thr if score_thr is None else score_thr, cfg.nms_iou_thr, cfg.max_per_img)

    def decode(self, outputs, score_thr: float, nms_iou_thr: float, max_per_img: int) -> list[dict]:
        """Per level the ``nms_pre`` best locations, scores above ``score_thr``, decoded boxes,
        class-aware rotated NMS, at most ``max_per_img`` per image (also the proposals of
        :class:`~tinydet.two_stage.TwoStageDetector`)."""
        cfg = self.config
        cls, reg = outputs[0], outputs[1]
        sizes = [tuple(c.shape[-2:]) for c in cls]
        level_anchors = grid_anchors(sizes, cfg.strides, cfg.octave_base_scale, cls[0].device)
        out = []
        for i in range(cls[0].shape[0]):
            boxes, scores, labels = [], [], []
            for c, r, a in zip(cls, reg, level_anchors):
                s = c[i].permute(1, 2, 0).reshape(-1, cfg.num_classes).sigmoid()
                d = r[i].permute(1, 2, 0).reshape(-1, 5)
                if s.shape[0] > cfg.nms_pre:
                    top = s.max(1).values.topk(cfg.nms_pre).indices
                    s, d, a = s[top], d[top], a[top]
                anchor_idx, label = torch.nonzero(s > score_thr, as_tuple=True)
                boxes.append(self.coder.decode(a[anchor_idx], d[anchor_idx]))
                scores.append(s[anchor_idx, label])
                labels.append(label)
            out.append(
                select_detections(
                    torch.cat(boxes), torch.cat(scores), torch.cat(labels), nms_iou_thr, max_per_img, cfg.angle_version
                )
            )
        return out
