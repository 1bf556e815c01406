"""Rotated FCOS on one pyramid level (Point Teacher's student/teacher) and its MIL box head.

Box coder: mmrotate's ``DistanceAnglePointCoder`` — a location predicts distances ``(l, t, r, b)``
to the sides of a box in the box's own frame plus the box angle. Grid points sit at cell centres
``(i + 0.5)·stride`` as in mmdet's FCOS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert, clip_boxes_to_image, distance_box_iou_loss

from tinydet.model import FPN, ConvModule, _init_head, build_backbone, xavier_init
from tinydet.roi import rotated_roi_align


def grid_points(h: int, w: int, stride: int, device=None) -> torch.Tensor:
    """``(h·w, 2)`` image coordinates of the feature cells' centres, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return (torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float() + 0.5) * stride


def distance_to_obb(points: torch.Tensor, dist: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Decode ``(…, 4)`` side distances and ``(…,)`` angles at ``(…, 2)`` points into ``(…, 5)`` boxes."""
    c, s = torch.cos(angle), torch.sin(angle)
    ox, oy = (dist[..., 2] - dist[..., 0]) / 2, (dist[..., 3] - dist[..., 1]) / 2
    cx = points[..., 0] + c * ox - s * oy
    cy = points[..., 1] + s * ox + c * oy
    return torch.stack([cx, cy, dist[..., 0] + dist[..., 2], dist[..., 1] + dist[..., 3], angle], -1)


def obb_to_distance(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`distance_to_obb`: ``(l, t, r, b)`` of ``points`` w.r.t. ``boxes`` (negative outside)."""
    d = points - boxes[..., :2]
    c, s = torch.cos(boxes[..., 4]), torch.sin(boxes[..., 4])
    u, v = c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]
    w, h = boxes[..., 2] / 2, boxes[..., 3] / 2
    return torch.stack([w + u, h + v, w - u, h - v], -1)


def centerness_target(dist: torch.Tensor) -> torch.Tensor:
    """FCOS centre-ness ``sqrt(min(l,r)/max(l,r) · min(t,b)/max(t,b))`` with each ``min`` clamped at 0.01
    (``TS_P2RBRotatedFCOSHead.centerness_target``): a point outside the box gets a small positive target."""
    lr, tb = dist[..., [0, 2]], dist[..., [1, 3]]
    return (lr.amin(-1).clamp_min(0.01) / lr.amax(-1) * tb.amin(-1).clamp_min(0.01) / tb.amax(-1)).sqrt()


def nearest_points(points: torch.Tensor, centres: torch.Tensor, k: int) -> torch.Tensor:
    """``(G, k)`` indices of the ``k`` grid points closest (L1, the reference's ``PointCost``) to each centre."""
    return torch.cdist(centres.float(), points.float(), p=1).topk(min(k, points.shape[0]), dim=1, largest=False).indices


def topk_assign(cost: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``TopkAssigner``: the ``k`` lowest-cost rows (grid points) of each column (target) of an ``(N, G)``
    cost; a row chosen by several targets keeps only the one it costs least (first on exact ties), since the
    reference writes one target index per grid point. Returns the kept ``(rows, cols)``."""
    rows = cost.topk(min(k, cost.shape[0]), dim=0, largest=False).indices  # (k, G)
    cols = torch.arange(cost.shape[1], device=cost.device).expand_as(rows)
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    # stable sort by cost keeps pair order on ties; each row's first pair in that order wins: O(M log M)
    order = cost[rows, cols].sort(stable=True).indices
    place = torch.arange(order.numel(), device=cost.device)
    first = torch.full((cost.shape[0],), order.numel(), device=cost.device).scatter_reduce(
        0, rows[order], place, "amin"
    )
    keep = torch.zeros_like(rows, dtype=torch.bool)
    keep[order[first[rows[order]] == place]] = True
    return rows[keep], cols[keep]


def signed_distances(raw: torch.Tensor) -> torch.Tensor:
    """``(B, 4, H, W)`` raw outputs ``(o_x, o_y, s_w, s_h)`` → side distances ``(l, t, r, b)`` with
    ``l, r = relu(s_w) ∓ o_x`` and ``t, b = relu(s_h) ∓ o_y``.

    mmdet's FCOS clamps each distance at 0 (``norm_on_bbox``), which can only describe boxes that
    contain the grid point. With 3–14 px objects on stride 8 the nearest grid point lies outside
    40 % of the boxes (and the 2nd/3rd nearest almost always), so those regression targets were
    unreachable; here only the sizes ``l + r``, ``t + b`` are kept ≥ 0 and the decoding is unchanged.
    """
    offset, half = raw[:, :2], F.relu(raw[:, 2:])
    return torch.cat([half - offset, half + offset], 1)


class RotatedFCOSHead(nn.Module):
    """mmrotate ``RotatedFCOSHead`` on one level: GN conv towers, ``conv_cls``, ``conv_reg`` (distances
    × stride, ``norm_on_bbox``; signed, see :func:`signed_distances`), ``conv_angle`` scaled by a learnt
    ``scale_angle``, and ``conv_centerness`` on the classification tower (the reference leaves
    ``centerness_on_reg`` at False)."""

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int, stacked_convs: int, stride: int):
        super().__init__()
        chans = [in_channels] + [feat_channels] * stacked_convs
        self.cls_convs = nn.ModuleList(ConvModule(chans[i], feat_channels, norm="gn") for i in range(stacked_convs))
        self.reg_convs = nn.ModuleList(ConvModule(chans[i], feat_channels, norm="gn") for i in range(stacked_convs))
        self.conv_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.conv_reg = nn.Conv2d(feat_channels, 4, 3, padding=1)
        self.conv_angle = nn.Conv2d(feat_channels, 1, 3, padding=1)
        self.conv_centerness = nn.Conv2d(feat_channels, 1, 3, padding=1)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.scale_angle = nn.Parameter(torch.tensor(1.0))
        self.stride = stride
        _init_head(self, self.conv_cls)
        # start from stride-sized boxes centred at the points (half-sizes ½·stride, offsets 0)
        nn.init.zeros_(self.conv_reg.bias)
        nn.init.constant_(self.conv_reg.bias[2:], 0.5)

    def forward(self, x):
        c, r = x, x
        for conv in self.cls_convs:
            c = conv(c)
        for conv in self.reg_convs:
            r = conv(r)
        # signed side distances: (offset, half-size) channels, half-sizes ≥ 0 (see `signed_distances`)
        dist = signed_distances(self.scale * self.conv_reg(r)) * self.stride
        return self.conv_cls(c), dist, self.scale_angle * self.conv_angle(r), self.conv_centerness(c)


class PSAGG(nn.Module):
    """The reference's ``neck_agg``: folds P3–P7 into P3 top-down, ``P_{l} ← conv_{l}(P_{l} + up(P_{l+1}))`` with
    ``P7 ← conv(P7)`` first; bias-carrying 1×1 convs without norm or activation, Xavier-uniform."""

    def __init__(self, num_levels: int, channels: int):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvModule(channels, channels, 1, act=False) for _ in range(num_levels))
        xavier_init(self)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral_convs[0](feats[-1])
        for conv, f in zip(self.lateral_convs[1:], reversed(feats[:-1])):
            x = conv(f + F.interpolate(x, size=f.shape[-2:], mode="nearest"))
        return x


class RotatedFCOS(nn.Module):
    """Backbone → FPN (P3–P7, extra convs on the output) → :class:`PSAGG` into P3 →
    :class:`RotatedFCOSHead` (the reference uses ``strides=[8]``) + a MIL head."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tiny",
        fpn_channels: int = 32,
        feat_channels: int = 32,
        stacked_convs: int = 2,
        roi_size: int = 7,
        mil_channels: int = 128,
    ):
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.neck = FPN(self.backbone.out_channels, fpn_channels, 5, extra="on_output")
        self.neck_agg = PSAGG(5, fpn_channels)
        self.stride = 8
        self.bbox_head = RotatedFCOSHead(num_classes, fpn_channels, feat_channels, stacked_convs, self.stride)
        self.mil_head = MILHead(num_classes, fpn_channels, roi_size, mil_channels, self.stride)

    def forward(self, images: torch.Tensor) -> dict:
        feat = self.neck_agg(self.neck(self.backbone(images)))
        cls, dist, angle, ctr = self.bbox_head(feat)
        b, _, h, w = cls.shape
        points = grid_points(h, w, self.stride, images.device)
        flat = {
            "cls": cls.permute(0, 2, 3, 1).reshape(b, h * w, -1),
            "dist": dist.permute(0, 2, 3, 1).reshape(b, h * w, 4),
            "angle": angle.reshape(b, h * w),
            "centerness": ctr.reshape(b, h * w),
        }
        flat["boxes"] = distance_to_obb(points[None], flat["dist"], flat["angle"])
        return {"feature": feat, "points": points, **flat}


def decode_axis_aligned(boxes: torch.Tensor, deltas: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The reference's bag decoder: mmdet ``DeltaXYWHBBoxCoder`` (means 0, stds 1, log-size clip
    ``|log(16/1000)|``) applied to each rotated box's ``(cx, cy, w, h)`` read axis-aligned, corners clamped to
    the ``(h, w)`` image (``max_shape``); the box's angle is kept. ``(K, 5)`` boxes, ``(K, 4)`` deltas."""
    clip = abs(math.log(16 / 1000))
    cx, cy = boxes[:, 0] + deltas[:, 0] * boxes[:, 2], boxes[:, 1] + deltas[:, 1] * boxes[:, 3]
    w, h = boxes[:, 2] * deltas[:, 2].clamp(-clip, clip).exp(), boxes[:, 3] * deltas[:, 3].clamp(-clip, clip).exp()
    corners = clip_boxes_to_image(box_convert(torch.stack([cx, cy, w, h], 1), "cxcywh", "xyxy"), size)
    return torch.cat([box_convert(corners, "xyxy", "cxcywh"), boxes[:, 4:]], 1)


def dn_diou_loss(pred: torch.Tensor, target: torch.Tensor, hyper: float = 0.2, eps: float = 1e-6) -> torch.Tensor:
    """The reference's "denoising" ``DN_DIoULoss`` on ``(K, 4)`` xyxy boxes: the mean of the DIoU loss against
    the target and the smallest DIoU loss against 9 variants whose left/top sides move out by
    ``i·hyper/2`` and right/bottom sides by ``j·hyper/2`` of the target's size, ``i, j ∈ {−1, 0, 1}``."""
    base = distance_box_iou_loss(pred, target, eps=eps)
    size = (target[:, 2:] - target[:, :2]).repeat(1, 2)
    steps = torch.tensor([-1.0, 0.0, 1.0], device=pred.device, dtype=pred.dtype)
    i, j = (t.reshape(-1, 1, 1) for t in torch.meshgrid(steps, steps, indexing="ij"))
    move = torch.cat([-i.expand(-1, 1, 2), j.expand(-1, 1, 2)], -1) * hyper / 2  # (9, 1, 4)
    variants = target[None] + move * size[None]
    shifted = distance_box_iou_loss(pred[None].expand_as(variants), variants, eps=eps)
    return (base + shifted.amin(0)) / 2


class MILHead(nn.Module):
    """Point Teacher's MIL head (``Shared2FCInstanceMILHead`` + the bag regression of the FCOS head):
    ``shared_fcs_reg → fc_reg`` refines each bag proposal (:func:`decode_axis_aligned`),
    ``shared_fcs_bag → fc_cls, fc_ins`` give class and instance scores of the refined proposals."""

    def __init__(self, num_classes: int, in_channels: int, roi_size: int = 7, fc_channels: int = 128, stride: int = 8):
        super().__init__()
        flat = in_channels * roi_size * roi_size
        self.shared_fcs_reg = nn.Sequential(
            nn.Linear(flat, fc_channels), nn.ReLU(), nn.Linear(fc_channels, fc_channels), nn.ReLU()
        )
        self.fc_reg = nn.Linear(fc_channels, 4)
        self.shared_fcs_bag = nn.Sequential(
            nn.Linear(flat, fc_channels), nn.ReLU(), nn.Linear(fc_channels, fc_channels), nn.ReLU()
        )
        self.fc_cls = nn.Linear(fc_channels, num_classes)
        self.fc_ins = nn.Linear(fc_channels, num_classes)
        self.roi_size, self.stride = roi_size, stride
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.fc_cls.bias, -4.595)  # prior probability 0.01, as the reference's bias_prob

    def _feats(self, feature, boxes, fcs):
        return fcs(rotated_roi_align(feature, boxes, self.roi_size, self.stride).flatten(1))

    def refine(self, feature: torch.Tensor, boxes: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Regress each proposal inside the ``(h, w)`` image (angle kept): ``(K, 5)`` refined boxes for the
        concatenated lists."""
        if sum(b.shape[0] for b in boxes) == 0:
            return feature.new_zeros(0, 5)
        deltas = self.fc_reg(self._feats(feature, boxes, self.shared_fcs_reg))
        return decode_axis_aligned(torch.cat(boxes), deltas, size)

    def classify(self, feature: torch.Tensor, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class and instance logits ``(K, C)`` of each proposal."""
        x = self._feats(feature, boxes, self.shared_fcs_bag)
        return self.fc_cls(x), self.fc_ins(x)


def bag_loss(refined: torch.Tensor, reference: torch.Tensor, valid: torch.Tensor, hyper: float = 0.2) -> torch.Tensor:
    """The bag regression loss (``loss_bbox_denosing``): :func:`dn_diou_loss` of refined proposals against their
    reference boxes, both read axis-aligned, weighted by ``valid`` and averaged over all proposals."""
    if refined.shape[0] == 0:
        return refined.sum() * 0
    corners = [box_convert(b[:, :4], "cxcywh", "xyxy") for b in (refined, reference)]  # angles ignored
    return (dn_diou_loss(*corners, hyper) * valid).sum() / refined.shape[0]
