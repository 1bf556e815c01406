"""Closed-form classifier-free guidance for Gaussian autoregressive heads (STARFlow §3.3).

The guided density ``p̃ ∝ p_c^{1+w} / p_u^{w}`` of two Gaussians ``N(μ_c, σ_c²)``, ``N(μ_u, σ_u²)``
is again Gaussian. With ``s = clip(σ_c²/σ_u², 0, 1)`` (the clip keeps its precision positive)::

    σ̃ = σ_c / sqrt(1 + w − w·s),   μ̃ = ((1 + w)·μ_c − w·s·μ_u) / (1 + w − w·s)

For ``σ_c = σ_u`` it reduces to the usual ``μ_c + w(μ_c − μ_u)`` with ``σ̃ = σ_c``.
"""

from __future__ import annotations

import torch


def guided_gaussian(
    mu_c: torch.Tensor, sigma_c: torch.Tensor, mu_u: torch.Tensor, sigma_u: torch.Tensor, w: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(μ̃, σ̃)`` of the guided Gaussian (paper eq. for CFG in §3.3), elementwise."""
    if w < 0:
        raise ValueError(f"guidance weight must be >= 0, got {w}")
    s = (sigma_c / sigma_u).clamp(max=1.0).square()
    denom = 1 + w - w * s
    return ((1 + w) * mu_c - (w * s) * mu_u) / denom, sigma_c / denom.sqrt()
