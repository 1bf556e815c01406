"""Oriented R-CNN with the DCFL RPN: coders, anchors, RPN targets and proposals, RoI sampling and levels,
overfitting, save/load, and loading state dicts with mmrotate's key layout."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from labcore.rotated import obb_to_hbb, regularize_boxes, rotated_iou
from tinydet.coder import DeltaXYWHACoder, MidpointOffsetCoder, horizontal_anchors
from tinydet.data import SYNTHETIC_CLASSES, synthetic_scene
from tinydet.oriented_rpn import random_sample
from tinydet.roi import map_roi_levels, multilevel_roi_align, rotated_roi_align
from tinydet.two_stage import TwoStageConfig, TwoStageDetector, sample_proposals


def _random_boxes(g, n):
    return torch.cat(
        [
            torch.rand(n, 2, generator=g) * 100,
            2 + torch.rand(n, 2, generator=g) * 30,
            (torch.rand(n, 1, generator=g) - 0.5) * 2 * math.pi,
        ],
        1,
    )


@pytest.mark.parametrize("version", ["le90", "le135"])
def test_rcnn_coder_round_trip_edge_swap_and_smallest_turn(version):
    g = torch.Generator().manual_seed(0)
    proposals, gt = _random_boxes(g, 200), _random_boxes(g, 200)
    coder = DeltaXYWHACoder(version, stds=(0.1, 0.1, 0.2, 0.2, 0.1), norm_factor=None, edge_swap=True)
    deltas = coder.encode(proposals, gt)
    # edge swap: the target form turns at most π/4 (radians, times std 0.1 undone) from the proposal
    assert (deltas[:, 4].abs() * 0.1 <= math.pi / 4 + 1e-5).all()
    back = coder.decode(proposals, deltas)
    assert (back[:, 2] >= back[:, 3]).all()  # decoded long side first
    assert torch.allclose(regularize_boxes(back, version), regularize_boxes(gt, version), atol=1e-3)
    assert torch.allclose(rotated_iou(back, gt).diagonal(), torch.ones(200, dtype=back.dtype), atol=1e-4)
    # without the swap the angle delta can be large: the swap is what keeps it small
    plain = DeltaXYWHACoder(version, norm_factor=None).encode(proposals, gt)
    assert plain[:, 4].abs().max() > math.pi / 4 + 0.1


def test_proposal_sampling_picks_the_right_positives():
    gt = torch.tensor([[20.0, 20, 10, 4, 0.3], [60, 60, 8, 8, 0.0]])
    labels = torch.tensor([2, 0])
    proposals = torch.tensor(
        [
            [20.5, 20, 10, 4, 0.3],  # IoU 0.9 with gt 0 → positive, class 2
            [60, 60, 8, 5, 0.0],  # IoU 0.625 with gt 1 → positive, class 0
            [60, 60, 8, 3, 0.0],  # IoU 0.375 with gt 1 → negative (no low-quality matches)
            [90, 90, 5, 5, 0.0],  # background
        ]
    )
    rois, lab, matched = sample_proposals(proposals, gt, labels, num_classes=3, num=10, pos_fraction=1.0)
    assert rois.shape[0] == 6  # 2 gts added as proposals + 4 proposals
    pos = lab < 3
    got = {(tuple(r.tolist()), int(c)) for r, c in zip(rois[pos], lab[pos])}
    want = {(tuple(gt[0].tolist()), 2), (tuple(gt[1].tolist()), 0)}
    want |= {(tuple(proposals[0].tolist()), 2), (tuple(proposals[1].tolist()), 0)}
    assert got == want and (lab[~pos] == 3).sum() == 2
    iou = rotated_iou(rois[pos], matched[pos]).diagonal()
    assert (iou >= 0.5).all() and torch.allclose(rotated_iou(rois[pos], gt).amax(1), iou.to(torch.float32))
    # at most num·pos_fraction positives, negatives fill up to num
    rois, lab, _ = sample_proposals(proposals, gt, labels, 3, num=4, pos_fraction=0.5)
    assert rois.shape[0] == 4 and (lab < 3).sum() == 2 and (lab == 3).sum() == 2
    # no gts: everything is background
    _, lab, _ = sample_proposals(proposals, gt[:0], labels[:0], 3, num=10)
    assert (lab == 3).all() and lab.numel() == 4


def test_rotated_roi_align_at_the_border_as_mmcv():
    """mmcv's RoIAlignRotated (and torchvision's roi_align) read the border pixel for samples up to one
    pixel outside the map and 0 beyond; boxes crossing the border or outside it match torchvision."""
    from torchvision.ops import roi_align

    feat = torch.randn(1, 3, 10, 12, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[2.0, 3, 20, 10, 0], [-3, 40, 16, 30, 0], [90, 75, 30, 12, 0], [40, 40, 100, 100, 0]])
    xyxy = torch.cat([boxes[:, :2] - boxes[:, 2:4] / 2, boxes[:, :2] + boxes[:, 2:4] / 2], 1)
    ref = roi_align(feat, [xyxy], 7, spatial_scale=1 / 8, sampling_ratio=2, aligned=True)
    assert torch.allclose(rotated_roi_align(feat, [boxes], 7, 8), ref, atol=1e-5)
    # ones, one bin of 2×2 samples at x = −1 and 1 (pixel units): the sample at −1 reads the border (1, not
    # 0.5 as zero padding would give); shifted by half a pixel the outer sample at −2 reads 0
    ones = torch.ones(1, 1, 4, 4)
    rois = [torch.tensor([[0.5, 2, 4, 2, 0.0], [-0.5, 2, 4, 2, 0.0]])]
    assert torch.allclose(rotated_roi_align(ones, rois, 1, 1).flatten(), torch.tensor([1.0, 0.5]))


def test_multilevel_roi_align_routes_by_scale():
    feats = [torch.randn(2, 4, 16, 16), torch.randn(2, 4, 8, 8)]
    boxes = [torch.tensor([[40.0, 40, 10, 6, 0.2], [64, 64, 150, 120, 0.1]]), torch.tensor([[30.0, 50, 20, 8, 1.0]])]
    assert map_roi_levels(torch.cat(boxes), 2).tolist() == [0, 1, 0]  # √(wh) ≥ 112 → level 1
    out = multilevel_roi_align(feats, [8, 16], boxes, 7)
    one = partial(rotated_roi_align, out_size=7)
    assert torch.allclose(out[0], one(feats[0][:1], [boxes[0][:1]], stride=8)[0])
    assert torch.allclose(out[1], one(feats[1][:1], [boxes[0][1:]], stride=16)[0])
    assert torch.allclose(out[2], one(feats[0][1:], [boxes[1]], stride=8)[0])


def test_midpoint_offset_coder_hand_computed_and_round_trip():
    coder = MidpointOffsetCoder("le135", stds=(1.0,) * 6)
    # a 10×4 axis-aligned box in a 10×10 anchor at the same centre: top corner at x2 (da = ½), right at y2 (db = ½)
    deltas = coder.encode(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 5, 10, 4, 0]]))
    assert torch.allclose(deltas, torch.tensor([[0, 0, 0, math.log(0.4), 0.5, 0.5]]))
    # a square turned by 45°: hull side 10√2, top corner straight above the centre (da = 0), right corner level (db = 0)
    square = torch.tensor([[20.0, 30, 10, 10, math.pi / 4]])
    deltas = coder.encode(torch.tensor([[10.0, 20, 30, 40]]), square)
    assert torch.allclose(
        deltas, torch.tensor([[0, 0, math.log(math.sqrt(2) / 2), math.log(math.sqrt(2) / 2), 0, 0]]), atol=1e-6
    )
    # default stds (1, 1, 1, 1, 0.5, 0.5) scale the midpoint offsets only
    assert torch.allclose(
        MidpointOffsetCoder().encode(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 5, 10, 4, 0]]))[0, 4:],
        torch.tensor([1.0, 1.0]),
    )
    # decode(encode(x)) = x for boxes whose top and right corners are unambiguous (the reference's 0.1-px
    # tolerance merges the two top corners of boxes within ~0.1 px of axis-aligned)
    g = torch.Generator().manual_seed(0)
    gt = _random_boxes(g, 400)
    valid = gt[:, 2:4].amin(1) * torch.sin(2 * gt[:, 4]).abs() / 2 > 0.5  # each corner clears its neighbour by > 0.5 px
    gt = torch.cat([gt[valid], torch.tensor([[50.0, 50, 12, 3, 0], [50.0, 50, 12, 3, math.pi / 2]])])
    anchors = torch.cat([gt[:, :2] - 8, gt[:, :2] + 12], 1)
    for version in ("le90", "le135"):
        c = MidpointOffsetCoder(version)
        back = c.decode(anchors, c.encode(anchors, gt))
        assert torch.allclose(back, regularize_boxes(gt, version), atol=1e-3)
    # decoded midpoint offsets are clamped to ±½: any deltas give a finite rectangle (degenerate, of zero
    # height, when the top and right corners meet at the hull's corner, as in the reference)
    out = coder.decode(anchors[:50], torch.randn(50, 6, generator=g) * 3)
    assert torch.isfinite(out).all() and (out[:, 2] > 0).all() and (out[:, 3] >= 0).all()
    with pytest.raises(ValueError, match="xyxy anchors"):
        coder.encode(gt, gt)


def test_horizontal_anchors_match_mmdet_anchor_generator():
    # mmdet AnchorGenerator(strides=[4], scales=[8], ratios=[0.5, 1, 2]), centre_offset 0: base anchors
    # w = 4·8/√r, h = 4·8·√r centred on (0, 0), then shifted by 4 px per location (x fastest)
    (anchors,) = horizontal_anchors([(2, 3)], [4], 8.0, (0.5, 1.0, 2.0))
    assert anchors.shape == (2 * 3 * 3, 4)
    w, h = 32 / math.sqrt(0.5), 32 * math.sqrt(0.5)
    assert torch.allclose(anchors[0], torch.tensor([-w / 2, -h / 2, w / 2, h / 2]))
    assert torch.allclose(anchors[4], torch.tensor([4 - 16.0, -16, 4 + 16, 16]))  # location (x=1, y=0), ratio 1
    assert torch.allclose(anchors[3 * 3 + 2], torch.tensor([-h / 2, 4 - w / 2, h / 2, 4 + w / 2]))  # (0, 1), ratio 2
    hull = obb_to_hbb(torch.tensor([[10.0, 20, 8, 2, math.pi / 2]]))
    assert torch.allclose(hull, torch.tensor([[9.0, 16, 11, 24]]), atol=1e-6)


def test_random_sample_respects_the_positive_fraction():
    assigned = torch.tensor([1, 2, 0, 0, -1, 3, 0, 0, 0, 0])
    pos, neg = random_sample(assigned, num=4, pos_fraction=0.5, generator=torch.Generator().manual_seed(0))
    assert pos.numel() == 2 and neg.numel() == 2 and (assigned[pos] > 0).all() and (assigned[neg] == 0).all()
    pos, neg = random_sample(assigned, num=20, pos_fraction=0.5)
    assert sorted(pos.tolist()) == [0, 1, 5] and sorted(neg.tolist()) == [2, 3, 6, 7, 8, 9]  # ignored (-1) never


def _tiny(rpn="dcfl", **kw):
    return TwoStageDetector(TwoStageConfig.tiny(SYNTHETIC_CLASSES, rpn=rpn, **kw))


def test_rpn_proposals_top_k_per_level_then_nms_per_level():
    torch.manual_seed(0)
    head = _tiny("oriented", rpn_nms_pre=2, rpn_nms_iou_thr=0.5).rpn_head
    sizes = [(4, 4), (2, 2)]
    cls = [torch.full((1, 3, h, w), -10.0) for h, w in sizes]
    reg = [torch.zeros(1, 18, h, w) for h, w in sizes]
    cls[0][0, 1, 1, 1] = 3.0  # ratio-1 anchor (32 px) at (4, 4) on P2
    reg[0][0, 10:12, 1, 1] = 1.0  # midpoint offsets ½ (std 0.5): the corners of the hull, an axis-aligned box
    cls[0][0, 1, 1, 2] = 2.0  # its neighbour at (8, 4), decoded to a diamond whose hull has IoU 0.78 → suppressed
    cls[0][0, 1, 3, 3] = 1.0  # third best of P2: beyond nms_pre=2, never decoded
    cls[1][0, 1, 0, 0] = 0.0  # P3 (64 px) at (0, 0), overlapping the first: another level, kept
    ((boxes, scores),) = head.proposals((cls, reg, [None, None]))
    assert torch.allclose(scores, torch.sigmoid(torch.tensor([3.0, 0.0])))
    assert (
        torch.allclose(boxes[0, :4], torch.tensor([4.0, 4, 32, 32])) and torch.cos(4 * boxes[0, 4]) > 1 - 1e-6
    )  # square
    # zero deltas: offsets 0 put the corners at the hull's edge midpoints, a 45° square of side 64/√2
    assert torch.allclose(boxes[1], torch.tensor([0.0, 0, 64 / math.sqrt(2), 64 / math.sqrt(2), math.pi / 4]))


@pytest.mark.parametrize("rpn", ["dcfl", "oriented"])
def test_rpn_loss_hand_computed_at_zero_logits(rpn):
    """Zero logits: BCE is log 2 per sampled anchor, so the mean over the samples is log 2 exactly."""
    torch.manual_seed(0)
    model = _tiny(rpn, rpn_anchor_scale=2)
    for layer in (model.rpn_head.rpn_cls, model.rpn_head.rpn_reg):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    scene = synthetic_scene(1, 64, 10)
    outputs = model.rpn_head(model.features(scene["image"][None]))
    losses = model.rpn_head.loss(outputs, [scene["boxes"]], (64, 64))
    assert torch.allclose(losses["loss_rpn_cls"], torch.tensor(math.log(2.0)))
    # regression: smooth-L1 of the encoded targets of the positives (zero predictions), over the samples
    assert 0 < losses["loss_rpn_bbox"] < 1
    # by hand: anchors inside the 64-px image, all positives taken (≤ 128), negatives filling 256
    head, gt = model.rpn_head, scene["boxes"]
    anchors, _, deltas, shift, _ = head._flatten(outputs)
    inside = ((anchors >= 0) & (anchors < 64)).all(1)
    zeros = torch.zeros(int(inside.sum()))
    assigned = head._assign(anchors[inside], zeros, deltas[0, inside], None if shift is None else shift[0, inside], gt)
    pos = assigned > 0
    num_pos, num_neg = int(pos.sum()), int((assigned == 0).sum())
    assert 0 < num_pos <= 128
    target = head.coder.encode(anchors[inside][pos], gt[assigned[pos] - 1])
    expect = F.smooth_l1_loss(torch.zeros_like(target), target, beta=1 / 9, reduction="sum")
    assert torch.allclose(losses["loss_rpn_bbox"], expect / (num_pos + min(num_neg, 256 - num_pos)))


def test_plain_rpn_assigns_by_horizontal_iou_with_the_gt_hulls():
    """OrientedRPNHead matches anchors to ``obb2xyxy(gt)``: a 45° square whose hull is an anchor is a
    positive of that anchor (hull IoU 1; its rotated IoU, 0.5, would make it only a low-quality match)."""
    head = _tiny("oriented").rpn_head
    anchors = torch.tensor([[0.0, 0, 32, 32], [8.0, 0, 40, 32], [100.0, 100, 132, 132]])
    gt = torch.tensor([[16.0, 16, 32 / math.sqrt(2), 32 / math.sqrt(2), math.pi / 4]])
    assigned = head._assign(anchors, torch.zeros(3), torch.zeros(3, 6), None, gt)
    assert assigned.tolist() == [1, -1, 0]  # hull IoU 1 → positive; 0.6 → ignored (between 0.3 and 0.7); 0 → negative


def test_dcfl_rpn_assigns_at_the_shifted_anchors():
    """The coarse step and the Gaussian filter see the dynamic priors: an anchor shifted onto a tiny gt
    becomes its positive, while unshifted the nearest anchor is too far for the filter (no positive)."""
    head = _tiny("dcfl", rpn_topk=1, rpn_topq=1).rpn_head
    anchors = torch.tensor([[0.0, 0, 32, 32], [100.0, 100, 132, 132]])
    gt = torch.tensor([[50.0, 50, 8, 8, 0]])
    still = head._assign(anchors, torch.zeros(2), torch.zeros(2, 6), torch.zeros(2, 2), gt)
    moved = head._assign(anchors, torch.zeros(2), torch.zeros(2, 6), torch.tensor([[0.0, 0], [-66, -66]]), gt)
    assert still.tolist() == [0, 0] and moved.tolist() == [0, 1]


def test_dcfl_rpn_dynamic_prior_shifts_anchors_by_offset_times_stride():
    head = _tiny("dcfl").rpn_head
    sizes = [(4, 4), (2, 2)]
    offsets = [torch.zeros(1, 18, h, w) for h, w in sizes]
    offsets[0][0, 0::2] = 0.5  # every tap moves down by half a pixel of P2 (stride 4)
    offsets[1][0, 1::2] = -1.0  # every tap of P3 moves left by one pixel (stride 8)
    outputs = ([torch.zeros(1, 1, h, w) for h, w in sizes], [torch.zeros(1, 6, h, w) for h, w in sizes], offsets)
    _, _, _, shift, _ = head._flatten(outputs)
    assert torch.allclose(shift[0, :16], torch.tensor([0.0, 2.0]).expand(16, 2))  # (dx, dy) = (0, 0.5·4)
    assert torch.allclose(shift[0, 16:], torch.tensor([-8.0, 0.0]).expand(4, 2))


@pytest.mark.parametrize(("rpn", "scale", "min_ap50"), [("dcfl", 4.0, 0.7), ("oriented", 2.0, 0.5)])
def test_two_stage_detector_overfits_one_tiny_scene(rpn, scale, min_ap50):
    """The RPN + RoI head must learn one scene of 3–11 px objects in 60 AdamW steps."""
    from tinydet.evaluate import coco_rotated_ap
    from tinydet.train import DetectorModule

    scene = synthetic_scene(3, 96, 12)
    torch.manual_seed(0)
    model = _tiny(rpn, rpn_anchor_scale=scale)
    opt = DetectorModule(model, lr=2e-3, optimizer="adamw").configure_optimizers()["optimizer"]
    first = None
    for _ in range(60):
        losses = model.loss(scene["image"][None], [scene["boxes"]], [scene["labels"]])
        total = sum(v for k, v in losses.items() if k.startswith("loss_"))
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        opt.step()
    assert total.item() < first / 3
    ap = coco_rotated_ap(model.predict(scene["image"][None]), [scene], len(SYNTHETIC_CLASSES))
    assert ap["AP50"] >= min_ap50, ap


def test_two_stage_save_load_round_trip_and_bad_input(tmp_path):
    torch.manual_seed(0)
    model = _tiny()
    images = torch.stack([synthetic_scene(i, 64)["image"] for i in range(2)])
    before = model.predict(images, score_thr=0.0)
    assert len(before) == 2 and before[0]["boxes"].shape[1] == 5 and before[0]["boxes"].shape[0] > 0
    model.save_pretrained(tmp_path / "m")
    loaded = TwoStageDetector.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config and isinstance(loaded.config.rpn_ratios, tuple)
    after = loaded.predict(images, score_thr=0.0)
    for a, b in zip(before, after):
        assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"])
        assert torch.allclose(a["scores"], b["scores"])
    assert loaded.roi_head.bbox_head.fc_cls.out_features == len(SYNTHETIC_CLASSES) + 1  # + background
    img = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="labels of shape"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, 0]])], [torch.tensor([0, 1])])
    with pytest.raises(ValueError, match="NaN"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, float("nan")]])], [torch.tensor([0])])
    with pytest.raises(ValueError, match="smaller than the largest stride"):
        model.predict(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown rpn"):
        TwoStageConfig.tiny(SYNTHETIC_CLASSES, rpn="retina").validate()
    empty = model.loss(img, [torch.zeros(0, 5)], [torch.zeros(0, dtype=torch.long)])  # background-only image
    assert all(torch.isfinite(v) for v in empty.values())
    # 64-px anchors on P2 cross the border of a 64-px image everywhere: no RPN samples, zero RPN loss
    huge = _tiny(rpn_anchor_scale=16).loss(img, [torch.tensor([[30.0, 30, 8, 4, 0.5]])], [torch.tensor([1])])
    assert huge["loss_rpn_cls"] == 0 and huge["loss_rpn_bbox"] == 0 and torch.isfinite(huge["loss_cls"])


def _bn(prefix):
    return [f"{prefix}.{n}" for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def mmrotate_oriented_rcnn_keys(blocks=(2, 2, 2, 2), bottleneck=False, rpn="dcfl"):
    """State-dict keys of mmrotate's ``OrientedRCNN`` as the reference builds it: mmdet ``ResNet``
    (stem ``conv1``/``bn1``; ``layer{i}.{j}.conv{k}``/``bn{k}``, ``downsample.0``/``.1`` on each stage's
    first block where shape changes), mmdet ``FPN`` over 4 inputs with ``add_extra_convs=False`` (no
    extra convs), ``OrientedRPN_DCFLHead`` (``rpn_conv`` = ``ModulatedDeformConvG``, bias-free, with
    ``conv_offset``) or ``OrientedRPNHead`` (plain ``rpn_conv`` conv), ``RotatedShared2FCBBoxHead``."""
    keys = ["backbone.conv1.weight", *_bn("backbone.bn1")]
    for stage, n in enumerate(blocks, 1):
        for b in range(n):
            p = f"backbone.layer{stage}.{b}"
            for k in range(1, 4 if bottleneck else 3):
                keys += [f"{p}.conv{k}.weight", *_bn(f"{p}.bn{k}")]
            if b == 0 and (stage > 1 or bottleneck):
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    for i in range(4):
        keys += [f"neck.{kind}.{i}.conv.{t}" for kind in ("lateral_convs", "fpn_convs") for t in ("weight", "bias")]
    rpn_conv = ["conv_offset.weight", "conv_offset.bias"] if rpn == "dcfl" else ["bias"]
    keys += [f"rpn_head.rpn_conv.{k}" for k in ["weight", *rpn_conv]]
    keys += [f"rpn_head.{m}.{t}" for m in ("rpn_cls", "rpn_reg") for t in ("weight", "bias")]
    fcs = ("shared_fcs.0", "shared_fcs.1", "fc_cls", "fc_reg")
    return keys + [f"roi_head.bbox_head.{m}.{t}" for m in fcs for t in ("weight", "bias")]


@pytest.mark.parametrize("rpn", ["dcfl", "oriented"])
def test_mmrotate_checkpoint_loads_strictly(tmp_path, rpn):
    """A ``.pth`` with the reference's key layout (ResNet-18, narrow FPN/FCs) loads into our class with
    every tensor in place, and its config is read off the checkpoint; wrong keys are refused."""
    from labcore.checkpoint import CheckpointError

    config = TwoStageConfig.tiny(SYNTHETIC_CLASSES, rpn=rpn, backbone="resnet18", fc_channels=64)
    shapes = {k: v.shape for k, v in TwoStageDetector(config).state_dict().items()}
    keys = mmrotate_oriented_rcnn_keys(rpn=rpn)
    assert set(shapes) == set(keys)
    g = torch.Generator().manual_seed(1)
    state = {
        k: torch.randint(0, 5, shapes[k], generator=g)
        if k.endswith("num_batches_tracked")
        else torch.randn(shapes[k], generator=g) * 0.05
        for k in keys
    }
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 1
    version = "le90" if config.angle_version == "le135" else "le135"  # not the preset's: read from the config text
    meta = {"CLASSES": SYNTHETIC_CLASSES, "config": f"angle_version = '{version}'\nmodel = dict(...)"}
    torch.save({"meta": meta, "state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ckpt.pth")
    model = TwoStageDetector.from_mmrotate_checkpoint(tmp_path / "ckpt.pth")
    assert (
        model.config.rpn == rpn
        and model.config.backbone == "resnet18"
        and model.config.classes == list(SYNTHETIC_CLASSES)
    )
    assert model.config.rpn_ratios == config.rpn_ratios and model.config.angle_version == version
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    images = torch.stack([synthetic_scene(i, 64)["image"] for i in range(2)])
    first, second = model.predict(images, score_thr=0.0), model.predict(images, score_thr=0.0)
    assert first[0]["boxes"].shape[0] > 0
    assert all(
        torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"]) for a, b in zip(first, second)
    )
    # missing and unexpected keys are refused with their names
    broken = dict(state)
    broken.pop("rpn_head.rpn_reg.weight")
    broken["rpn_head.rpn_conv.extra"] = torch.zeros(1)
    torch.save({"state_dict": broken}, tmp_path / "broken.pth")
    with pytest.raises(
        CheckpointError, match=r"missing keys \(1\): rpn_head.rpn_reg.weight[\s\S]*rpn_head.rpn_conv.extra"
    ):
        TwoStageDetector.from_mmrotate_checkpoint(tmp_path / "broken.pth", config)
    torch.save({"state_dict": {"bbox_head.retina_cls.weight": torch.zeros(1)}}, tmp_path / "retina.pth")
    with pytest.raises(ValueError, match="not an mmrotate Oriented R-CNN checkpoint"):
        TwoStageDetector.from_mmrotate_checkpoint(tmp_path / "retina.pth")
    with pytest.raises(ValueError, match="could not read"):
        (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
        TwoStageDetector.from_mmrotate_checkpoint(tmp_path / "junk.pth")


def test_reference_r50_layout_matches_our_default_model():
    """The full AI-TOD-R config (ResNet-50 bottlenecks, 256-wide FPN, 1024-wide FCs) has exactly the
    reference's keys, with the reference's head shapes."""
    with torch.device("meta"):
        model = TwoStageDetector(TwoStageConfig())
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert set(shapes) == set(mmrotate_oriented_rcnn_keys((3, 4, 6, 3), bottleneck=True))
    assert shapes["rpn_head.rpn_conv.conv_offset.weight"] == (27, 256, 3, 3)
    assert shapes["rpn_head.rpn_reg.weight"] == (6, 256, 1, 1)
    assert shapes["roi_head.bbox_head.shared_fcs.0.weight"] == (1024, 256 * 7 * 7)
    assert shapes["roi_head.bbox_head.fc_cls.weight"] == (9, 1024)
    assert shapes["roi_head.bbox_head.fc_reg.weight"] == (5, 1024)
    # frozen_stages=1 and BN requires_grad=False: the stem, layer1 and every BatchNorm's affine parameters

    def frozen_in_reference(name):
        parts = name.split(".")
        is_bn = parts[-2].startswith("bn") or parts[-3:-1] == ["downsample", "1"]
        return parts[0] == "backbone" and (parts[1] in ("conv1", "bn1", "layer1") or is_bn)

    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if not p.requires_grad} == {n for n in params if frozen_in_reference(n)}
    assert (
        not params["backbone.layer1.2.conv3.weight"].requires_grad
        and params["backbone.layer2.0.conv1.weight"].requires_grad
    )


@pytest.mark.gpu
def test_two_stage_runs_on_cuda_like_on_cpu():
    torch.manual_seed(0)
    model = _tiny()
    scene = synthetic_scene(0, 64)
    cpu = model.predict(scene["image"][None], score_thr=0.0)[0]
    gpu_model = model.cuda()
    gpu = gpu_model.predict(scene["image"][None].cuda(), score_thr=0.0)[0]
    assert torch.allclose(gpu["scores"].cpu()[:20], cpu["scores"][:20], atol=1e-4)
    losses = gpu_model.loss(scene["image"][None].cuda(), [scene["boxes"].cuda()], [scene["labels"].cuda()])
    assert all(torch.isfinite(v) for v in losses.values())
