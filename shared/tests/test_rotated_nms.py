"""Rotated NMS keeps exactly the set a brute-force greedy loop keeps."""

import pytest
import torch

from labcore.rotated import batched_rotated_nms, obb_to_poly, overlap_candidates, rotated_iou, rotated_nms

shapely = pytest.importorskip("shapely")
from shapely.geometry import Polygon  # noqa: E402


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


def test_nms_matches_brute_force_on_dense_clusters_with_ties_and_chains():
    g = torch.Generator().manual_seed(2)
    # clusters of near-duplicates (long suppression chains), repeated scores, a few huge boxes
    centres = torch.rand(12, 2, generator=g) * 60
    xy = centres.repeat_interleave(25, 0) + torch.randn(300, 2, generator=g)
    wh = 3 + torch.rand(300, 2, generator=g) * 6
    wh[:5] *= 10
    boxes = torch.cat([xy, wh, torch.rand(300, 1, generator=g) * 3.14], 1)
    scores = torch.randint(0, 20, (300,), generator=g).float()  # many ties: stable order decides
    for thr in (0.05, 0.4, 0.8):
        want = _greedy(boxes, scores, thr)
        assert rotated_nms(boxes, scores, thr).tolist() == want
        for tile in (7, 64):  # tiles: kept boxes of earlier tiles first, then the tile's own pairs
            assert rotated_nms(boxes, scores, thr, tile=tile).tolist() == want


def test_nms_tiles_bound_the_pairs_clipped_at_once(monkeypatch):
    """A dense cluster of 600 overlapping boxes: no call sees more than tile·N candidate pairs."""
    import labcore.rotated.nms as nms

    g = torch.Generator().manual_seed(4)
    boxes = torch.cat(
        [20 + torch.randn(600, 2, generator=g), 8 + torch.rand(600, 2, generator=g), torch.rand(600, 1, generator=g)], 1
    )
    scores = torch.rand(600, generator=g)
    seen, real = [], nms.overlap_candidates

    def counting(b1, b2=None):
        out = real(b1, b2)
        seen.append(out[0].numel())
        return out

    monkeypatch.setattr(nms, "overlap_candidates", counting)
    kept = rotated_nms(boxes, scores, 0.4, tile=50)
    assert max(seen) <= 50 * 600 and max(seen) < 600 * 599 // 2
    monkeypatch.setattr(nms, "overlap_candidates", real)
    assert kept.tolist() == rotated_nms(boxes, scores, 0.4, tile=600).tolist()


def test_overlap_candidates_are_exactly_the_pairs_with_meeting_bounding_boxes():
    g = torch.Generator().manual_seed(3)
    a, _ = _scene(200, g)
    b, _ = _scene(170, g)

    def brute(x, y):  # axis-aligned hulls of the corner polygons, compared pair by pair
        cx, cy = obb_to_poly(x.double()), obb_to_poly(y.double())
        lo1, hi1, lo2, hi2 = cx.amin(1), cx.amax(1), cy.amin(1), cy.amax(1)
        meet = ((lo1[:, None] <= hi2[None] + 1e-6) & (lo2[None] <= hi1[:, None] + 1e-6)).all(-1)
        return {tuple(p) for p in torch.nonzero(meet).tolist()}

    i, j = overlap_candidates(a, b)
    assert len(i) == len(set(zip(i.tolist(), j.tolist()))) and set(zip(i.tolist(), j.tolist())) == brute(a, b)
    i, j = overlap_candidates(a)  # self-pairs: each unordered pair once, no (i, i)
    got = {(min(p, q), max(p, q)) for p, q in zip(i.tolist(), j.tolist())}
    assert len(got) == len(i) and got == {(p, q) for p, q in brute(a, a) if p < q}
    # every pair with positive IoU is a candidate
    iou = rotated_iou(a, b)
    assert {tuple(p) for p in torch.nonzero(iou > 0).tolist()} <= brute(a, b)


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


def test_batched_nms_is_exact_on_large_images_with_many_classes():
    """16000-px scenes, 3000 boxes, 15 classes: exactly per-class NMS (a float32 class offset, the earlier
    implementation, changed the kept set on 9 of 10 such scenes)."""
    g = torch.Generator().manual_seed(5)
    for _ in range(2):
        xy = (torch.rand(300, 2, generator=g) * 16000).repeat_interleave(10, 0) + torch.randn(3000, 2, generator=g)
        boxes = torch.cat([xy, 3 + torch.rand(3000, 2, generator=g) * 6, torch.rand(3000, 1, generator=g) * 3], 1)
        scores, labels = torch.rand(3000, generator=g), torch.randint(0, 15, (3000,), generator=g)
        got = batched_rotated_nms(boxes, scores, labels, 0.4)
        expected = []
        for c in range(15):
            idx = torch.nonzero(labels == c).flatten()
            expected += idx[rotated_nms(boxes[idx], scores[idx], 0.4)].tolist()
        assert sorted(got.tolist()) == sorted(expected)
        assert (scores[got][1:] <= scores[got][:-1]).all()  # by decreasing score


def test_nms_edge_cases():
    assert rotated_nms(torch.zeros(0, 5), torch.zeros(0), 0.5).numel() == 0
    same = torch.tensor([[5.0, 5.0, 4.0, 2.0, 0.2]] * 3)
    assert rotated_nms(same, torch.tensor([0.2, 0.9, 0.5]), 0.5).tolist() == [1]
    with pytest.raises(ValueError, match="iou_threshold"):
        rotated_nms(same, torch.ones(3), -0.1)


def test_nms_at_threshold_zero_keeps_every_box_that_overlaps_no_kept_box():
    # rotated boxes whose axis-aligned hulls meet but which are disjoint (an IoU of ~1e-17 suppressed them)
    g = torch.Generator().manual_seed(0)
    boxes, scores = _scene(300, g)
    polys = [Polygon(p) for p in obb_to_poly(boxes.double()).tolist()]
    kept = rotated_nms(boxes, scores, 0.0).tolist()
    for a, i in enumerate(kept):  # the kept boxes are pairwise disjoint ...
        assert all(polys[i].intersection(polys[j]).area < 1e-9 for j in kept[:a])
    for i in set(range(300)) - set(kept):  # ... and each dropped one overlaps a kept box of higher score
        assert any(scores[j] >= scores[i] and polys[i].intersection(polys[j]).area > 1e-9 for j in kept)
    assert kept == _greedy(boxes, scores, 0.0)
