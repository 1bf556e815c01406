"""Bidirectional Transformer denoiser ``p_θ(x_1 | x_t)`` (factorised over positions), SDPA attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from labcore.hub import PreTrainedMixin
from tcsm.config import TCSMConfig


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of ``t ∈ [0, 1]`` (``(B,) → (B, dim)``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, dim % 2))


class Block(nn.Module):
    def __init__(self, c: TCSMConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.norm1 = nn.LayerNorm(c.hidden_size)
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.proj = nn.Linear(c.hidden_size, c.hidden_size)
        self.norm2 = nn.LayerNorm(c.hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(c.hidden_size, c.intermediate_size), nn.GELU(), nn.Linear(c.intermediate_size, c.hidden_size)
        )
        self.dropout = c.dropout

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # bidirectional: no causal mask
        h = h + F.dropout(self.proj(a.transpose(1, 2).reshape(b, n, d)), drop, self.training)
        return h + F.dropout(self.mlp(self.norm2(h)), drop, self.training)


class TCSMDenoiser(PreTrainedMixin, PreTrainedModel):
    """``forward(x_t, t) → logits (B, L, V)`` of the factorised denoiser ``∏_i p_θ(x_1^i | x_t)``."""

    paper_url = "https://arxiv.org/abs/2504.16431"

    config_class = TCSMConfig
    base_model_prefix = "tcsm"
    main_input_name = "input_ids"

    def __init__(self, config: TCSMConfig):
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(c.input_vocab_size, c.hidden_size)
        self.pos = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.time = (
            nn.Sequential(nn.Linear(c.hidden_size, c.hidden_size), nn.SiLU(), nn.Linear(c.hidden_size, c.hidden_size))
            if c.time_conditioning
            else None
        )
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_hidden_layers))
        self.norm = nn.LayerNorm(c.hidden_size)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def check_input_ids(self, input_ids: torch.Tensor) -> None:
        c = self.config
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > c.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                f"{c.max_position_embeddings}: shorten the input or build a config with a longer context"
            )
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= c.input_vocab_size:
            what = f"0..{c.vocab_size - 1}"
            if c.process == "masked":
                what += f" plus mask id {c.mask_token_id}"
            raise ValueError(
                f"token ids must lie in {what}; got values in [{lo}, {hi}]. "
                "Encode text with tcsm.data.CharVocab or rebuild the config with the right vocab_size"
            )

    def forward(self, input_ids: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input_ids(input_ids)
        h = self.embed(input_ids) + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        if self.time is not None:
            if t is None:
                raise ValueError("this denoiser is time-conditioned: pass t (shape (batch,), values in [0, 1])")
            if t.ndim > 1 or not bool(torch.isfinite(t).all()):
                raise ValueError(f"t must be finite times in [0, 1] of shape (batch,) or (), got {tuple(t.shape)} {t}")
            h = h + self.time(timestep_embedding(t.expand(input_ids.shape[0]), h.shape[-1]).to(h.dtype))[:, None]
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)).to(torch.promote_types(h.dtype, torch.float32))  # float32 or float64 logits
