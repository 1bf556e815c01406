"""Boundary cases of the rotated-box conventions and NMS (mutants at these boundaries passed the suite)."""

import math

import torch

from labcore.rotated import regularize_boxes, rotated_iou_aligned, rotated_nms


def test_oc_angle_range_is_open_at_zero_and_closed_at_half_pi():
    """OpenCV ``minAreaRect`` convention: angle in (0, π/2]. Angle 0 becomes π/2 with w and h swapped; π/2 stays."""
    boxes = torch.tensor([[0.0, 0.0, 3.0, 1.0, 0.0], [0.0, 0.0, 3.0, 1.0, math.pi / 2]], dtype=torch.float64)
    expected = torch.tensor([[0.0, 0.0, 1.0, 3.0, math.pi / 2], [0.0, 0.0, 3.0, 1.0, math.pi / 2]], dtype=torch.float64)
    torch.testing.assert_close(regularize_boxes(boxes, "oc"), expected)


def test_nms_suppresses_only_above_the_threshold():
    """A box whose IoU with a kept box equals the threshold is kept (``>``, as mmcv and torchvision)."""
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0, math.pi / 4]], dtype=torch.float64)
    iou = rotated_iou_aligned(boxes[:1], boxes[1:]).item()  # 8(√2 − 1)/(8 − 8(√2 − 1)) ≈ 0.7071
    assert math.isclose(iou, 8 * (2**0.5 - 1) / (8 - 8 * (2**0.5 - 1)), rel_tol=1e-9)
    scores = torch.tensor([0.9, 0.8], dtype=torch.float64)
    assert rotated_nms(boxes, scores, iou).tolist() == [0, 1]
    assert rotated_nms(boxes, scores, iou - 1e-9).tolist() == [0]
