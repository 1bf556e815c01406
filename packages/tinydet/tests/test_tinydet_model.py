"""Coder, heads, assigners, losses, inference and save/load of the detectors."""

import math

import pytest
import torch
from torchvision.ops import deform_conv2d

from labcore.rotated import gaussian_gjsd, rotated_iou
from tinydet.assign import coarse_to_fine_assign, gjsd_similarity, max_iou_assign
from tinydet.coder import DeltaXYWHACoder, grid_anchors
from tinydet.data import SYNTHETIC_CLASSES, collate, synthetic_scene
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.model import FPN, build_backbone, modulated_deform_conv3x3


def _tiny(head):
    torch.manual_seed(0)
    return RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES, head=head))


def test_coder_round_trip_and_angle_wrap():
    g = torch.Generator().manual_seed(0)
    anchors = torch.cat(
        [
            torch.rand(50, 2, generator=g) * 100,
            4 + torch.rand(50, 2, generator=g) * 30,
            torch.rand(50, 1, generator=g) * math.pi - math.pi / 4,
        ],
        1,
    )
    gt = torch.cat(
        [
            torch.rand(50, 2, generator=g) * 100,
            2 + torch.rand(50, 2, generator=g) * 30,
            torch.rand(50, 1, generator=g) * math.pi - math.pi / 4,
        ],
        1,
    )
    coder = DeltaXYWHACoder("le135")
    deltas = coder.encode(anchors, gt)
    assert (deltas[:, 4].abs() <= 0.75 + 1e-6).all()  # angle difference wrapped into le135, over π
    back = coder.decode(anchors, deltas)
    assert torch.allclose(back[:, :4], gt[:, :4], atol=1e-3)
    assert torch.allclose(torch.remainder(back[:, 4] - gt[:, 4] + 1e-4, math.pi), torch.full((50,), 1e-4), atol=1e-4)


def test_anchor_grid_layout():
    a = grid_anchors([(2, 3), (1, 2)], [8, 16], 4.0)
    assert a[0].shape == (6, 5) and a[1].shape == (2, 5)
    assert a[0][4].tolist() == [8.0, 8.0, 32.0, 32.0, 0.0]  # row 1, column 1 (row-major), centre offset 0


def test_backbones_from_c2_and_fpn_extra_levels():
    """start_level only chooses which maps come back; FPN extra levels: 'max_pool' subsamples the last
    output (mmdet add_extra_convs=False, no parameters), 'on_input' convolves the last input."""
    for name in ("tiny", "resnet18"):
        torch.manual_seed(0)
        c2 = build_backbone(name, start_level=2).eval()
        torch.manual_seed(0)
        c3 = build_backbone(name).eval()
        x = torch.rand(1, 3, 64, 64)
        feats = c2(x)
        assert [f.shape[-1] for f in feats] == [16, 8, 4, 2] and [f.shape[1] for f in feats] == c2.out_channels
        assert c3.out_channels == c2.out_channels[1:] and all(torch.equal(a, b) for a, b in zip(c3(x), feats[1:]))
    with pytest.raises(ValueError, match="start_level"):
        build_backbone("resnet18", start_level=4)
    feats = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    pooled = FPN([8, 16], 4, num_outs=4, extra="max_pool")
    outs = pooled(feats)
    assert len(pooled.fpn_convs) == 2 and [o.shape[-1] for o in outs] == [8, 4, 2, 1]
    assert torch.equal(outs[2], outs[1][..., ::2, ::2]) and torch.equal(outs[3], outs[2][..., ::2, ::2])
    convs = FPN([8, 16], 4, num_outs=4)
    outs = convs(feats)
    assert len(convs.fpn_convs) == 4 and torch.equal(outs[2], convs.fpn_convs[2](feats[1]))
    assert torch.equal(outs[3], convs.fpn_convs[3](outs[2]))


def test_grid_sample_deform_conv_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 7, generator=g, dtype=torch.float64)
    off = torch.randn(2, 18, 6, 7, generator=g, dtype=torch.float64) * 1.5
    mask = torch.rand(2, 9, 6, 7, generator=g, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(
        modulated_deform_conv3x3(x, off, mask, w), deform_conv2d(x, off, w, padding=1, mask=mask), atol=1e-10
    )


def test_dcfl_head_init_as_the_reference_and_dilated_conv_is_fixed_offset_dcn():
    model = RotatedDetector(DetectorConfig(list(SYNTHETIC_CLASSES), backbone="tiny", fpn_channels=64, feat_channels=64))
    offset_conv = model.bbox_head.reg_convs[-1].conv_offset
    # N(0, 0.01) weights, zero bias (the head's Normal init_cfg wins over ModulatedDeformConvG's zeros)
    assert abs(offset_conv.weight.std().item() - 0.01) < 1e-3 and (offset_conv.bias == 0).all()
    offsets = model(torch.rand(1, 3, 128, 128))[2]
    assert all(0 < o.abs().mean() < 0.5 for o in offsets)  # small, non-zero offsets at the start
    dil = model.bbox_head.reg_convs[-2]
    x = torch.randn(1, dil.weight.shape[1], 9, 9)
    d = dil.dilation
    ky, kx = torch.meshgrid(torch.arange(-1, 2), torch.arange(-1, 2), indexing="ij")
    fixed = torch.stack([ky, kx], -1).reshape(18).float() * (d - 1)
    ref = deform_conv2d(x, fixed.view(1, 18, 1, 1).expand(1, 18, 9, 9).contiguous(), dil.weight, padding=1)
    assert torch.allclose(dil(x), ref, atol=1e-5)


def test_max_iou_assigner_rules():
    anchors = torch.tensor([[0.0, 0.0, 10, 10, 0], [5, 0, 10, 10, 0], [40, 40, 10, 10, 0], [100, 100, 10, 10, 0]])
    gt = torch.tensor([[0.0, 0.0, 10, 10, 0], [41, 41, 3, 3, 0]])
    assigned = max_iou_assign(anchors, gt, 0.5, 0.4)
    # anchor 0 matches gt 0 exactly; anchor 1 has IoU 1/3 → negative; gt 1 (IoU 0.09) still gets its best anchor
    assert assigned.tolist() == [1, 0, 2, 0]
    assert (max_iou_assign(anchors, torch.zeros(0, 5)) == 0).all()


def test_coarse_to_fine_assigner_properties():
    g = torch.Generator().manual_seed(0)
    anchors = torch.cat(grid_anchors([(16, 16)], [8], 4.0))
    gt = torch.tensor([[30.0, 40.0, 12.0, 4.0, 0.3], [90.0, 70.0, 6.0, 6.0, 0.0], [95.0, 72.0, 20.0, 5.0, 1.0]])
    preds = anchors + torch.randn(anchors.shape, generator=g) * torch.tensor([2.0, 2.0, 4.0, 4.0, 0.2])
    logits = torch.randn(anchors.shape[0], 3, generator=g)
    topk, topq = 9, 4
    assigned = coarse_to_fine_assign(anchors, preds, logits, gt, topk=topk, topq=topq, gauss_thr=10.0)
    sim = gjsd_similarity(gt, anchors)
    for i in range(3):
        pos = torch.nonzero(assigned == i + 1).flatten()
        assert 1 <= pos.numel() <= topq
        coarse = torch.nonzero(sim[i] >= sim[i].topk(topk).values[-1]).flatten()  # top-k values, ties included
        assert set(pos.tolist()) <= set(coarse.tolist())  # fine ⊂ coarse candidates
    # a tight Gaussian-mixture threshold only removes positives, never adds
    strict = coarse_to_fine_assign(anchors, preds, logits, gt, topk=topk, topq=topq, gauss_thr=0.05)
    assert set(torch.nonzero(strict > 0).flatten().tolist()) <= set(torch.nonzero(assigned > 0).flatten().tolist())
    assert (coarse_to_fine_assign(anchors, preds, logits, gt[:0]) == 0).all()
    # similarity is 1 / (1 + GJSD)
    assert torch.allclose(sim[0, :5], 1 / (1 + gaussian_gjsd(gt[:1].expand(5, 5), anchors[:5])), atol=1e-6)


def _c2f_by_loops(priors, pred, logits, gt, topk, topq, gauss_thr):
    """A direct, loop-by-loop reading of the reference ``C2FAssigner.assign`` (constraint 'dgmm'),
    for cases where every gt keeps at least ``topq`` of its own candidates."""
    sim = gjsd_similarity(gt, priors).tolist()
    num_gt, num_priors = len(sim), len(sim[0])
    labels = [0 if 0 <= max(sim[i][a] for i in range(num_gt)) < 0.8 else -1 for a in range(num_priors)]
    for i in range(num_gt):  # every prior equal to one of the gt's top-k values; a later gt wins
        for value in sorted(sim[i], reverse=True)[:topk]:
            for a in range(num_priors):
                if sim[i][a] == value:
                    labels[a] = i + 1
    cands = [a for a in range(num_priors) if labels[a] > 0]
    q = min(topq, len(cands))
    iou = rotated_iou(gt, pred).tolist()
    quality = {a: iou[labels[a] - 1][a] + torch.sigmoid(logits[a].max()).item() for a in cands}
    kept, pos_mean = [0 if a in cands else labels[a] for a in range(num_priors)], []
    for i in range(num_gt):
        own = sorted((a for a in cands if labels[a] == i + 1), key=lambda a: -quality[a])
        assert len(own) >= q, "case outside this reading: the reference would pad with other gts' candidates"
        for a in own[:q]:
            kept[a] = i + 1
        pos_mean.append(priors[own[:q], :2].double().mean(0))
    out = []
    for a in range(num_priors):
        g = max(kept[a] - 1, 0)  # the reference multiplies every label by the flag of gt max(label − 1, 0)
        x, y, w, h, t = gt[g].double().tolist()
        rot = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
        inv = torch.linalg.inv(rot @ torch.diag(torch.tensor([w * w / 4, h * h / 4], dtype=torch.float64)) @ rot.T)
        d_gt = priors[a, :2].double() - torch.tensor([x, y], dtype=torch.float64)
        d_pos = priors[a, :2].double() - pos_mean[g]
        mix = 0.7 * math.exp(-0.5 * float(d_gt @ inv @ d_gt)) + 0.3 * math.exp(-0.5 * float(d_pos @ inv @ d_pos))
        out.append(kept[a] * int(mix >= math.exp(-gauss_thr)))
    return out


def test_coarse_to_fine_assigner_ties_take_every_tied_prior():
    # an axis-aligned gt halfway between grid columns: mirror-image priors have identical similarities
    priors = torch.cat(grid_anchors([(6, 6)], [8], 2.0))
    gt = torch.tensor([[20.0, 16.0, 8.0, 8.0, 0.0]])
    sim = gjsd_similarity(gt, priors)[0]
    kth = sim.topk(3).values[-1]
    assert (sim > kth).sum() == 2 and (sim == kth).sum() == 4  # 2 nearest, then 4 tied at the 3rd value
    assigned = coarse_to_fine_assign(priors, priors, torch.zeros(36, 1), gt, topk=3, topq=10, gauss_thr=100.0)
    assert (assigned == 1).sum() == 6  # all tied priors are candidates (top-k indices would keep 3)


def test_coarse_to_fine_assigner_matches_a_loop_reading_of_the_reference():
    g = torch.Generator().manual_seed(1)
    # a dense 2-px grid of 8-px priors: many priors similar enough (≥ 0.8) to be ignored
    priors = torch.cat(grid_anchors([(12, 12)], [2], 4.0))
    cases = [
        torch.tensor([[6.0, 8.0, 8.0, 8.0, 0.0], [16.0, 16.0, 8.0, 8.0, 0.0]]),  # exact ties, ignored priors
        torch.tensor([[7.0, 9.0, 9.0, 6.0, 0.4], [15.0, 14.0, 7.0, 5.0, 1.2], [18.0, 8.0, 6.0, 8.0, 2.0]]),
    ]
    for gt in cases:
        pred = priors + torch.randn(priors.shape, generator=g) * torch.tensor([1.0, 1.0, 1.0, 1.0, 0.3])
        logits = torch.randn(priors.shape[0], 2, generator=g)
        for topk, topq, thr in [(9, 4, 0.8), (16, 12, 0.8), (6, 3, 2.0)]:
            fast = coarse_to_fine_assign(priors, pred, logits, gt, topk=topk, topq=topq, gauss_thr=thr)
            assert fast.tolist() == _c2f_by_loops(priors, pred, logits, gt, topk, topq, thr), (gt, topk, topq)
    # the reference's filter turns an ignored prior outside gt 0's mixture into a negative
    gt = cases[0]
    assigned = coarse_to_fine_assign(priors, priors, torch.zeros(144, 1), gt, topk=4, topq=4, gauss_thr=0.8)
    ignored_sim = gjsd_similarity(gt, priors).max(0).values >= 0.8
    assert (assigned == -1).any() and (ignored_sim & (assigned == 0)).any()


def test_dynamic_prior_is_the_mean_tap_offset_times_half_the_stride():
    """r_dcfl_head: dy, dx = the mean of offset channels 2i, 2i+1 over the 9 taps, × 4·2^level (= stride/2)."""
    model = _tiny("dcfl")
    conv = model.bbox_head.reg_convs[-1].conv_offset
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.bias[:18:2] = torch.linspace(0.0, 0.8, 9)  # dy of the 9 taps, mean 0.4
        conv.bias[1:18:2] = -0.6  # dx
    flat = model.flat_outputs(model(torch.rand(1, 3, 64, 64)))
    anchors, shift = flat[0], flat[4]
    stride = anchors[:, 2] / model.config.octave_base_scale
    assert torch.allclose(shift[0], torch.stack([-0.6 * stride / 2, 0.4 * stride / 2], 1), atol=1e-5)


def test_dcfl_assigner_scores_boxes_decoded_as_the_reference_head_does():
    """r_dcfl_head hands C2FAssigner the shifted priors, which decodes the deltas from them with its
    default coder (angle delta in radians, not ×π); the loss decodes from the plain anchors."""
    g = torch.Generator().manual_seed(0)
    model = _tiny("dcfl")
    anchors = torch.cat(grid_anchors([(8, 8)], [8], 2.0))
    gt = torch.tensor([[20.0, 30.0, 14.0, 5.0, 0.5], [44.0, 40.0, 14.0, 6.0, 1.0]])
    labels = torch.tensor([0, 1])
    priors = anchors + torch.tensor([3.0, -2.0, 0, 0, 0])
    # from each shifted prior, a 16×6 box on its nearest gt's centre with a random angle delta
    nearest = gt[torch.cdist(priors[:, :2], gt[:, :2]).argmin(1)]
    reg = torch.zeros(1, 64, 5)
    reg[0, :, :2] = (nearest[:, :2] - priors[:, :2]) / 16
    reg[..., 3], reg[..., 4] = -1.0, torch.rand(1, 64, generator=g) * 1.6 - 0.3
    cls = torch.zeros(1, 64, 3)  # the fine stage then ranks by IoU alone
    shift = torch.tensor([3.0, -2.0]).expand(1, 64, 2)
    flat = (anchors, cls, reg, model.coder.decode(anchors[None], reg), shift)
    dx, dy, dw, dh, da = reg[0].unbind(-1)  # by hand: angle-0 priors of side 16
    by_hand = torch.stack([priors[:, 0] + 16 * dx, priors[:, 1] + 16 * dy, 16 * dw.exp(), 16 * dh.exp(), da], -1)
    cfg = model.config
    cfg.gauss_thr, cfg.topq = 10.0, 2  # keep every fine-stage positive
    expected = coarse_to_fine_assign(priors, by_hand, cls[0], gt, cfg.topk, cfg.topq, cfg.gauss_thr)
    assert torch.equal(model.assign_targets(flat, [gt], [labels])[0][0], expected)
    cfg.assigner_boxes = "loss"  # the loss's boxes: another assignment here
    loss_boxes = coarse_to_fine_assign(priors, flat[3][0], cls[0], gt, cfg.topk, cfg.topq, cfg.gauss_thr)
    assert torch.equal(model.assign_targets(flat, [gt], [labels])[0][0], loss_boxes)
    assert not torch.equal(loss_boxes, expected)


@pytest.mark.parametrize("head", ["dcfl", "retina"])
def test_loss_normaliser_counts_at_least_one_positive_per_image(head):
    """mmdet's num_total_pos: Σ_images max(#positives, 1), so an image without objects adds 1."""
    model = _tiny(head).eval()  # eval: BatchNorm statistics do not mix the images
    scene = synthetic_scene(0, 64, max_objects=6)
    empty = (torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))
    one = model.loss(scene["image"][None], [scene["boxes"]], [scene["labels"]])
    two = model.loss(
        torch.stack([scene["image"], scene["image"]]), [scene["boxes"], empty[0]], [scene["labels"], empty[1]]
    )
    assert one["num_pos"] >= 1 and two["num_pos"] == one["num_pos"] + 1
    assert torch.allclose(two["loss_bbox"] * two["num_pos"], one["loss_bbox"] * one["num_pos"], rtol=1e-4)


@pytest.mark.parametrize("head", ["dcfl", "retina"])
def test_losses_are_finite_and_training_reduces_them(head):
    model = _tiny(head)
    batch = collate([synthetic_scene(i, 64, max_objects=6) for i in range(2)])
    offsets = [p for n, p in model.named_parameters() if "conv_offset" in n]
    rest = [p for n, p in model.named_parameters() if "conv_offset" not in n]
    # DCN offsets at 0.1× lr, as DetectorModule uses AdamW (full-rate sign-like steps make the offsets jump)
    opt = torch.optim.AdamW([{"params": rest}, {"params": offsets, "lr": 3e-4}], lr=3e-3)
    totals = []
    for _ in range(8):
        losses = model.loss(batch["image"], batch["boxes"], batch["labels"])
        total = losses["loss_cls"] + losses["loss_bbox"]
        assert torch.isfinite(total) and losses["num_pos"] >= 1
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert min(totals[-3:]) < totals[0]
    # an image without objects is pure background
    empty = model.loss(batch["image"][:1], [torch.zeros(0, 5)], [torch.zeros(0, dtype=torch.long)])
    assert torch.isfinite(empty["loss_cls"]) and empty["loss_bbox"] == 0


def test_predict_save_and_load_round_trip(tmp_path):
    model = _tiny("dcfl")
    images = torch.stack([synthetic_scene(i, 64)["image"] for i in range(2)])
    before = model.predict(images, score_thr=0.0)
    assert before[0]["boxes"].shape[1] == 5 and len(before[0]["boxes"]) <= model.config.max_per_img
    model.save_pretrained(tmp_path / "m")
    loaded = RotatedDetector.from_pretrained(tmp_path / "m")
    after = loaded.predict(images, score_thr=0.0)
    for a, b in zip(before, after):
        assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["scores"], b["scores"])
    keys = set(loaded.state_dict())
    assert {
        "bbox_head.retina_cls.weight",
        "bbox_head.reg_convs.2.conv_offset.weight",
        "neck.lateral_convs.0.conv.weight",
        "bbox_head.cls_convs.1.weight",
    } <= keys  # mmrotate key layout
    # kept detections do not overlap beyond the NMS threshold within a class
    d = after[0]
    for c in d["labels"].unique():
        b = d["boxes"][d["labels"] == c]
        iou = rotated_iou(b, b).fill_diagonal_(0)
        assert iou.max() <= model.config.nms_iou_thr + 1e-5


def test_bad_inputs_raise_clear_errors(tmp_path):
    model = _tiny("retina")
    with pytest.raises(ValueError, match="smaller than the largest stride"):
        model.predict(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.predict(torch.rand(3, 64, 64))
    img = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="NaN"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, float("nan")]])], [torch.tensor([0])])
    with pytest.raises(ValueError, match="labels of image 0"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, 0]])], [torch.tensor([7])])
    # zero-size boxes are dropped, not crashed on
    out = model.loss(img, [torch.tensor([[10.0, 10, 0, 2, 0]])], [torch.tensor([0])])
    assert torch.isfinite(out["loss_cls"])
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        RotatedDetector.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unknown head"):
        RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES, head="yolo"))


@pytest.mark.gpu
def test_cuda_paths_agree_with_cpu_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 12, 12, generator=g)
    off = torch.randn(2, 18, 12, 12, generator=g)
    mask = torch.rand(2, 9, 12, 12, generator=g)
    w = torch.randn(8, 8, 3, 3, generator=g)
    gpu = deform_conv2d(x.cuda(), off.cuda(), w.cuda(), padding=1, mask=mask.cuda()).cpu()
    assert torch.allclose(gpu, modulated_deform_conv3x3(x, off, mask, w), atol=1e-4)
    boxes = torch.cat(
        [
            torch.rand(300, 2, generator=g) * 50,
            1 + torch.rand(300, 2, generator=g) * 10,
            torch.rand(300, 1, generator=g) * 3,
        ],
        1,
    )
    assert torch.allclose(rotated_iou(boxes.cuda(), boxes.cuda()).cpu(), rotated_iou(boxes, boxes), atol=1e-5)


@pytest.mark.parametrize("head", ["retina", "dcfl"])
def test_detector_overfits_one_tiny_scene(head):
    """Both detectors must learn one scene of 3–11 px objects to AP50 ≥ 0.7 in 60 AdamW steps (the demo's
    optimiser settings: lr 2e-3, DCN offsets at 0.1× lr, 8-px anchors)."""
    from tinydet.evaluate import coco_rotated_ap
    from tinydet.train import DetectorModule

    scene = synthetic_scene(3, 96, 12)
    torch.manual_seed(0)
    model = RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES, head=head, octave_base_scale=1))
    opt = DetectorModule(model, lr=2e-3, optimizer="adamw").configure_optimizers()["optimizer"]
    for _ in range(60):
        losses = model.loss(scene["image"][None], [scene["boxes"]], [scene["labels"]])
        opt.zero_grad()
        (losses["loss_cls"] + losses["loss_bbox"]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        opt.step()
    ap = coco_rotated_ap(model.predict(scene["image"][None]), [scene], len(SYNTHETIC_CLASSES))
    assert ap["AP50"] >= 0.7, ap


def test_adamw_slows_down_the_dcn_offset_layers_only():
    from tinydet.train import DetectorModule

    model = _tiny("dcfl")

    def lrs(optimizer):  # per parameter name, in the optimiser's order
        groups = DetectorModule(model, lr=1e-3, optimizer=optimizer).configure_optimizers()["optimizer"].param_groups
        names = {id(p): n for n, p in model.named_parameters()}
        return [(names[id(p)], g["initial_lr"]) for g in groups for p in g["params"]]

    adamw = lrs("adamw")
    assert [n for n, _ in adamw] == [n for n, _ in model.named_parameters()]  # Lightning's FSDP resume needs it
    assert any("conv_offset" in n for n, _ in adamw)
    assert all(lr == pytest.approx(1e-4 if "conv_offset" in n else 1e-3) for n, lr in adamw)
    assert all(lr == pytest.approx(1e-3) for _, lr in lrs("sgd"))  # the paper's SGD schedule: no multiplier


def test_select_detections_drops_invalid_boxes_and_runs_class_aware_nms():
    from tinydet.detector import select_detections

    boxes = torch.tensor(
        [
            [10.0, 10, 8, 4, 0.0],  # best
            [10.2, 10, 8, 4, 0.0],  # same class, IoU ≈ 0.95 with the best → suppressed
            [10.2, 10, 8, 4, 0.0],  # other class → kept
            [30.0, 30, 0, 4, 0.0],  # zero width → dropped
            [float("nan"), 30, 4, 4, 0.0],  # non-finite → dropped, not an NMS error
            [50.0, 50, 4, 8, 0.0],  # kept; le90 turns it to (8, 4, -π/2)
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.99, 0.6])
    labels = torch.tensor([0, 0, 1, 0, 0, 0])
    out = select_detections(boxes, scores, labels, 0.5, 10, "le90")
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7, 0.6]) and out["labels"].tolist() == [0, 1, 0]
    assert torch.allclose(out["boxes"][2], torch.tensor([50.0, 50, 8, 4, -math.pi / 2]))
    assert select_detections(boxes, scores, labels, 0.5, 2, "le90")["scores"].tolist() == pytest.approx([0.9, 0.7])
