"""Rotated-box operations in pure PyTorch, with fast paths behind :mod:`labcore.kernels` dispatch.

Boxes are ``(..., 5)`` tensors ``(cx, cy, w, h, angle)`` in pixels and radians (angle turns the
box's width axis from the image x axis towards y). Angle conventions follow mmrotate: ``le90``
(angle in [-π/2, π/2)), ``le135`` ([-π/4, 3π/4)) and ``oc`` ((0, π/2], OpenCV's).
"""

from labcore.rotated.boxes import (
    ANGLE_VERSIONS,
    box_area,
    check_boxes,
    hbb_to_obb,
    norm_angle,
    obb_to_hbb,
    obb_to_poly,
    poly_to_obb,
    regularize_boxes,
)
from labcore.rotated.gaussian import gaussian_bhattacharyya, gaussian_gjsd, gaussian_kld, obb_to_gaussian
from labcore.rotated.iou import overlap_candidates, rotated_iou, rotated_iou_aligned, rotated_iou_loss
from labcore.rotated.nms import batched_rotated_nms, rotated_nms
from labcore.rotated.triton_iou import triton_rotated_iou_aligned  # registers the CUDA fast path

__all__ = [
    "ANGLE_VERSIONS", "box_area", "check_boxes", "norm_angle", "obb_to_poly", "poly_to_obb", "regularize_boxes",
    "obb_to_hbb", "hbb_to_obb",
    "obb_to_gaussian", "gaussian_kld", "gaussian_gjsd", "gaussian_bhattacharyya",
    "overlap_candidates", "rotated_iou", "rotated_iou_aligned", "rotated_iou_loss",
    "rotated_nms", "batched_rotated_nms", "triton_rotated_iou_aligned",
]
