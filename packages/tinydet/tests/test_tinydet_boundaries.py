"""Boundary cases of the box coder and the max-IoU assigner (mutants at these boundaries passed the suite)."""

import math

import torch

from tinydet.assign import max_iou_assign
from tinydet.coder import DeltaXYWHACoder


def test_edge_swap_tie_takes_the_swapped_form():
    """le90, anchor angle 0, gt angle π/4: both forms turn by π/4 (|π/4| = |−π/4|); the tie takes the swapped
    one (w and h exchanged, −π/4), as mmrotate."""
    coder = DeltaXYWHACoder(version="le90", norm_factor=None, edge_swap=True)
    anchor = torch.tensor([[0.0, 0.0, 4.0, 2.0, 0.0]], dtype=torch.float64)
    gt = torch.tensor([[0.0, 0.0, 4.0, 2.0, math.pi / 4]], dtype=torch.float64)
    expected = torch.tensor([[0.0, 0.0, math.log(0.5), math.log(2.0), -math.pi / 4]], dtype=torch.float64)
    torch.testing.assert_close(coder.encode(anchor, gt), expected)


def test_low_quality_match_skips_a_gt_that_overlaps_no_anchor():
    """With ``min_pos_iou = 0`` a gt whose best IoU is 0 must not claim every anchor (mmdet's ``gt_max > 0``)."""
    anchors = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0], [10.0, 0.0, 2.0, 2.0, 0.0]])
    gt = torch.tensor([[50.0, 50.0, 2.0, 2.0, 0.0]])
    assert max_iou_assign(anchors, gt, min_pos_iou=0.0).tolist() == [0, 0]
    overlapping = torch.tensor([[0.5, 0.0, 2.0, 2.0, 0.0], [50.0, 50.0, 2.0, 2.0, 0.0]])  # IoU 0.6 with anchor 0
    assert max_iou_assign(anchors, overlapping, min_pos_iou=0.0).tolist() == [1, 0]
