"""``TwoStageDetector``: DCFL (or RetinaNet) as the oriented RPN + a rotated-RoIAlign box head.

The paper's headline entry (AI-TOD-R, arXiv 2412.11582) is DCFL on Oriented R-CNN: the RPN's label
assignment is the coarse-to-fine assigner, the second stage is mmrotate's ``OrientedStandardRoIHead``
with a ``RotatedShared2FCBBoxHead``. Here the RPN is the single-stage head of
:class:`~tinydet.detector.RotatedDetector` with one class ("object"), its decoded top boxes after NMS
are the proposals, and the RoI head follows the reference config (``aitodr_oriented_rcnn_r50.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labcore.rotated import regularize_boxes
from tinydet.assign import max_iou_assign
from tinydet.coder import DeltaXYWHACoder
from tinydet.detector import DetectorConfig, RotatedDetector, clean_targets, select_detections
from tinydet.pretrained import DataclassPretrained
from tinydet.roi import multilevel_roi_align


@dataclass
class TwoStageConfig(DetectorConfig):
    """RPN fields as :class:`DetectorConfig` (``head`` picks DCFL or RetinaNet); RoI-head defaults from
    the reference: proposals nms_pre 3000 / NMS 0.8 / 3000 per image; MaxIoU 0.5/0.5, no low-quality
    matches; 512 RoIs, 25 % positives, gts added as proposals; Shared2FC 1024; class-agnostic deltas
    (stds 0.1, 0.1, 0.2, 0.2, 0.1, radians, edge swap); CE + smooth-L1 (β 1); test NMS 0.1."""

    rpn_max_per_img: int = 3000
    rpn_nms_iou_thr: float = 0.8
    roi_size: int = 7
    roi_levels: int = 4  # pooled from the first ≤ 4 FPN levels (the reference's featmap_strides)
    fc_channels: int = 1024
    rcnn_pos_iou_thr: float = 0.5
    rcnn_neg_iou_thr: float = 0.5
    rcnn_num_samples: int = 512
    rcnn_pos_fraction: float = 0.25
    rcnn_stds: tuple[float, float, float, float, float] = (0.1, 0.1, 0.2, 0.2, 0.1)
    rcnn_nms_iou_thr: float = 0.1
    smooth_l1_beta: float = 1.0

    @classmethod
    def tiny(cls, classes, head: str = "dcfl", **kw) -> TwoStageConfig:
        """The CPU configuration of :meth:`DetectorConfig.tiny` with 128-wide FCs and 128 RoIs per image."""
        return super().tiny(classes, head=head, **{"fc_channels": 128, "rcnn_num_samples": 128, **kw})

    def rpn_config(self) -> DetectorConfig:
        """The RPN: the single-stage detector's fields with one class."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(DetectorConfig)}
        return DetectorConfig(**{**fields, "classes": ["object"]})


def sample_proposals(
    proposals: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    num_classes: int,
    num: int = 512,
    pos_fraction: float = 0.25,
    pos_iou_thr: float = 0.5,
    neg_iou_thr: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Oriented R-CNN's RoI sampling: gts are added to the proposals, rotated max-IoU assignment without
    low-quality matches, then at most ``num·pos_fraction`` random positives and negatives to fill ``num``.

    Returns ``(rois (K,5), labels (K,) with num_classes = background, matched gt boxes (K,5))``
    (the gt boxes of negatives are the RoIs themselves, unused)."""
    rois = torch.cat([gt_boxes, proposals.to(gt_boxes)])
    assigned = max_iou_assign(rois, gt_boxes, pos_iou_thr, neg_iou_thr, match_low_quality=False)
    pos, neg = (assigned > 0).nonzero().squeeze(1), (assigned == 0).nonzero().squeeze(1)
    device = rois.device
    pos = pos[torch.randperm(pos.numel(), generator=generator).to(device)[: int(num * pos_fraction)]]
    neg = neg[torch.randperm(neg.numel(), generator=generator).to(device)[: num - pos.numel()]]
    keep = torch.cat([pos, neg])
    labels = torch.full((keep.numel(),), num_classes, dtype=torch.long, device=device)
    labels[: pos.numel()] = gt_labels[assigned[pos] - 1]
    matched = rois[keep].clone()
    matched[: pos.numel()] = gt_boxes[assigned[pos] - 1]
    return rois[keep], labels, matched


class RotatedBBoxHead(nn.Module):
    """mmrotate ``RotatedShared2FCBBoxHead``: flatten → 2 FC+ReLU → ``fc_cls`` (C + 1, background
    last) and class-agnostic ``fc_reg`` (5 deltas)."""

    def __init__(self, num_classes: int, in_channels: int, roi_size: int = 7, fc_channels: int = 1024):
        super().__init__()
        self.shared_fcs = nn.ModuleList(
            [nn.Linear(in_channels * roi_size * roi_size, fc_channels), nn.Linear(fc_channels, fc_channels)]
        )
        self.fc_cls = nn.Linear(fc_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_channels, 5)
        for fc in self.shared_fcs:  # mmdet's init: xavier FCs, N(0, 0.01) cls, N(0, 0.001) reg
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, roi_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = roi_feats.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


class RoIHead(nn.Module):
    """Rotated RoIAlign over the FPN levels + :class:`RotatedBBoxHead` (``roi_head.bbox_head.*`` keys)."""

    def __init__(self, config: TwoStageConfig):
        super().__init__()
        self.bbox_head = RotatedBBoxHead(config.num_classes, config.fpn_channels, config.roi_size, config.fc_channels)
        self.num_levels = min(config.roi_levels, config.num_outs)
        self.strides, self.roi_size = config.strides[: self.num_levels], config.roi_size

    def forward(self, features: list[torch.Tensor], rois: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = multilevel_roi_align(features[: self.num_levels], self.strides, rois, self.roi_size)
        return self.bbox_head(feats)


class TwoStageDetector(DataclassPretrained, nn.Module):
    """DCFL-RPN + rotated RoI head. ``predict`` returns what :meth:`RotatedDetector.predict` does.

    Keys: ``rpn.{backbone,neck,bbox_head}.*`` (the single-stage detector) and ``roi_head.bbox_head.*``."""

    config_class = TwoStageConfig
    tuple_fields = ("pixel_mean", "pixel_std", "rcnn_stds")

    def __init__(self, config: TwoStageConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.rpn = RotatedDetector(config.rpn_config())
        self.roi_head = RoIHead(config)
        self.coder = DeltaXYWHACoder(config.angle_version, stds=config.rcnn_stds, norm_factor=None, edge_swap=True)

    @torch.no_grad()
    def _proposals(self, outputs) -> list[torch.Tensor]:
        cfg = self.config
        dets = self.rpn.decode(outputs, 0.0, cfg.rpn_nms_iou_thr, cfg.rpn_max_per_img)
        return [d["boxes"] for d in dets]

    def loss(self, images: torch.Tensor, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> dict:
        """RPN losses (the single-stage head's, class-agnostic) + RoI head cross-entropy over the sampled
        RoIs and smooth-L1 on the positives' deltas, both averaged over the sampled RoIs (mmdet)."""
        if len(gt_boxes) != images.shape[0] or len(gt_labels) != images.shape[0]:
            raise ValueError("give one boxes tensor and one labels tensor per image")
        cfg = self.config
        features = self.rpn.features(images)
        outputs = self.rpn.bbox_head(features)
        cleaned = [
            clean_targets(b, lab, i, cfg.num_classes, images.device)
            for i, (b, lab) in enumerate(zip(gt_boxes, gt_labels))
        ]
        rpn = self.rpn.head_loss(outputs, [b for b, _ in cleaned], [torch.zeros_like(lab) for _, lab in cleaned])
        proposals = self._proposals(outputs)
        samples = [
            sample_proposals(
                p,
                regularize_boxes(b, cfg.angle_version),
                lab,
                cfg.num_classes,
                cfg.rcnn_num_samples,
                cfg.rcnn_pos_fraction,
                cfg.rcnn_pos_iou_thr,
                cfg.rcnn_neg_iou_thr,
            )
            for p, (b, lab) in zip(proposals, cleaned)
        ]
        rois = [s[0] for s in samples]
        labels, matched = torch.cat([s[1] for s in samples]), torch.cat([s[2] for s in samples])
        cls, deltas = self.roi_head(features, rois)
        num = max(labels.numel(), 1)
        loss_cls = F.cross_entropy(cls, labels, reduction="sum") / num
        pos = labels < cfg.num_classes
        target = self.coder.encode(torch.cat(rois)[pos], matched[pos])
        loss_bbox = F.smooth_l1_loss(deltas[pos], target, beta=cfg.smooth_l1_beta, reduction="sum") / num
        return {
            "loss_rpn_cls": rpn["loss_cls"],
            "loss_rpn_bbox": rpn["loss_bbox"],
            "loss_cls": loss_cls,
            "loss_bbox": loss_bbox,
            "num_pos": pos.sum().float(),
        }

    def training_loss(self, batch: dict) -> dict:
        return self.loss(batch["image"], batch["boxes"], batch["labels"])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_thr: float | None = None) -> list[dict]:
        """Detections per image: ``{"boxes": (N,5) xywha in the angle version, "scores", "labels"}``."""
        cfg = self.config
        score_thr = cfg.score_thr if score_thr is None else score_thr
        was_training = self.training
        self.eval()
        features = self.rpn.features(images)
        proposals = self._proposals(self.rpn.bbox_head(features))
        cls, deltas = self.roi_head(features, proposals)
        self.train(was_training)
        scores_all = cls.softmax(-1)[:, :-1]
        boxes_all = self.coder.decode(torch.cat(proposals), deltas) if deltas.numel() else deltas.new_zeros(0, 5)
        out = []
        counts = [p.shape[0] for p in proposals]
        for s, b in zip(scores_all.split(counts), boxes_all.split(counts)):
            idx, labels = torch.nonzero(s > score_thr, as_tuple=True)  # one box per class above threshold
            out.append(
                select_detections(
                    b[idx], s[idx, labels], labels, cfg.rcnn_nms_iou_thr, cfg.max_per_img, cfg.angle_version
                )
            )
        return out
