"""AI-TOD-R COCO-style AP and DOTA VOC mAP on hand-constructed cases with known answers."""

import math

import pytest
import torch

from tinydet.evaluate import coco_rotated_ap, voc_rotated_map


def _gt(boxes, labels, difficult=None):
    out = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5), "labels": torch.tensor(labels)}
    if difficult is not None:
        out["difficult"] = torch.tensor(difficult)
    return out


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels),
    }


A = [10.0, 10.0, 6.0, 3.0, 0.3]  # area 18: very tiny (bin 2²–8²)
B = [40.0, 40.0, 12.0, 10.0, 1.0]  # area 120: tiny (bin 8²–16²)
FAR = [80.0, 80.0, 6.0, 3.0, 0.0]


def test_perfect_detections_give_ap_one():
    gts = [_gt([A, B], [0, 1])]
    res = coco_rotated_ap([_det([A, B], [0.9, 0.8], [0, 1])], gts, 2)
    assert res["AP"] == pytest.approx(1.0) and res["AP50"] == pytest.approx(1.0) and res["AR"] == pytest.approx(1.0)
    assert res["AP_vt"] == pytest.approx(1.0) and res["AP_t"] == pytest.approx(1.0)
    assert res["AP_s"] == -1.0 and res["AP_m"] == -1.0  # no gts in those bins
    assert voc_rotated_map([_det([A, B], [0.9, 0.8], [0, 1])], gts, 2)["mAP50"] == pytest.approx(1.0)


def test_false_positive_between_two_hits():
    # precision 1 up to recall ½, then 2/3 at recall 1: COCO's 101-point AP = (51·1 + 50·⅔)/101
    gts = [_gt([A, B], [0, 0])]
    dets = [_det([A, FAR, B], [0.9, 0.8, 0.7], [0, 0, 0])]
    expected = (51 + 50 * 2 / 3) / 101
    res = coco_rotated_ap(dets, gts, 1)
    assert res["AP"] == pytest.approx(expected) and res["AP50"] == pytest.approx(expected)
    assert voc_rotated_map(dets, gts, 1)["mAP50"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # the FP scored first: precision ½ at recall ½ and ⅔ at 1 → envelope ⅔ everywhere
    dets = [_det([A, FAR, B], [0.7, 0.9, 0.6], [0, 0, 0])]
    assert coco_rotated_ap(dets, gts, 1)["AP"] == pytest.approx(2 / 3)


def test_iou_thresholds_and_duplicates():
    # A shifted by 1 px along its 6 px side: intersection 15, union 21, IoU 5/7 ≈ 0.714
    c, s = math.cos(A[4]), math.sin(A[4])
    shifted = [A[0] + c, A[1] + s, 6.0, 3.0, A[4]]
    res = coco_rotated_ap([_det([shifted], [0.9], [0])], [_gt([A], [0])], 1)
    assert res["AP50"] == pytest.approx(1.0) and res["AP75"] == 0.0
    assert res["AP"] == pytest.approx(0.5)  # a hit at thresholds .50–.70, a miss at .75–.95
    # duplicates: the second detection of the same object is a false positive at every threshold
    res = coco_rotated_ap([_det([A, A], [0.9, 0.8], [0, 0])], [_gt([A], [0])], 1)
    assert res["AP"] == pytest.approx(1.0)  # the FP comes after full recall: precision envelope stays 1


def test_wrong_class_missing_gts_and_difficult():
    gts = [_gt([A], [0]), _gt([B], [0])]
    dets = [_det([A], [0.9], [1]), _det([B], [0.8], [0])]  # first image: right box, wrong class
    res = coco_rotated_ap(dets, gts, 2)
    assert res["AP"] == pytest.approx(51 / 101)  # class 0: recall ½ at precision 1; class 1 has no gts
    # a difficult gt neither counts as missed nor makes its detection a false positive
    gts = [_gt([A, B], [0, 0], [False, True])]
    for dets in ([_det([A, B], [0.9, 0.8], [0, 0])], [_det([A], [0.9], [0])]):
        assert coco_rotated_ap(dets, gts, 1)["AP"] == pytest.approx(1.0)
        assert voc_rotated_map(dets, gts, 1)["mAP50"] == pytest.approx(1.0)


def test_size_bins_ignore_out_of_range_detections():
    # only the very-tiny object is found; an unmatched very-tiny false positive does not hurt the tiny bin
    gts = [_gt([A, B], [0, 0])]
    dets = [_det([A, FAR], [0.9, 0.95], [0, 0])]
    res = coco_rotated_ap(dets, gts, 1)
    assert res["AP_t"] == pytest.approx(0.0)
    assert res["AP_vt"] == pytest.approx(0.5)  # precision ½ at recall 1 (the FP scored first)


def test_max_dets_and_length_mismatch():
    gts = [_gt([A], [0])]
    dets = [_det([FAR, A], [0.9, 0.8], [0, 0])]
    assert coco_rotated_ap(dets, gts, 1, max_dets=1)["AP"] == 0.0
    with pytest.raises(ValueError, match="images"):
        coco_rotated_ap(dets, gts + gts, 1)
