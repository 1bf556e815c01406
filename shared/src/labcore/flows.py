"""Pieces shared by the normalising-flow packages (TarFlow, STARFlow).

Patch tokenisation in the reference layout (``F.unfold`` order: channel-major, then the
patch's rows and columns) and the one-step score-based denoiser ``x + σ²∇log p(x)`` that
TarFlow (§2.3) and STARFlow apply to samples drawn from a noise-augmented model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or float64 if it already is: a flow's affine maths, log-determinants and reductions run in
    float32 under a bfloat16 model and never lose a float64 model's precision."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B, (H/p)·(W/p), C·p·p)`` tokens in raster order."""
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not divisible by the patch size {patch_size}")
    return F.unfold(x, patch_size, stride=patch_size).transpose(1, 2)


def unpatchify(tokens: torch.Tensor, patch_size: int, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify` for images of spatial ``size`` ``(H, W)``."""
    return F.fold(tokens.transpose(1, 2), size, patch_size, stride=patch_size)


def score_denoise(x: torch.Tensor, sigma: float, log_prob: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Tweedie's one-step denoiser ``x + σ²·∇ₓ log p(x)`` for samples of ``p = p_data * N(0, σ²)``.

    ``log_prob`` maps a batch to per-example log-densities; gradients are taken of their sum.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_prob(x).sum(), x)
    return (x + sigma**2 * grad).detach()
