"""Rotated NMS keeps exactly the set a brute-force greedy loop keeps."""

import torch

from labcore.rotated import batched_rotated_nms, rotated_iou, rotated_nms


def _greedy(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = rotated_iou(boxes, boxes)
    kept = []
    for i in order:
        if all(iou[i, j] <= thr for j in kept):
            kept.append(i)
    return kept


def _scene(n, g):
    xy = torch.rand(n, 2, generator=g) * 30
    wh = 2 + torch.rand(n, 2, generator=g) * 8
    a = torch.rand(n, 1, generator=g) * 3.14
    return torch.cat([xy, wh, a], 1), torch.rand(n, generator=g)


def test_nms_matches_brute_force_greedy():
    g = torch.Generator().manual_seed(0)
    for thr in (0.1, 0.3, 0.5, 0.7):
        boxes, scores = _scene(150, g)
        assert rotated_nms(boxes, scores, thr).tolist() == _greedy(boxes, scores, thr)


def test_batched_nms_is_per_class():
    g = torch.Generator().manual_seed(1)
    boxes, scores = _scene(120, g)
    labels = torch.randint(0, 3, (120,), generator=g)
    kept = set(batched_rotated_nms(boxes, scores, labels, 0.3).tolist())
    expected = set()
    for c in range(3):
        idx = torch.nonzero(labels == c).flatten()
        expected |= {int(idx[k]) for k in _greedy(boxes[idx], scores[idx], 0.3)}
    assert kept == expected


def test_nms_edge_cases():
    assert rotated_nms(torch.zeros(0, 5), torch.zeros(0), 0.5).numel() == 0
    same = torch.tensor([[5.0, 5.0, 4.0, 2.0, 0.2]] * 3)
    assert rotated_nms(same, torch.tensor([0.2, 0.9, 0.5]), 0.5).tolist() == [1]
