"""Oriented R-CNN's RPN (mmrotate ``OrientedRPNHead``) and its DCFL variant (AI-TOD-R ``OrientedRPN_DCFLHead``).

Both predict, per FPN level and anchor, one objectness logit and 6 midpoint-offset deltas from horizontal
anchors of ``scale·stride`` (P2–P6). The plain head has a 3×3 conv, max-IoU assignment against the gts'
axis-aligned hulls (0.7 / 0.3, low-quality matches); the DCFL head has a modulated deformable 3×3 conv
whose offsets shift the anchors for assignment (dynamic prior, paper §4.2) and the coarse-to-fine
assigner (§4.3). Both sample 256 anchors (≤ 50 % positives) for sigmoid CE and smooth-L1 (β 1/9).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from labcore.rotated import hbb_to_obb, obb_to_hbb
from tinydet.assign import coarse_to_fine_assign, max_iou_assign
from tinydet.coder import MidpointOffsetCoder, horizontal_anchors
from tinydet.model import ModulatedDeformConv, dynamic_prior_shift


def random_sample(
    assigned: torch.Tensor, num: int, pos_fraction: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """mmdet ``RandomSampler`` (``neg_pos_ub=-1``): at most ``int(num·pos_fraction)`` random positives
    (``assigned > 0``), then random negatives (``assigned == 0``) up to ``num``; returns both index sets."""
    pos, neg = (assigned > 0).nonzero().squeeze(1), (assigned == 0).nonzero().squeeze(1)
    pos = pos[torch.randperm(pos.numel(), generator=generator).to(pos.device)[: int(num * pos_fraction)]]
    neg = neg[torch.randperm(neg.numel(), generator=generator).to(neg.device)[: num - pos.numel()]]
    return pos, neg


class OrientedRPNHead(nn.Module):
    """Parameters ``rpn_conv`` (DCFL: modulated deformable conv, bias-free, with ``conv_offset``),
    ``rpn_cls`` (A logits) and ``rpn_reg`` (6A deltas), both 1×1, as the reference's ``rpn_head.*``.

    ``config`` is a :class:`~tinydet.two_stage.TwoStageConfig`."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        cin, feat, num_anchors = config.fpn_channels, config.rpn_feat_channels, len(config.rpn_ratios)
        if config.rpn == "dcfl":
            if cin != feat:
                raise ValueError(f"the DCFL RPN needs rpn_feat_channels == fpn_channels, got {feat} and {cin}")
            self.rpn_conv = ModulatedDeformConv(feat, learn_offsets=True)  # weight + conv_offset (27 channels)
        else:
            self.rpn_conv = nn.Conv2d(cin, feat, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat, num_anchors * 6, 1)
        for m in self.modules():  # mmrotate: Normal(0, 0.01) convs; mmcv's DCN init, zero offsets
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        if config.rpn == "dcfl":
            self.rpn_conv.reset_parameters()
            nn.init.zeros_(self.rpn_conv.conv_offset.weight)
            nn.init.zeros_(self.rpn_conv.conv_offset.bias)
        self.coder = MidpointOffsetCoder(config.angle_version)

    def forward(self, feats: list[torch.Tensor]):
        """Per level ``(logits (B,A,H,W), deltas (B,6A,H,W), DCN offsets (B,18,H,W) or None)``."""
        cls, reg, offsets = [], [], []
        for x in feats:
            x, offset = self.rpn_conv(x)[:2] if self.config.rpn == "dcfl" else (self.rpn_conv(x), None)
            x = F.relu(x)
            cls.append(self.rpn_cls(x))
            reg.append(self.rpn_reg(x))
            offsets.append(offset)
        return cls, reg, offsets

    def _flatten(self, outputs):
        """All levels' ``(anchors (N,4), logits (B,N), deltas (B,N,6), anchor shifts (B,N,2) or None, anchors per
        level)``; the shift is the mean DCN offset over the 9 taps × stride (the reference's factor 4·2^level)."""
        cls, reg, offsets = outputs
        b, strides = cls[0].shape[0], self.config.strides
        sizes = [tuple(c.shape[-2:]) for c in cls]
        anchors = horizontal_anchors(
            sizes, strides, self.config.rpn_anchor_scale, self.config.rpn_ratios, cls[0].device
        )
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(b, -1) for c in cls], 1)
        flat_reg = torch.cat([r.permute(0, 2, 3, 1).reshape(b, -1, 6) for r in reg], 1)
        shift = None
        if offsets[0] is not None:  # one shift per location, repeated for its anchors
            shift = dynamic_prior_shift(offsets, strides, 1.0).repeat_interleave(len(self.config.rpn_ratios), 1)
        return torch.cat(anchors), flat_cls, flat_reg, shift, [len(a) for a in anchors]

    def _assign(self, anchors, logits, deltas, shift, gt):
        """Assignment of one image's ``anchors`` (inside the image): ``-1`` ignored, 0 negative, ``i+1`` gt i."""
        cfg = self.config
        if cfg.rpn == "dcfl":  # coarse: GJSD to the shifted anchors; fine: IoU of the boxes decoded from the anchors
            priors = hbb_to_obb(anchors + shift.repeat(1, 2))
            pred = self.coder.decode(anchors, deltas.detach())
            return coarse_to_fine_assign(
                priors,
                pred,
                logits.detach()[:, None],
                gt,
                topk=cfg.rpn_topk,
                topq=cfg.rpn_topq,
                gauss_thr=cfg.rpn_gauss_thr,
            )
        return max_iou_assign(
            hbb_to_obb(anchors),
            hbb_to_obb(obb_to_hbb(gt)),  # horizontal IoU with the gts' hulls
            cfg.rpn_pos_iou_thr,
            cfg.rpn_neg_iou_thr,
            cfg.rpn_min_pos_iou,
            match_low_quality=True,
        )

    def loss(self, outputs, gt_boxes: list[torch.Tensor], image_size: tuple[int, int], generator=None) -> dict:
        """Sigmoid CE over the sampled anchors and smooth-L1 (β ``rpn_smooth_l1_beta``) on the positives'
        6 deltas, both divided by the number of samples (mmdet: Σ per image of max(#pos, 1) + max(#neg, 1)).
        Anchors crossing the image border are never sampled (``allowed_border=0``)."""
        cfg = self.config
        anchors, logits, deltas, shift, _ = self._flatten(outputs)
        h, w = image_size
        inside = ((anchors[:, :2] >= 0) & (anchors[:, 2:] < anchors.new_tensor([w, h]))).all(1).nonzero().squeeze(1)
        cls_terms, reg_terms, num_samples = [], [], 0
        for i, gt in enumerate(gt_boxes):
            assigned = torch.full((len(anchors),), -1, dtype=torch.long, device=anchors.device)
            if inside.numel():  # else nothing is sampled (mmdet gives the batch no RPN loss)
                assigned[inside] = self._assign(
                    anchors[inside],
                    logits[i, inside],
                    deltas[i, inside],
                    None if shift is None else shift[i, inside],
                    gt,
                )
            pos, neg = random_sample(assigned, cfg.rpn_num_samples, cfg.rpn_pos_fraction, generator)
            num_samples += max(pos.numel(), 1) + max(neg.numel(), 1)
            target = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).to(logits.dtype)
            cls_terms.append(
                F.binary_cross_entropy_with_logits(logits[i, torch.cat([pos, neg])], target, reduction="sum")
            )
            encoded = self.coder.encode(anchors[pos], gt[assigned[pos] - 1])
            reg_terms.append(F.smooth_l1_loss(deltas[i, pos], encoded, beta=cfg.rpn_smooth_l1_beta, reduction="sum"))
        return {"loss_rpn_cls": sum(cls_terms) / num_samples, "loss_rpn_bbox": sum(reg_terms) / num_samples}

    @torch.no_grad()
    def proposals(self, outputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The reference's ``get_bboxes`` per image: the ``rpn_nms_pre`` best anchors of each level by
        objectness, decoded; non-finite boxes and (if ``rpn_min_bbox_size > 0``) smaller ones dropped; NMS at
        ``rpn_nms_iou_thr`` on the boxes' axis-aligned hulls, separately per level; the
        ``rpn_max_per_img`` best. Returns ``(boxes (K,5), scores (K,))`` per image."""
        cfg = self.config
        anchors, logits, deltas, _, counts = self._flatten(outputs)
        keep, levels, start = [], [], 0
        for level, n in enumerate(counts):  # every image at once: (B, k) indices into the flat anchors
            keep.append(start + logits[:, start : start + n].topk(min(cfg.rpn_nms_pre, n), dim=1).indices)
            levels.append(torch.full((keep[-1].shape[1],), level, device=logits.device))
            start += n
        keep, levels = torch.cat(keep, 1), torch.cat(levels)
        out = []
        for lg, dl, top in zip(logits, deltas, keep):
            boxes, scores = self.coder.decode(anchors[top], dl[top]), lg[top].sigmoid()
            ok = torch.isfinite(boxes).all(1)
            if cfg.rpn_min_bbox_size > 0:
                ok &= (boxes[:, 2:4] >= cfg.rpn_min_bbox_size).all(1)
            boxes, scores, ids = boxes[ok], scores[ok], levels[ok]
            hulls = obb_to_hbb(boxes)  # anchors keep the decoded boxes in float32 under a bfloat16 model
            kept = batched_nms(hulls, scores.to(hulls.dtype), ids, cfg.rpn_nms_iou_thr)[: cfg.rpn_max_per_img]
            out.append((boxes[kept], scores[kept]))
        return out
