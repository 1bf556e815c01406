"""Optional OpenMMLab plugin: registers tinydet's DCFL head, coarse-to-fine assigner and AI-TOD-R metric
in mmrotate 1.x's registries, plus a pure-PyTorch rotated IoU loss (mmrotate's is CUDA-only).

Needs mmrotate 1.x with mmengine, mmdet 3.x and a *full* mmcv 2.x build (mmrotate's models import the
compiled ``mmcv.ops``; ``mmcv-lite`` is not enough). On Python >= 3.10 the PyPI ``mmrotate==1.0.0rc1``
fails to import its models (``from collections import Sequence``); install its ``dev-1.x`` branch::

    pip install -U openmim && mim install mmengine "mmcv>=2.0.0rc4,<2.1.0" "mmdet>=3.0.0,<3.2.0"
    pip install "git+https://github.com/open-mmlab/mmrotate.git@dev-1.x"

Use from an mmrotate config (``default_scope = "mmrotate"``, as mmrotate's own configs set)::

    custom_imports = dict(imports=["tinydet.mmrotate_plugin"], allow_failed_imports=False)
    model = dict(
        type="mmdet.RetinaNet", ...,
        bbox_head=dict(type="TinyDetDCFLHead", num_classes=8, in_channels=256),
        train_cfg=dict(assigner=dict(type="TinyDetCoarse2FineAssigner"), allowed_border=-1, pos_weight=-1),
        test_cfg=dict(nms_pre=3000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms_rotated", iou_threshold=0.4),
                      max_per_img=3000))
    val_evaluator = dict(type="AITODRMetric")
"""

from __future__ import annotations

try:
    from mmdet.models.losses.utils import weight_reduce_loss
    from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
    from mmdet.models.utils import unpack_gt_instances
    from mmdet.structures.bbox import get_box_tensor
    from mmengine.evaluator import BaseMetric
    from mmengine.structures import InstanceData
    from mmrotate.models.dense_heads import RotatedRetinaHead
    from mmrotate.registry import METRICS, MODELS, TASK_UTILS
except ImportError as err:  # pragma: no cover - exercised by a test that hides mmrotate
    raise ImportError(
        "tinydet.mmrotate_plugin needs mmrotate 1.x with mmengine, mmdet 3.x and a full mmcv 2.x build "
        f"({err}). mmcv-lite lacks the compiled mmcv.ops that mmdet/mmrotate models import, and on "
        "Python >= 3.10 mmrotate==1.0.0rc1 from PyPI fails (use its dev-1.x branch). Install with `pip install "
        "-U openmim && mim install mmengine 'mmcv>=2.0.0rc4,<2.1.0' 'mmdet>=3.0.0,<3.2.0'` and `pip install "
        "git+https://github.com/open-mmlab/mmrotate.git@dev-1.x` (mmrotate), or use tinydet's own classes "
        "(tinydet.RotatedDetector, tinydet.assign.coarse_to_fine_assign, tinydet.coco_rotated_ap), which need "
        "none of them."
    ) from err

import torch

from labcore.rotated import rotated_iou_aligned, rotated_iou_loss
from tinydet.assign import coarse_to_fine_assign
from tinydet.evaluate import coco_rotated_ap
from tinydet.model import DCFLHead, dynamic_prior_shift


def _tensor(boxes) -> torch.Tensor:
    """mmrotate ``RotatedBoxes`` (``.tensor``) or a plain ``(N, 5)`` tensor."""
    return boxes.tensor if hasattr(boxes, "tensor") else torch.as_tensor(boxes)


class TinyDetDCFLHead(RotatedRetinaHead):
    """The DCFL head (§4.1, :class:`tinydet.model.DCFLHead`: dilated + modulated deformable convs, one
    anchor per location) as an mmrotate dense head. Training shifts the anchor centres by the DCN offsets
    (dynamic prior, §4.2) and gives the assigner ``priors`` (shifted), ``bboxes`` (deltas decoded from the
    shifted priors, as ``r_dcfl_head``, but with the head's coder: the reference assigner's own default
    coder reads the angle delta without the ×π of ``norm_factor=1``) and ``scores`` (class logits), as
    :class:`TinyDetCoarse2FineAssigner` needs; targets are encoded against the fixed anchors. Inference
    is ``RotatedRetinaHead``'s. Defaults follow the reference AI-TOD-R config (``aitodr_dcfl_r50.py``).
    The layers live under ``head.``; state dicts in the reference's (and tinydet's) layout, without it,
    load too.
    Differences from mmdet's ``AnchorHead.loss_by_feat``: every anchor takes part (``allowed_border`` and
    the padding valid-flags are not applied), and ``loss_bbox_type='kfiou'`` is not supported."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        dilation_rate: int = 3,
        prior_offset_scale: float = 0.5,
        anchor_generator: dict | None = None,
        bbox_coder: dict | None = None,
        loss_cls: dict | None = None,
        loss_bbox: dict | None = None,
        reg_decoded_bbox: bool = True,
        init_cfg=None,
        **kwargs,
    ):
        self.dilation_rate, self.prior_offset_scale = dilation_rate, prior_offset_scale
        super().__init__(
            num_classes,
            in_channels,
            stacked_convs=stacked_convs,
            feat_channels=feat_channels,
            anchor_generator=anchor_generator
            or dict(
                type="FakeRotatedAnchorGenerator",
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=[8, 16, 32, 64, 128],
            ),
            bbox_coder=bbox_coder
            or dict(type="DeltaXYWHTRBBoxCoder", angle_version="le135", norm_factor=1, edge_swap=False, proj_xy=True),
            loss_cls=loss_cls or dict(type="mmdet.FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=loss_bbox or dict(type="TinyDetRotatedIoULoss", mode="log", loss_weight=1.0),
            reg_decoded_bbox=reg_decoded_bbox,
            init_cfg=init_cfg,  # None: DCFLHead's own init (RetinaNet prior, DCN convs) is kept
            **kwargs,
        )
        if self.num_base_priors != 1 or not self.use_sigmoid_cls or self.bbox_coder.encode_size != 5:
            raise ValueError(
                "TinyDetDCFLHead needs one anchor per location (ratios=[1.0], scales_per_octave=1), a sigmoid "
                "classification loss and a 5-parameter rotated box coder"
            )
        if self.loss_bbox_type != "normal":
            raise ValueError(f"TinyDetDCFLHead supports loss_bbox_type='normal' only, got {self.loss_bbox_type!r}")

    def _init_layers(self) -> None:
        self.head = DCFLHead(
            self.cls_out_channels, self.in_channels, self.feat_channels, self.stacked_convs, self.dilation_rate
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the reference's and tinydet's own layout keep the layers directly under ``bbox_head.``
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "head.")]:
            state_dict[prefix + "head." + key[len(prefix) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per level class logits ``(B, C, H, W)`` and deltas ``(B, 5, H, W)``."""
        cls_scores, bbox_preds, _ = self.head(list(x))
        return cls_scores, bbox_preds

    def loss(self, x, batch_data_samples) -> dict:
        cls_scores, bbox_preds, offsets = self.head(list(x))
        gts, gts_ignore, metas = unpack_gt_instances(batch_data_samples)
        return self.loss_by_feat(cls_scores, bbox_preds, gts, metas, gts_ignore, offsets=offsets)

    def loss_by_feat(
        self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None, offsets=None
    ) -> dict:
        """Focal loss over non-ignored anchors and box loss over positives, averaged over the positives (at
        least one per image, mmdet's ``avg_factor``). ``offsets``: the DCN offsets per level (no dynamic
        shift when ``None``)."""
        num_imgs, device = cls_scores[0].shape[0], cls_scores[0].device
        sizes = [c.shape[-2:] for c in cls_scores]
        anchors = torch.cat([get_box_tensor(a) for a in self.prior_generator.grid_priors(sizes, device=device)])
        flat_cls = torch.cat(
            [c.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels) for c in cls_scores], 1
        )
        flat_reg = torch.cat([r.permute(0, 2, 3, 1).reshape(num_imgs, -1, 5) for r in bbox_preds], 1)
        shift = None
        if offsets is not None:
            strides = [s[0] for s in self.prior_generator.strides]
            shift = dynamic_prior_shift(offsets, strides, self.prior_offset_scale)
        num_anchors = anchors.shape[0]
        labels = anchors.new_full((num_imgs, num_anchors), self.num_classes, dtype=torch.long)
        label_weights = anchors.new_zeros(num_imgs, num_anchors)
        target_dim = 5
        bbox_targets = anchors.new_zeros(num_imgs, num_anchors, target_dim)
        bbox_weights = torch.zeros_like(bbox_targets)
        avg_factor = 0
        for i in range(num_imgs):
            priors = anchors.clone()
            if shift is not None:
                priors[:, :2] += shift[i]  # dynamic prior (§4.2)
            decoded = get_box_tensor(self.bbox_coder.decode(priors, flat_reg[i].detach()))
            pred = InstanceData(priors=priors, bboxes=decoded, scores=flat_cls[i].detach())
            ignore = batch_gt_instances_ignore[i] if batch_gt_instances_ignore else None
            result = self.assigner.assign(pred, batch_gt_instances[i], ignore)
            sampling = self.sampler.sample(result, InstanceData(priors=anchors), batch_gt_instances[i])
            pos, neg = sampling.pos_inds, sampling.neg_inds
            if len(pos):
                gt_boxes = sampling.pos_gt_bboxes
                target = gt_boxes if self.reg_decoded_bbox else self.bbox_coder.encode(sampling.pos_priors, gt_boxes)
                bbox_targets[i, pos] = get_box_tensor(target).to(bbox_targets)
                bbox_weights[i, pos] = 1.0
                labels[i, pos] = sampling.pos_gt_labels
                pos_weight = self.train_cfg.get("pos_weight", -1)
                label_weights[i, pos] = 1.0 if pos_weight <= 0 else pos_weight
            label_weights[i, neg] = 1.0
            avg_factor += sampling.avg_factor
        loss_cls = self.loss_cls(
            flat_cls.reshape(-1, self.cls_out_channels),
            labels.reshape(-1),
            label_weights.reshape(-1),
            avg_factor=avg_factor,
        )
        reg = flat_reg.reshape(-1, 5)
        if self.reg_decoded_bbox:
            reg = get_box_tensor(self.bbox_coder.decode(anchors.repeat(num_imgs, 1), reg))
        loss_bbox = self.loss_bbox(
            reg, bbox_targets.reshape(-1, target_dim), bbox_weights.reshape(-1, target_dim), avg_factor=avg_factor
        )
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)


class TinyDetRotatedIoULoss(torch.nn.Module):
    """The reference's ``RotatedIoULoss`` (``−log IoU``, or ``1 − IoU`` / ``1 − IoU²``) on
    :func:`labcore.rotated.rotated_iou_loss` (exact polygon IoU, differentiable, CPU and GPU; mmrotate's
    needs mmcv's CUDA-only ``diff_iou_rotated_2d``). Only rows with a positive weight are evaluated, so
    the garbage boxes of negative anchors never reach the IoU. mmdet's weighting and reduction."""

    def __init__(self, mode: str = "log", eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.mode, self.eps, self.reduction, self.loss_weight = mode, eps, reduction, loss_weight

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        reduction = reduction_override or self.reduction
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        rows = torch.ones(len(pred), dtype=torch.bool, device=pred.device) if weight is None else weight > 0
        loss = pred.new_zeros(len(pred))
        loss[rows] = rotated_iou_loss(pred[rows], target[rows].to(pred), self.mode, self.eps).to(loss)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)


class TinyDetCoarse2FineAssigner(BaseAssigner):
    """DCFL's coarse-to-fine assigner (§4.3, :func:`tinydet.assign.coarse_to_fine_assign`) as an mmdet
    assigner returning ``AssignResult`` (``gt_inds``: 0 negative, −1 ignored, i+1 gt i). Reads
    ``pred_instances.priors`` (dynamic priors), ``.bboxes`` (decoded predictions) and ``.scores`` (class
    logits), as :class:`TinyDetDCFLHead` gives them."""

    def __init__(self, topk: int = 16, topq: int = 12, gauss_thr: float = 0.8, ignore_thr: float = 0.8):
        self.topk, self.topq, self.gauss_thr, self.ignore_thr = topk, topq, gauss_thr, ignore_thr

    def assign(self, pred_instances, gt_instances, gt_instances_ignore=None, **kwargs):
        missing = [k for k in ("priors", "bboxes", "scores") if k not in pred_instances]
        if missing:
            raise ValueError(
                f"TinyDetCoarse2FineAssigner needs pred_instances.{'/'.join(missing)} (dynamic priors, decoded "
                "predictions, class logits); use it with TinyDetDCFLHead, not a plain anchor head"
            )
        priors, preds = _tensor(pred_instances.priors), _tensor(pred_instances.bboxes)
        gt, gt_labels = _tensor(gt_instances.bboxes).to(priors), gt_instances.labels
        gt_inds = coarse_to_fine_assign(
            priors, preds, pred_instances.scores, gt, self.topk, self.topq, self.gauss_thr, self.ignore_thr
        )
        pos = gt_inds > 0
        overlaps = priors.new_zeros(priors.shape[0])
        labels = gt_inds.new_full((priors.shape[0],), -1)
        if pos.any():
            owner = gt_inds[pos] - 1
            overlaps[pos] = rotated_iou_aligned(preds[pos].detach(), gt[owner]).to(overlaps)
            labels[pos] = gt_labels[owner]
        return AssignResult(gt.shape[0], gt_inds, overlaps, labels=labels)


class AITODRMetric(BaseMetric):
    """AI-TOD-R's COCO-style rotated AP (:func:`tinydet.coco_rotated_ap`: IoU .50:.95, 1500 dets, size bins
    very tiny / tiny / small / medium) over mmrotate data samples (``pred_instances``, ``gt_instances``;
    ``ignored_instances``, mmrotate's DOTA "difficult" objects, are ignored gts as pycocotools' crowd)."""

    default_prefix = "aitodr"

    def __init__(self, num_classes: int | None = None, max_dets: int = 1500, collect_device="cpu", prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes, self.max_dets = num_classes, max_dets

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            pred, gt = sample["pred_instances"], sample.get("gt_instances") or {}
            if "bboxes" not in gt:
                raise ValueError("AITODRMetric needs gt_instances with bboxes and labels in every data sample")
            ignored = sample.get("ignored_instances") or {}
            boxes, labels = [_tensor(gt["bboxes"])], [torch.as_tensor(gt["labels"])]
            if "bboxes" in ignored:
                boxes.append(_tensor(ignored["bboxes"]))
                labels.append(torch.as_tensor(ignored["labels"]))
            difficult = torch.arange(sum(len(x) for x in labels)) >= len(labels[0])
            self.results.append(
                (
                    {
                        "boxes": _tensor(pred["bboxes"]).detach().cpu().float(),
                        "scores": torch.as_tensor(pred["scores"]).detach().cpu(),
                        "labels": torch.as_tensor(pred["labels"]).detach().cpu(),
                    },
                    {
                        "boxes": torch.cat([b.cpu().float() for b in boxes]),
                        "labels": torch.cat([x.cpu() for x in labels]),
                        "difficult": difficult,
                    },
                )
            )

    def compute_metrics(self, results: list) -> dict:
        dets, gts = [d for d, _ in results], [g for _, g in results]
        num_classes = self.num_classes
        if num_classes is None:
            meta = getattr(self, "dataset_meta", None) or {}
            labels = [int(t["labels"].max()) for t in dets + gts if len(t["labels"])]
            num_classes = len(meta["classes"]) if "classes" in meta else 1 + max(labels, default=0)
        return coco_rotated_ap(dets, gts, num_classes, self.max_dets)


# force=True: re-importing the module (reload, tests) re-registers instead of raising "already registered"
MODELS.register_module(name="TinyDetDCFLHead", module=TinyDetDCFLHead, force=True)
MODELS.register_module(name="TinyDetRotatedIoULoss", module=TinyDetRotatedIoULoss, force=True)
TASK_UTILS.register_module(name="TinyDetCoarse2FineAssigner", module=TinyDetCoarse2FineAssigner, force=True)
METRICS.register_module(name="AITODRMetric", module=AITODRMetric, force=True)
