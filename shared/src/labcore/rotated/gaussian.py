"""Boxes as 2-D Gaussians and the divergences DCFL assigns with (GJSD) and KFIoU-style losses use (KLD).

A box ``(x, y, w, h, a)`` maps to ``N(μ = (x, y), Σ = R diag(w²/4, h²/4) Rᵀ)`` (GWD/KLD papers). All
functions broadcast over leading dimensions, so ``f(b1[:, None], b2[None])`` gives a pairwise matrix.
"""

from __future__ import annotations

import torch


def obb_to_gaussian(boxes: torch.Tensor, min_size: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., 5)`` boxes → means ``(..., 2)`` and covariances ``(..., 2, 2)``; sizes clamped to ``min_size``."""
    wh = boxes[..., 2:4].clamp(min=min_size)
    c, s = torch.cos(boxes[..., 4]), torch.sin(boxes[..., 4])
    rot = torch.stack([c, -s, s, c], -1).reshape(*boxes.shape[:-1], 2, 2)
    sigma = rot @ torch.diag_embed(wh.square() / 4) @ rot.transpose(-1, -2)
    return boxes[..., :2], sigma


def _inv_det(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b, c, d = sigma[..., 0, 0], sigma[..., 0, 1], sigma[..., 1, 0], sigma[..., 1, 1]
    det = a * d - b * c
    inv = torch.stack([d, -b, -c, a], -1).reshape(sigma.shape) / det[..., None, None]
    return inv, det


def _quad(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x[..., None, :] @ m @ x[..., :, None])[..., 0, 0]


def gaussian_kld(boxes_p: torch.Tensor, boxes_t: torch.Tensor) -> torch.Tensor:
    """``KL(N_p ‖ N_t)`` in closed form: ½[tr(Σt⁻¹Σp) + (μt−μp)ᵀΣt⁻¹(μt−μp) − 2 + ln(|Σt|/|Σp|)]."""
    mu_p, s_p = obb_to_gaussian(boxes_p.double())
    mu_t, s_t = obb_to_gaussian(boxes_t.double())
    inv_t, det_t = _inv_det(s_t)
    det_p = _inv_det(s_p)[1]
    trace = (inv_t @ s_p).diagonal(dim1=-2, dim2=-1).sum(-1)
    kld = 0.5 * (trace + _quad(mu_t - mu_p, inv_t) - 2 + torch.log(det_t / det_p))
    return kld.to(boxes_p.dtype)


def gaussian_bhattacharyya(boxes_p: torch.Tensor, boxes_t: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Skewed Bhattacharyya distance ``−ln ∫ p^{1−α} q^α``, the closed form DCFL calls GJSD.

    With the geometric mean ``G_α ∝ p^{1−α} q^α`` it equals ``(1−α) KL(G_α‖p) + α KL(G_α‖q)``
    (Nielsen's dual geometric Jensen–Shannon divergence); DCFL's ``get_gjsd`` computes this form.
    """
    mu_p, s_p = obb_to_gaussian(boxes_p.double())
    mu_t, s_t = obb_to_gaussian(boxes_t.double())
    mu_p, mu_t = mu_p - mu_t, torch.zeros_like(mu_t)  # translation invariant; avoids cancellation
    inv_p, det_p = _inv_det(s_p)
    inv_t, det_t = _inv_det(s_t)
    inv_a = (1 - alpha) * inv_p + alpha * inv_t  # Σ_α⁻¹
    s_a, det_inv_a = _inv_det(inv_a)
    mu_a = (s_a @ ((1 - alpha) * (inv_p @ mu_p[..., None]) + alpha * (inv_t @ mu_t[..., None])))[..., 0]
    quad = (1 - alpha) * _quad(mu_p, inv_p) + alpha * _quad(mu_t, inv_t) - _quad(mu_a, inv_a)
    logdet = (1 - alpha) * torch.log(det_p) + alpha * torch.log(det_t) + torch.log(det_inv_a)  # − ln|Σ_α|
    return (0.5 * (quad + logdet)).to(boxes_p.dtype)


gaussian_gjsd = gaussian_bhattacharyya
