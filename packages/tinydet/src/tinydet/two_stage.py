"""``TwoStageDetector``: Oriented R-CNN with the DCFL oriented RPN, "DCFL on Oriented R-CNN" (arXiv 2412.11582).

The reference (Chasel-Tsui/AI-TOD-R ``configs/dcfl/aitodr_oriented_rcnn_r50.py``, 15.7 AP on AI-TOD-R)
is mmrotate's ``OrientedRCNN``: ResNet → FPN P2–P6 (max-pool P6) → ``OrientedRPN_DCFLHead`` (see
:mod:`tinydet.oriented_rpn`) → ``OrientedStandardRoIHead`` (rotated RoIAlign 7×7 from P2–P5,
``RotatedShared2FCBBoxHead``). Module names follow mmrotate's, so its checkpoints load
(:meth:`TwoStageDetector.from_mmrotate_checkpoint`); ``rpn="oriented"`` is the plain Oriented R-CNN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from labcore.checkpoint import load_state_dict_checked
from labcore.hub import HubMixin
from labcore.rotated import regularize_boxes
from tinydet.assign import max_iou_assign
from tinydet.coder import DeltaXYWHACoder
from tinydet.data import AITOD_CLASSES, DOTA_CLASSES
from tinydet.detector import clean_targets, fpn_features, select_detections
from tinydet.model import FPN, PixelNormalize, build_backbone
from tinydet.oriented_rpn import OrientedRPNHead, random_sample
from tinydet.pretrained import read_mmcv_checkpoint
from tinydet.roi import multilevel_roi_align


@dataclass
class TwoStageConfig:
    """Defaults: the AI-TOD-R DCFL Oriented R-CNN config. Backbone R-50 (stem + layer1 frozen, BatchNorm
    statistics and affine parameters frozen), FPN 256 channels P2–P6; RPN: one 8·stride anchor per
    location, DCFL assigner topk 16 / topq 12 / gauss_thr 1.0, 256 samples with ≤ 50 % positives,
    smooth-L1 β 1/9; proposals nms_pre 3000 per level, NMS 0.8, 3000 per image; RoI head: MaxIoU
    0.5/0.5 without low-quality matches, 512 RoIs with 25 % positives and the gts added; Shared2FC 1024;
    class-agnostic deltas (stds 0.1, 0.1, 0.2, 0.2, 0.1, radians, edge swap); CE + smooth-L1 β 1; test
    score 0.05, class-aware NMS 0.1, 3000 per image."""

    classes: list[str] = field(default_factory=lambda: list(AITOD_CLASSES))
    backbone: str = "resnet50"
    frozen_stages: int = 1
    norm_requires_grad: bool = False  # ResNet BatchNorm affine frozen too (AI-TOD-R; mmrotate's plain config: True)
    fpn_channels: int = 256
    num_outs: int = 5  # P2–P6
    angle_version: str = "le135"
    # RPN
    rpn: str = "dcfl"  # "dcfl" (OrientedRPN_DCFLHead) or "oriented" (OrientedRPNHead)
    rpn_feat_channels: int = 256
    rpn_anchor_scale: float = 8.0
    rpn_ratios: tuple[float, ...] = (1.0,)
    rpn_topk: int = 16
    rpn_topq: int = 12
    rpn_gauss_thr: float = 1.0
    rpn_pos_iou_thr: float = 0.7  # max-IoU assigner of the plain RPN
    rpn_neg_iou_thr: float = 0.3
    rpn_min_pos_iou: float = 0.3
    rpn_num_samples: int = 256
    rpn_pos_fraction: float = 0.5
    rpn_smooth_l1_beta: float = 1 / 9
    rpn_nms_pre: int = 3000
    rpn_nms_iou_thr: float = 0.8
    rpn_max_per_img: int = 3000
    rpn_min_bbox_size: float = 0.0
    # RoI head
    roi_size: int = 7
    roi_levels: int = 4  # pooled from P2–P5 (the reference's featmap_strides 4, 8, 16, 32)
    fc_channels: int = 1024
    rcnn_pos_iou_thr: float = 0.5
    rcnn_neg_iou_thr: float = 0.5
    rcnn_num_samples: int = 512
    rcnn_pos_fraction: float = 0.25
    rcnn_stds: tuple[float, float, float, float, float] = (0.1, 0.1, 0.2, 0.2, 0.1)
    smooth_l1_beta: float = 1.0
    score_thr: float = 0.05
    rcnn_nms_iou_thr: float = 0.1
    max_per_img: int = 3000
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def reference(cls, classes, rpn: str = "dcfl", **kw) -> TwoStageConfig:
        """The reference configuration of each RPN: AI-TOD-R's DCFL Oriented R-CNN (``rpn='dcfl'``, the
        defaults) or mmrotate's plain ``oriented_rcnn_r50_fpn_1x_dota_le90`` (``'oriented'``: 3 anchors of
        ratios 0.5, 1, 2, max-IoU RPN, proposals nms_pre 2000 / 2000 per image, le90, 2000 detections)."""
        base = {"classes": list(classes), "rpn": rpn}
        if rpn == "oriented":
            base |= dict(angle_version="le90", rpn_ratios=(0.5, 1.0, 2.0), rpn_nms_pre=2000, rpn_max_per_img=2000)
            base |= dict(max_per_img=2000, norm_requires_grad=True)
        return cls(**{**base, **kw})

    @classmethod
    def tiny(cls, classes, rpn: str = "dcfl", **kw) -> TwoStageConfig:
        """:meth:`reference` on the CPU: tiny conv backbone, 32-channel FPN P2–P6, 128-wide FCs, 128 RoIs per image."""
        base = dict(backbone="tiny", fpn_channels=32, rpn_feat_channels=32, fc_channels=128, rcnn_num_samples=128)
        return cls.reference(classes, rpn, **{**base, **kw})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def strides(self) -> list[int]:
        return [4 * 2**i for i in range(self.num_outs)]

    def validate(self) -> None:
        if self.rpn not in ("dcfl", "oriented"):
            raise ValueError(f"unknown rpn {self.rpn!r}; use 'dcfl' or 'oriented'")
        if not self.classes:
            raise ValueError("classes must name at least one class")
        if self.num_outs < 4:
            raise ValueError(f"num_outs must be ≥ 4 (P2–P5 from C2–C5), got {self.num_outs}")


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
    pos, neg = random_sample(assigned, num, pos_fraction, generator)
    rois = rois[torch.cat([pos, neg])]
    labels = torch.full((rois.shape[0],), num_classes, dtype=torch.long, device=rois.device)
    labels[: pos.numel()] = gt_labels[assigned[pos] - 1]
    matched = rois.clone()
    matched[: pos.numel()] = gt_boxes[assigned[pos] - 1]
    return rois, labels, matched


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


class TwoStageDetector(nn.Module, HubMixin, library_name="tinydet", paper_url="https://arxiv.org/abs/2412.11582"):
    """Oriented R-CNN (DCFL or plain RPN). ``predict`` returns what :meth:`RotatedDetector.predict` does.

    Keys as mmrotate's: ``backbone.*`` (mmdet ResNet), ``neck.{lateral,fpn}_convs.i.conv.*``,
    ``rpn_head.{rpn_conv,rpn_cls,rpn_reg}.*``, ``roi_head.bbox_head.{shared_fcs.0,shared_fcs.1,fc_cls,fc_reg}.*``."""

    def __init__(self, config: TwoStageConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = build_backbone(config.backbone, 2, config.frozen_stages, config.norm_requires_grad)
        self.neck = FPN(self.backbone.out_channels, config.fpn_channels, config.num_outs, extra="max_pool")
        self.rpn_head = OrientedRPNHead(config)
        self.roi_head = RoIHead(config)
        self.coder = DeltaXYWHACoder(config.angle_version, stds=config.rcnn_stds, norm_factor=None, edge_swap=True)
        self.normalize = PixelNormalize(config.pixel_mean, config.pixel_std)

    features = fpn_features  # the FPN maps P2–P6 of normalised images

    def loss(self, images: torch.Tensor, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> dict:
        """RPN losses (:meth:`OrientedRPNHead.loss`) + RoI head cross-entropy over the sampled RoIs and
        smooth-L1 on the positives' deltas, both averaged over the sampled RoIs (mmdet). Proposals come
        from the detached RPN outputs."""
        if len(gt_boxes) != images.shape[0] or len(gt_labels) != images.shape[0]:
            raise ValueError("give one boxes tensor and one labels tensor per image")
        cfg = self.config
        features = self.features(images)
        outputs = self.rpn_head(features)
        cleaned = [
            clean_targets(b, lab, i, cfg.num_classes, images.device)
            for i, (b, lab) in enumerate(zip(gt_boxes, gt_labels))
        ]
        losses = self.rpn_head.loss(outputs, [b for b, _ in cleaned], tuple(images.shape[-2:]))
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
            for (p, _), (b, lab) in zip(self.rpn_head.proposals(outputs), cleaned)
        ]
        rois = [s[0] for s in samples]
        labels, matched = torch.cat([s[1] for s in samples]), torch.cat([s[2] for s in samples])
        cls, deltas = self.roi_head(features, rois)
        num = max(labels.numel(), 1)
        pos = labels < cfg.num_classes
        target = self.coder.encode(torch.cat(rois)[pos], matched[pos])
        return {
            **losses,
            "loss_cls": F.cross_entropy(cls, labels, reduction="sum") / num,
            "loss_bbox": F.smooth_l1_loss(deltas[pos], target, beta=cfg.smooth_l1_beta, reduction="sum") / num,
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
        features = self.features(images)
        proposals = [p for p, _ in self.rpn_head.proposals(self.rpn_head(features))]
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

    @classmethod
    def from_mmrotate_checkpoint(
        cls, path, config: TwoStageConfig | None = None, map_location: str = "cpu"
    ) -> TwoStageDetector:
        """Load an mmrotate Oriented R-CNN ``.pth`` (AI-TOD-R's DCFL one or mmrotate's plain one).

        Without ``config`` it is read off the checkpoint (:func:`config_from_mmrotate`). Keys must match
        exactly: missing or unexpected keys and shape mismatches raise a ``CheckpointError`` listing
        them (old checkpoints without BatchNorm ``num_batches_tracked`` counters are accepted)."""
        state, meta = read_mmcv_checkpoint(path, map_location)
        model = cls(config or config_from_mmrotate(state, meta))
        own = model.state_dict()
        for k in own:
            if k.endswith("num_batches_tracked") and k not in state:
                state[k] = own[k]
        load_state_dict_checked(model, state)
        return model


def config_from_mmrotate(state: dict[str, torch.Tensor], meta: dict | None = None) -> TwoStageConfig:
    """The :class:`TwoStageConfig` an mmrotate Oriented R-CNN state dict was trained with, from its shapes
    (RPN kind, anchors per location, classes, widths, ResNet depth) and ``meta`` (``CLASSES``, the
    config text's ``angle_version``); thresholds are the reference's for that RPN kind."""
    meta = meta or {}

    def shape(key: str) -> torch.Size:
        if key not in state:
            raise ValueError(f"{key} is missing: not an mmrotate Oriented R-CNN checkpoint (pass config= to check)")
        return state[key].shape

    num_classes = shape("roi_head.bbox_head.fc_cls.weight")[0] - 1
    named = meta.get("CLASSES")
    if named is not None and len(named) == num_classes:
        classes = list(named)
    else:
        known = {len(AITOD_CLASSES): AITOD_CLASSES, len(DOTA_CLASSES): DOTA_CLASSES}
        classes = list(known.get(num_classes, [f"class_{i}" for i in range(num_classes)]))
    rpn_cls = shape("rpn_head.rpn_cls.weight")  # (anchors per location, rpn_feat_channels, 1, 1)
    ratios = {1: (1.0,), 3: (0.5, 1.0, 2.0)}.get(rpn_cls[0])
    if ratios is None:
        raise ValueError(f"{rpn_cls[0]} anchors per location: pass config= with rpn_ratios")
    blocks = len({k.split(".")[2] for k in state if k.startswith("backbone.layer3.")})
    bottleneck = "backbone.layer1.0.conv3.weight" in state
    depth = {(2, False): 18, (6, False): 34, (6, True): 50, (23, True): 101}.get((blocks, bottleneck))
    if depth is None:
        raise ValueError(f"unknown ResNet with {blocks} blocks in layer3; pass config=")
    fpn = shape("neck.lateral_convs.0.conv.weight")[0]
    fc = shape("roi_head.bbox_head.shared_fcs.0.weight")  # (fc_channels, fpn_channels · roi_size²)
    kw = dict(
        backbone=f"resnet{depth}",
        fpn_channels=fpn,
        rpn_feat_channels=rpn_cls[1],
        roi_size=round((fc[1] / fpn) ** 0.5),
        fc_channels=fc[0],
        rpn_ratios=ratios,
    )
    version = re.search(r"angle_version\s*=\s*['\"](\w+)['\"]", str(meta.get("config", "")))
    if version:
        kw["angle_version"] = version.group(1)
    rpn = "dcfl" if "rpn_head.rpn_conv.conv_offset.weight" in state else "oriented"
    return TwoStageConfig.reference(classes, rpn, **kw)
