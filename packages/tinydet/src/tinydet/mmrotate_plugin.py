"""Optional OpenMMLab plugin: registers tinydet's DCFL head, coarse-to-fine assigner and AI-TOD-R metric
in mmrotate 1.x's registries (thin adapters around the pure-PyTorch classes).

Install (not needed by tinydet itself; mmcv builds from source for a long time)::

    pip install -U openmim && mim install mmengine "mmcv>=2.0.0" "mmdet>=3.0.0" "mmrotate>=1.0.0rc1"

Use from an mmrotate config::

    custom_imports = dict(imports=["tinydet.mmrotate_plugin"], allow_failed_imports=False)
    model = dict(..., bbox_head=dict(type="TinyDetDCFLHead", num_classes=8, in_channels=256))
    # train_cfg assigner: dict(type="TinyDetCoarse2FineAssigner", topk=16, topq=12)
    val_evaluator = dict(type="AITODRMetric")

The head adapter only runs the forward pass (``(cls_scores, bbox_preds)`` per level, as
``RotatedRetinaHead.forward``); losses, anchors and decoding stay with the mmrotate head class that a
config combines it with. The assigner reads ``pred_instances.priors`` (dynamic priors, ``(A, 5)``),
``pred_instances.bboxes`` (decoded predictions) and ``pred_instances.scores`` (class logits).
"""

from __future__ import annotations

try:
    from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
    from mmengine.evaluator import BaseMetric
    from mmengine.model import BaseModule
    from mmrotate.registry import METRICS, MODELS, TASK_UTILS
except ImportError as err:  # pragma: no cover - exercised by a test that hides mmrotate
    raise ImportError(
        "tinydet.mmrotate_plugin needs mmrotate>=1.0 with mmengine, mmdet>=3 and mmcv>=2 "
        f"({err}). Install them with `pip install -U openmim && mim install mmengine 'mmcv>=2.0.0' "
        "'mmdet>=3.0.0' 'mmrotate>=1.0.0rc1'`, or use tinydet's own classes (tinydet.RotatedDetector, "
        "tinydet.assign.coarse_to_fine_assign, tinydet.coco_rotated_ap), which need none of them."
    ) from err

import torch

from labcore.rotated import rotated_iou_aligned
from tinydet.assign import coarse_to_fine_assign
from tinydet.evaluate import coco_rotated_ap
from tinydet.model import DCFLHead


def _tensor(boxes) -> torch.Tensor:
    """mmrotate ``RotatedBoxes`` (``.tensor``) or a plain ``(N, 5)`` tensor."""
    return boxes.tensor if hasattr(boxes, "tensor") else torch.as_tensor(boxes)


class TinyDetDCFLHead(BaseModule):
    """:class:`tinydet.model.DCFLHead` (dilated + modulated deformable convs, §4.1) as an mmengine module;
    ``forward(feats)`` gives ``(cls_scores, bbox_preds)`` per level, ``offsets`` the DCN offsets of the
    last call (for the dynamic prior, §4.2)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        dilation_rate: int = 3,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.head = DCFLHead(num_classes, in_channels, feat_channels, stacked_convs, dilation_rate)
        self.offsets = None

    def forward(self, feats):
        cls_scores, bbox_preds, self.offsets = self.head(list(feats))
        return tuple(cls_scores), tuple(bbox_preds)


class TinyDetCoarse2FineAssigner(BaseAssigner):
    """DCFL's coarse-to-fine assigner (§4.3, :func:`tinydet.assign.coarse_to_fine_assign`) as an mmdet
    assigner returning ``AssignResult`` (``gt_inds``: 0 negative, −1 ignored, i+1 gt i)."""

    def __init__(self, topk: int = 16, topq: int = 12, gauss_thr: float = 0.8, ignore_thr: float = 0.8):
        self.topk, self.topq, self.gauss_thr, self.ignore_thr = topk, topq, gauss_thr, ignore_thr

    def assign(self, pred_instances, gt_instances, gt_instances_ignore=None, **kwargs):
        priors, preds = _tensor(pred_instances.priors), _tensor(pred_instances.bboxes)
        gt, gt_labels = _tensor(gt_instances.bboxes), gt_instances.labels
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
    very tiny / tiny / small / medium) over mmrotate data samples (``pred_instances``, ``gt_instances``)."""

    default_prefix = "aitodr"

    def __init__(self, num_classes: int | None = None, max_dets: int = 1500, collect_device="cpu", prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes, self.max_dets = num_classes, max_dets

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            pred, gt = sample["pred_instances"], sample["gt_instances"]
            self.results.append(
                (
                    {
                        "boxes": _tensor(pred["bboxes"]).detach().cpu().float(),
                        "scores": torch.as_tensor(pred["scores"]).detach().cpu(),
                        "labels": torch.as_tensor(pred["labels"]).detach().cpu(),
                    },
                    {"boxes": _tensor(gt["bboxes"]).cpu().float(), "labels": torch.as_tensor(gt["labels"]).cpu()},
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


MODELS.register_module(name="TinyDetDCFLHead", module=TinyDetDCFLHead)
TASK_UTILS.register_module(name="TinyDetCoarse2FineAssigner", module=TinyDetCoarse2FineAssigner)
METRICS.register_module(name="AITODRMetric", module=AITODRMetric)
