"""Two-stage detector (DCFL RPN + rotated RoI head): coder, RoI sampling, RoI levels, overfitting, save/load."""

import math

import pytest
import torch

from labcore.rotated import regularize_boxes, rotated_iou
from tinydet.coder import DeltaXYWHACoder
from tinydet.data import SYNTHETIC_CLASSES, synthetic_scene
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


def test_multilevel_roi_align_routes_by_scale():
    feats = [torch.randn(2, 4, 16, 16), torch.randn(2, 4, 8, 8)]
    boxes = [torch.tensor([[40.0, 40, 10, 6, 0.2], [64, 64, 150, 120, 0.1]]), torch.tensor([[30.0, 50, 20, 8, 1.0]])]
    assert map_roi_levels(torch.cat(boxes), 2).tolist() == [0, 1, 0]  # √(wh) ≥ 112 → level 1
    out = multilevel_roi_align(feats, [8, 16], boxes, 7)
    assert torch.allclose(out[0], rotated_roi_align(feats[0][:1], [boxes[0][:1]], 7, 8)[0])
    assert torch.allclose(out[1], rotated_roi_align(feats[1][:1], [boxes[0][1:]], 7, 16)[0])
    assert torch.allclose(out[2], rotated_roi_align(feats[0][1:], [boxes[1]], 7, 8)[0])


@pytest.mark.parametrize("head", ["dcfl", "retina"])
def test_two_stage_detector_overfits_one_tiny_scene(head):
    """The RPN + RoI head must learn one scene of 3–11 px objects to AP50 ≥ 0.6 in 60 AdamW steps."""
    from tinydet.evaluate import coco_rotated_ap
    from tinydet.train import DetectorModule

    scene = synthetic_scene(3, 96, 12)
    torch.manual_seed(0)
    model = TwoStageDetector(TwoStageConfig.tiny(SYNTHETIC_CLASSES, head=head, octave_base_scale=1))
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
    assert total.item() < first / 5
    ap = coco_rotated_ap(model.predict(scene["image"][None]), [scene], len(SYNTHETIC_CLASSES))
    assert ap["AP50"] >= 0.6, ap


def test_two_stage_save_load_round_trip_and_bad_input(tmp_path):
    torch.manual_seed(0)
    model = TwoStageDetector(TwoStageConfig.tiny(SYNTHETIC_CLASSES))
    images = torch.stack([synthetic_scene(i, 64)["image"] for i in range(2)])
    before = model.predict(images, score_thr=0.0)
    assert len(before) == 2 and before[0]["boxes"].shape[1] == 5 and before[0]["boxes"].shape[0] > 0
    model.save_pretrained(tmp_path / "m")
    loaded = TwoStageDetector.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config and isinstance(loaded.config.rcnn_stds, tuple)
    after = loaded.predict(images, score_thr=0.0)
    for a, b in zip(before, after):
        assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"])
        assert torch.allclose(a["scores"], b["scores"])
    keys = set(loaded.state_dict())
    assert {"roi_head.bbox_head.shared_fcs.1.weight", "roi_head.bbox_head.fc_cls.weight"} <= keys
    assert loaded.roi_head.bbox_head.fc_cls.out_features == len(SYNTHETIC_CLASSES) + 1  # + background
    assert loaded.rpn.bbox_head.retina_cls.out_channels == 1  # class-agnostic RPN
    img = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="labels of shape"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, 0]])], [torch.tensor([0, 1])])
    with pytest.raises(ValueError, match="NaN"):
        model.loss(img, [torch.tensor([[10.0, 10, 4, 2, float("nan")]])], [torch.tensor([0])])
    empty = model.loss(img, [torch.zeros(0, 5)], [torch.zeros(0, dtype=torch.long)])  # background-only image
    assert all(torch.isfinite(v) for v in empty.values())


@pytest.mark.gpu
def test_two_stage_runs_on_cuda_like_on_cpu():
    torch.manual_seed(0)
    model = TwoStageDetector(TwoStageConfig.tiny(SYNTHETIC_CLASSES))
    scene = synthetic_scene(0, 64)
    cpu = model.predict(scene["image"][None], score_thr=0.0)[0]
    gpu_model = model.cuda()
    gpu = gpu_model.predict(scene["image"][None].cuda(), score_thr=0.0)[0]
    assert torch.allclose(gpu["scores"].cpu()[:20], cpu["scores"][:20], atol=1e-4)
    losses = gpu_model.loss(scene["image"][None].cuda(), [scene["boxes"].cuda()], [scene["labels"].cuda()])
    assert all(torch.isfinite(v) for v in losses.values())
