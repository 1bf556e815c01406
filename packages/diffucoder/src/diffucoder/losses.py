"""Masked-diffusion training objective (the ELBO of absorbing-state diffusion, as used by Dream/DiffuCoder).

For a clean sequence ``x`` with loss-bearing positions ``R`` (everything but the prompt), draw
``t ~ U[eps, 1]`` per sequence, mask each position of ``R`` independently with probability ``t`` and score

    L = Σ_b Σ_{i ∈ R_b, masked} −log p_θ(x_i | x_t) / t_b   /   Σ_b |R_b|

with *shifted* logits (position ``i`` read from hidden state ``i − 1``). Since ``E[1{masked}/t] = 1`` this is
an unbiased per-token estimate of the negative ELBO (paper §2, the MDM objective). The normalisation by the
number of loss-bearing tokens in the batch is our choice (the paper does not pin one down; Dream/LLaDA-style
code normalises per token). Prompts stay clean (SFT); ``<|dlm_pad|>`` padding after the answer is a target
like any other token, so the model learns where the answer ends.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffucoder.modeling import shift_logits


def forward_mask(
    input_ids: torch.Tensor,
    t: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Absorbing forward process: replace each ``maskable`` token by the mask with probability ``t`` (per row)."""
    u = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)
    masked = maskable & (u < t[:, None])
    return input_ids.masked_fill(masked, mask_token_id), masked


def token_log_probs(model, noisy_ids: torch.Tensor, targets: torch.Tensor, attention_mask=None) -> torch.Tensor:
    """``log p_θ(targets_i | noisy)`` at every position, with Dream's shifted logits (float32)."""
    logits = shift_logits(model(noisy_ids, attention_mask).logits).float()
    return -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def masked_diffusion_loss(
    model,
    input_ids: torch.Tensor,
    prompt_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    eps: float = 1e-3,
    t: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte-Carlo negative ELBO per loss-bearing token (see module docstring). ``prompt_mask``: True = prompt."""
    mask_token_id = model.config.mask_token_id if mask_token_id is None else mask_token_id
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, length), got {tuple(input_ids.shape)}")
    if bool((input_ids == mask_token_id).any()):
        raise ValueError("clean input_ids contain the mask token; the training data must not include <|mask|>")
    b = input_ids.shape[0]
    maskable = torch.ones_like(input_ids, dtype=torch.bool) if prompt_mask is None else ~prompt_mask.bool()
    if t is None:
        t = eps + (1 - eps) * torch.rand(b, device=input_ids.device, generator=generator)
    noisy, masked = forward_mask(input_ids, t, maskable, mask_token_id, generator)
    nll = -token_log_probs(model, noisy, input_ids)
    weighted = (nll * masked).sum(-1) / t
    return weighted.sum() / maskable.sum().clamp(min=1)
