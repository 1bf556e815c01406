"""Label assignment: max-IoU (Rotated RetinaNet) and DCFL's coarse-to-fine assigner.

Both return ``(A,)`` long tensors: ``-1`` ignored, ``0`` negative, ``i + 1`` positive for gt ``i``.
"""

from __future__ import annotations

import math

import torch

from labcore.rotated import gaussian_gjsd, obb_to_gaussian, rotated_iou, rotated_iou_aligned


def _later_gt_wins(mask: torch.Tensor) -> torch.Tensor:
    """For a ``(G, A)`` mask, the 1-based index of the last gt marking each anchor, else 0."""
    g = torch.arange(1, mask.shape[0] + 1, device=mask.device)[:, None]
    return (mask.long() * g).amax(0) if mask.shape[0] else mask.new_zeros(mask.shape[1], dtype=torch.long)


def max_iou_assign(
    anchors: torch.Tensor,
    gt: torch.Tensor,
    pos_iou_thr: float = 0.5,
    neg_iou_thr: float = 0.4,
    min_pos_iou: float = 0.0,
    match_low_quality: bool = True,
) -> torch.Tensor:
    """mmdet's ``MaxIoUAssigner`` with rotated IoU. With ``match_low_quality`` every gt also gets the
    anchors that overlap it most, if that IoU reaches ``min_pos_iou`` (a gt overlapping none gets none)."""
    assigned = torch.full((anchors.shape[0],), -1, dtype=torch.long, device=anchors.device)
    if gt.shape[0] == 0:
        return assigned.zero_()
    iou = rotated_iou(gt, anchors)  # (G, A)
    best, arg = iou.max(0)
    assigned[best < neg_iou_thr] = 0
    pos = best >= pos_iou_thr
    assigned[pos] = arg[pos] + 1
    if not match_low_quality:
        return assigned
    gt_best = iou.max(1).values[:, None]
    low = (iou == gt_best) & (gt_best > 0) & (gt_best >= min_pos_iou)
    extra = _later_gt_wins(low)
    return torch.where(extra > 0, extra, assigned)


def gjsd_similarity(gt: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Pairwise ``1 / (1 + GJSD)`` between gts and priors as Gaussians (DCFL's coarse prior metric)."""
    return 1 / (1 + gaussian_gjsd(gt[:, None], priors[None]).clamp_min(0))


def coarse_to_fine_assign(
    priors: torch.Tensor,
    pred_boxes: torch.Tensor,
    cls_logits: torch.Tensor,
    gt: torch.Tensor,
    topk: int = 16,
    topq: int = 12,
    gauss_thr: float = 0.8,
    ignore_thr: float = 0.8,
    mixture=(0.7, 0.3),
) -> torch.Tensor:
    """DCFL's coarse-to-fine assignment (journal version, §4.3; the reference's ``C2FAssigner``), vectorised.

    1. Coarse: each gt takes as candidates every prior whose GJSD similarity equals one of its
       ``topk`` largest (ties included, so possibly more than ``topk``); a later gt wins a shared
       prior. Other priors are negatives, or ignored if their best similarity is ≥ ``ignore_thr``.
    2. Fine: candidates are ranked by quality ``IoU(pred, gt) + σ(max class logit)``; each gt keeps
       its ``topq`` best (``topq`` capped by the number of all candidates), the rest become negatives.
       As in the reference, a gt with fewer than ``topq`` own candidates fills its ``topq`` with other
       gts' candidates (in ``torch.topk``'s order among equal fillers): they stay positives of their own
       gt and count in this gt's mean positive prior (step 3).
    3. Gaussian-mixture filter: a positive survives only if the mixture of the gt Gaussian (weight
       0.7) and a Gaussian of gt covariance at the mean of the gt's positive priors (0.3),
       evaluated at the prior centre, is ≥ ``exp(−gauss_thr)``. As in the reference, the filter
       multiplies every label by its inside flag for gt ``max(label − 1, 0)``, so an ignored prior
       (``−1``) stays ignored only inside gt 0's mixture and is a negative elsewhere.
    ``priors`` are the (dynamically shifted) anchors, ``pred_boxes`` the predictions to score.
    """
    num_priors = priors.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(num_priors, dtype=torch.long, device=priors.device)
    sim = gjsd_similarity(gt, priors)  # (G, A)
    kth = sim.topk(min(topk, num_priors), dim=1).values[:, -1:]
    cand_gt = _later_gt_wins(sim >= kth)  # (A,)
    assigned = torch.where(sim.max(0).values >= ignore_thr, -1, 0)
    idx = torch.nonzero(cand_gt > 0).flatten()
    owner = cand_gt[idx] - 1
    iou = rotated_iou_aligned(pred_boxes[idx].detach(), gt[owner])
    quality = iou + cls_logits[idx].detach().max(1).values.sigmoid()
    # the reference ranks a (gt, candidate) table whose other gts' candidates hold -100: a gt with fewer than
    # ``topq`` own candidates also takes fillers, which keep their own gt and enter this gt's prior mean
    table = quality.new_full((gt.shape[0], idx.numel()), -100.0)
    table[owner, torch.arange(idx.numel(), device=idx.device)] = quality
    chosen = idx[table.topk(min(topq, idx.numel()), dim=1).indices]  # (G, q) prior indices
    assigned[idx] = 0
    assigned[chosen] = cand_gt[chosen]
    # Gaussian-mixture filter, for every prior against gt max(label − 1, 0)
    mu_t, sigma_t = obb_to_gaussian(gt.double())
    mean_pos = priors[chosen, :2].double().mean(1)
    which = (assigned - 1).clamp_min(0)
    inv = torch.linalg.inv(sigma_t)[which]
    centres = priors[:, :2].double()

    def density(mu):
        d = (centres - mu)[:, :, None]
        return torch.exp(-0.5 * (d.transpose(1, 2) @ inv @ d)[:, 0, 0])

    mix = mixture[0] * density(mu_t[which]) + mixture[1] * density(mean_pos[which])
    return torch.where(mix >= math.exp(-gauss_thr), assigned, 0)
