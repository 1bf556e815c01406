"""The optional OpenMMLab plugin: a clear ImportError without mmrotate (always), and the plugin against the
real mmengine/mmdet/mmrotate stack when it is installed (skipped otherwise; see the README's plugin section
for the versions it was run with).

With ``mmcv-lite`` (mmcv without compiled ops, which mmdet/mmrotate models import at module level) the
``mmrotate`` fixture puts a placeholder ``mmcv._ext`` in ``sys.modules`` whose functions raise when called:
the plugin's code paths never call an mmcv kernel, so every check below runs the real Python classes."""

import importlib
import importlib.util
import math
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from labcore.rotated import rotated_iou_aligned
from tinydet.assign import coarse_to_fine_assign
from tinydet.model import DCFLHead

STACK = ("mmengine", "mmcv", "mmdet", "mmrotate")
MISSING = [name for name in STACK if importlib.util.find_spec(name) is None]


def _fresh_import():
    sys.modules.pop("tinydet.mmrotate_plugin", None)
    return importlib.import_module("tinydet.mmrotate_plugin")


def test_plugin_without_mmrotate_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmrotate", None)  # hides an installed mmrotate too
    monkeypatch.setitem(sys.modules, "mmrotate.registry", None)
    monkeypatch.setitem(sys.modules, "mmrotate.models", None)
    monkeypatch.setitem(sys.modules, "mmrotate.models.dense_heads", None)
    with pytest.raises(ImportError, match="mim install .*mmcv") as info:
        _fresh_import()
    message = str(info.value)
    assert "tinydet.RotatedDetector" in message and "mmcv-lite" in message  # what works without it, and why
    sys.modules.pop("tinydet.mmrotate_plugin", None)


class _UncompiledOps(types.ModuleType):
    """Stands for ``mmcv._ext`` under mmcv-lite: any op raises when called."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def op(*args, **kwargs):
            raise RuntimeError(f"mmcv op {name} is not compiled (mmcv-lite)")

        return op


@pytest.fixture(scope="module")
def mm():
    """The plugin imported against the real stack, with mmrotate's default scope."""
    if MISSING:
        pytest.skip(f"OpenMMLab stack not installed ({', '.join(MISSING)} missing); see the README plugin section")
    if importlib.util.find_spec("mmcv._ext") is None:
        sys.modules.setdefault("mmcv._ext", _UncompiledOps("mmcv._ext"))
    plugin = _fresh_import()
    from mmengine.registry import init_default_scope

    init_default_scope("mmrotate")
    return plugin


def _boxes(t):
    from mmrotate.structures.bbox import RotatedBoxes

    return RotatedBoxes(t)


def _instances(**fields):
    from mmengine.structures import InstanceData

    return InstanceData(**fields)


GT = torch.tensor([[20.0, 20.0, 10.0, 6.0, 0.3], [45.0, 40.0, 8.0, 8.0, 0.0]])
GT_LABELS = torch.tensor([2, 0])
DET_GT = torch.tensor([[24.0, 24.0, 28.0, 20.0, 0.3], [44.0, 40.0, 30.0, 30.0, 0.0]])  # near the 32-px anchors


def test_registries_hold_the_plugin_classes(mm):
    from mmrotate.registry import METRICS, MODELS, TASK_UTILS

    assert MODELS.get("TinyDetDCFLHead") is mm.TinyDetDCFLHead
    assert TASK_UTILS.get("TinyDetCoarse2FineAssigner") is mm.TinyDetCoarse2FineAssigner
    assert METRICS.get("AITODRMetric") is mm.AITODRMetric
    _fresh_import()  # re-importing re-registers (force=True) instead of raising "already registered"
    assert MODELS.get("TinyDetDCFLHead").__module__ == "tinydet.mmrotate_plugin"


def test_head_from_config_gives_the_pure_dcfl_head_outputs(mm):
    from mmrotate.registry import MODELS

    head = MODELS.build(dict(type="TinyDetDCFLHead", num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2))
    feats = [torch.randn(1, 8, 16, 16), torch.randn(1, 8, 8, 8)]
    cls, reg = head(feats)
    assert [c.shape for c in cls] == [(1, 3, 16, 16), (1, 3, 8, 8)]
    assert [r.shape for r in reg] == [(1, 5, 16, 16), (1, 5, 8, 8)]
    pure = DCFLHead(3, 8, feat_channels=8, stacked_convs=2, dilation_rate=3)
    pure.load_state_dict(head.head.state_dict())
    ref_cls, ref_reg, _ = pure(feats)
    assert all(torch.equal(a, b) for a, b in zip(cls, ref_cls)) and all(torch.equal(a, b) for a, b in zip(reg, ref_reg))
    flat = MODELS.build(dict(type="TinyDetDCFLHead", num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2))
    flat.load_state_dict(pure.state_dict())  # the reference / tinydet layout (no ``head.``) loads too
    assert all(torch.equal(a, b) for a, b in zip(flat(feats)[0], ref_cls))
    with pytest.raises(ValueError, match="one anchor per location"):
        MODELS.build(
            dict(
                type="TinyDetDCFLHead",
                num_classes=3,
                in_channels=8,
                anchor_generator=dict(
                    type="FakeRotatedAnchorGenerator", scales=[4], ratios=[0.5, 1.0, 2.0], strides=[8]
                ),
            )
        )


def test_assigner_from_config_matches_the_pure_assigner_and_feeds_mmdet_sampler(mm):
    from mmrotate.registry import TASK_UTILS

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 64
    priors = torch.cat([xy, torch.full((60, 2), 8.0), torch.zeros(60, 1)], 1)
    preds = priors + torch.randn(60, 5, generator=g) * torch.tensor([1.0, 1.0, 0.5, 0.5, 0.05])
    logits = torch.randn(60, 3, generator=g)
    pred = _instances(priors=_boxes(priors), bboxes=_boxes(preds), scores=logits)
    gts = _instances(bboxes=_boxes(GT), labels=GT_LABELS)
    res = TASK_UTILS.build(dict(type="TinyDetCoarse2FineAssigner", topk=8, topq=4)).assign(pred, gts)
    expect = coarse_to_fine_assign(priors, preds, logits, GT, topk=8, topq=4)
    pos = expect > 0
    assert torch.equal(res.gt_inds, expect) and pos.any() and res.num_gts == 2
    assert torch.equal(res.labels[pos], GT_LABELS[expect[pos] - 1]) and (res.labels[~pos] == -1).all()
    assert (res.max_overlaps[pos] > 0).all() and (res.max_overlaps[~pos] == 0).all()
    sampling = TASK_UTILS.build(dict(type="mmdet.PseudoSampler")).sample(res, pred, gts)
    assert torch.equal(sampling.pos_inds, torch.nonzero(pos).flatten())
    assert torch.equal(sampling.neg_inds, torch.nonzero(expect == 0).flatten())
    with pytest.raises(ValueError, match="bboxes/scores"):  # what a plain anchor head passes
        TASK_UTILS.build(dict(type="TinyDetCoarse2FineAssigner")).assign(_instances(priors=_boxes(priors)), gts)


def test_iou_loss_is_minus_log_iou_on_weighted_rows_only(mm):
    from mmrotate.registry import MODELS

    loss = MODELS.build(dict(type="TinyDetRotatedIoULoss", loss_weight=2.0))
    pred = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.0], [10.0, 10.0, 4.0, 4.0, 0.0], [0.0, 0.0, math.inf, 1.0, 0.0]])
    target = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.0], [12.0, 10.0, 4.0, 4.0, 0.0], [5.0, 5.0, 2.0, 2.0, 0.0]])
    weight = torch.tensor([1.0, 1.0, 0.0])[:, None].expand(3, 5)  # mmdet passes (N, 5) box weights
    pred.requires_grad_(True)
    value = loss(pred, target, weight, avg_factor=4.0)
    assert value.item() == pytest.approx(2.0 * (0.0 + math.log(3.0)) / 4.0, rel=1e-5)  # IoU 1 and 2/6
    value.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[2] == 0).all()  # the inf box never reaches the IoU
    per_row = loss(pred[:2], target[:2], reduction_override="none")
    assert per_row.tolist() == pytest.approx([0.0, 2.0 * math.log(3.0)], abs=1e-5)


def _detector(mm, **head):
    from mmengine.config import ConfigDict
    from mmrotate.registry import MODELS

    strides = [8, 16, 32]
    cfg = dict(
        type="mmdet.RetinaNet",
        data_preprocessor=dict(type="mmdet.DetDataPreprocessor", boxtype2tensor=False),
        backbone=dict(type="mmdet.ResNet", depth=18, base_channels=8, out_indices=(1, 2, 3), norm_eval=False),
        neck=dict(type="mmdet.FPN", in_channels=[16, 32, 64], out_channels=16, add_extra_convs="on_input", num_outs=3),
        bbox_head=dict(
            type="TinyDetDCFLHead",
            num_classes=3,
            in_channels=16,
            feat_channels=16,
            stacked_convs=2,
            anchor_generator=dict(
                type="FakeRotatedAnchorGenerator",
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=strides,
            ),
            **head,
        ),
        train_cfg=dict(
            assigner=dict(type="TinyDetCoarse2FineAssigner", topk=8, topq=4), allowed_border=-1, pos_weight=-1
        ),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.0,
            nms=dict(type="nms_rotated", iou_threshold=0.4),
            max_per_img=100,
        ),
    )
    return MODELS.build(ConfigDict(cfg)), strides


def test_detector_loss_equals_the_hand_computed_dcfl_loss_with_dynamic_priors(mm):
    from mmdet.structures import DetDataSample

    torch.manual_seed(0)
    det, strides = _detector(mm)  # the reference's losses: focal + -log IoU on decoded boxes
    head = det.bbox_head
    conv_offset = head.head.reg_convs[-1].conv_offset
    dy, dx = 0.4, -0.6  # every tap moves by (dy, dx): the dynamic prior shifts centres by (dx, dy)·stride/2
    with torch.no_grad():
        conv_offset.weight.zero_()
        conv_offset.bias[:18:2], conv_offset.bias[1:18:2] = dy, dx
    seen = []
    assign = head.assigner.assign
    head.assigner.assign = lambda pred, gt, ignore=None: seen.append(pred) or assign(pred, gt, ignore)

    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64), batch_input_shape=(64, 64)))
    sample.gt_instances = _instances(bboxes=_boxes(DET_GT), labels=GT_LABELS)
    images = torch.randn(1, 3, 64, 64)
    losses = det.loss(images, [sample])

    feats = det.extract_feat(images)
    cls, reg, _ = head.head(list(feats))
    sizes = [c.shape[-2:] for c in cls]
    anchors = torch.cat([a.tensor for a in head.prior_generator.grid_priors(sizes, device="cpu")])
    shift = torch.cat([torch.tensor([dx, dy]).expand(h * w, 2) * s / 2 for (h, w), s in zip(sizes, strides)])
    assert torch.allclose(seen[0].priors, anchors + F.pad(shift, (0, 3)), atol=1e-5)
    flat_cls = torch.cat([c[0].permute(1, 2, 0).reshape(-1, 3) for c in cls])
    flat_reg = torch.cat([r[0].permute(1, 2, 0).reshape(-1, 5) for r in reg])
    assert torch.allclose(seen[0].bboxes, head.bbox_coder.decode(seen[0].priors, flat_reg).tensor, atol=1e-4)
    assigned = coarse_to_fine_assign(seen[0].priors, seen[0].bboxes, flat_cls, DET_GT, topk=8, topq=4)
    pos = assigned > 0
    assert pos.any()
    target = torch.zeros_like(flat_cls)
    target[pos, GT_LABELS[assigned[pos] - 1]] = 1
    num_pos = max(int(pos.sum()), 1)
    focal = sigmoid_focal_loss(flat_cls, target, alpha=0.25, gamma=2.0, reduction="none")
    expect_cls = (focal * (assigned >= 0).float()[:, None]).sum() / num_pos
    decoded = head.bbox_coder.decode(anchors[pos], flat_reg[pos]).tensor  # reg_decoded_bbox (reference default)
    expect_bbox = -rotated_iou_aligned(decoded, DET_GT[assigned[pos] - 1]).clamp_min(1e-6).log().sum() / num_pos
    assert losses["loss_cls"].item() == pytest.approx(expect_cls.item(), rel=1e-4)
    assert losses["loss_bbox"].item() == pytest.approx(expect_bbox.item(), rel=1e-4)
    sum(losses.values()).backward()
    assert conv_offset.weight.grad.abs().sum() > 0  # the offsets learn through the cls branch


def test_detector_loss_on_images_without_objects(mm):
    from mmdet.structures import DetDataSample

    det, _ = _detector(mm)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64), batch_input_shape=(64, 64)))
    sample.gt_instances = _instances(bboxes=_boxes(torch.zeros(0, 5)), labels=torch.zeros(0, dtype=torch.long))
    losses = det.loss(torch.randn(2, 3, 64, 64), [sample, sample])
    assert losses["loss_bbox"].item() == 0 and 0 < losses["loss_cls"].item() < math.inf  # all anchors negative


def test_head_predictions_decode_through_mmrotate_predict_by_feat(mm):
    det, _ = _detector(mm)
    head = det.bbox_head.eval()
    feats = det.extract_feat(torch.randn(1, 3, 64, 64))
    cls, reg = head(feats)
    meta = dict(img_shape=(64, 64), scale_factor=(1.0, 1.0))
    out = head.predict_by_feat(cls, reg, batch_img_metas=[meta], rescale=False, with_nms=False)[0]
    anchors = torch.cat([a.tensor for a in head.prior_generator.grid_priors([c.shape[-2:] for c in cls], device="cpu")])
    flat_reg = torch.cat([r[0].permute(1, 2, 0).reshape(-1, 5) for r in reg])
    every = head.bbox_coder.decode(anchors, flat_reg, max_shape=(64, 64)).tensor  # centres clamped to the image
    assert out.bboxes.tensor.shape[0] == 3 * anchors.shape[0]  # score_thr 0: every (anchor, class) pair
    gap = torch.cdist(out.bboxes.tensor, every, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
    assert gap.max() < 1e-4  # each output is an anchor's decoded box
    assert math.isfinite(out.scores.sum().item())


def _sample(pred_boxes, pred_labels, gt_boxes=GT, gt_labels=GT_LABELS, ignored=None):
    from mmdet.structures import DetDataSample

    sample = DetDataSample()
    sample.gt_instances = _instances(bboxes=_boxes(gt_boxes), labels=gt_labels)
    scores = torch.linspace(0.9, 0.5, len(pred_boxes))  # in the given order
    sample.pred_instances = _instances(bboxes=_boxes(pred_boxes), scores=scores, labels=pred_labels)
    if ignored is not None:
        sample.ignored_instances = _instances(
            bboxes=_boxes(ignored), labels=torch.zeros(len(ignored), dtype=torch.long)
        )
    return sample


def _evaluate(*samples):
    from mmengine.evaluator import Evaluator

    evaluator = Evaluator(metrics=dict(type="AITODRMetric"))
    evaluator.dataset_meta = dict(classes=("a", "b", "c"))
    evaluator.process(list(samples), {})
    return evaluator.evaluate(len(samples))


def test_metric_through_the_mmengine_evaluator(mm):
    perfect = _evaluate(_sample(GT.clone(), GT_LABELS))
    assert perfect["aitodr/AP"] == pytest.approx(1.0) and perfect["aitodr/AP_vt"] == pytest.approx(1.0)
    assert _evaluate(_sample(GT + torch.tensor([30.0, 0, 0, 0, 0]), GT_LABELS))["aitodr/AP"] == pytest.approx(0.0)
    # a detection of an ignored ("difficult") gt, ranked above the true positive of its class: a false
    # positive (class-0 AP 1/2) unless the gt is passed as ignored_instances, then it is left out (AP 1)
    extra = torch.tensor([[10.0, 50.0, 6.0, 6.0, 0.0]])
    preds, labels = torch.cat([extra, GT]), torch.tensor([0, 2, 0])
    assert _evaluate(_sample(preds, labels))["aitodr/AP"] == pytest.approx(0.75)  # mean of classes 0 (1/2), 2 (1)
    assert _evaluate(_sample(preds, labels, ignored=extra))["aitodr/AP"] == pytest.approx(1.0)
