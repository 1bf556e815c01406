"""Locally equivariant Transformer: two causal streams + hollow attention read-out + LE output head.

A left-to-right and a right-to-left causal Transformer (a time token prepended) give, at position i, features of
``x_{<i}`` and ``x_{>i}``. The read-out attends from ``(l2r_i + r2l_i)/√2`` to ``l2r_j`` (j ≤ i) and ``r2l_j``
(j ≥ i) only, so ``h_i`` never sees ``x_i`` (hollow) yet sees every other coordinate. Parameter names match the
authors' ``LEquiTFRtModel`` so their ``state_dict`` loads unchanged (:func:`load_official_state_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dnfs.layers import MLP, EmbeddingLayer, LEOutputLayer, TimestepEmbedder
from dnfs.targets import validate_states, validate_times
from labcore.hub import HubMixin


@dataclass
class LETransformerConfig:
    data_dim: int
    vocab_size: int
    hidden_dim: int = 64  # authors' Ising setting
    head_dim: int = 16
    num_blocks: int = 3
    layers_per_block: int = 1
    expansion: int = 4

    def __post_init__(self):
        if self.hidden_dim % self.head_dim:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be a multiple of head_dim {self.head_dim}")


class Attention(nn.Module):
    """Pre-norm multi-head self-attention (SDPA) with a boolean mask."""

    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.num_heads = channels // head_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, n, 3 * self.num_heads, -1).transpose(1, 2).chunk(3, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, head_channels: int, expansion: int = 4):
        super().__init__()
        self.attention = Attention(channels, head_channels)
        self.mlp = MLP(channels, expansion)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(x, mask)
        return x + self.mlp(x)


class CausalBlock(nn.Module):
    """A causal Transformer stack over ``[time token, x_1, ..., x_D]`` with an outer residual."""

    def __init__(self, channels: int, data_dim: int, head_channels: int, num_layers: int, expansion: int = 4):
        super().__init__()
        self.proj_in = nn.Linear(channels, channels)
        self.pos_embed = nn.Parameter(torch.randn(1 + data_dim, channels) * 1e-2)
        self.fwd_blocks = nn.ModuleList([AttentionBlock(channels, head_channels, expansion) for _ in range(num_layers)])
        self.register_buffer("causal_attn_mask", torch.tril(torch.ones(1 + data_dim, 1 + data_dim)))

    def forward(self, x: torch.Tensor, cond_t: torch.Tensor | None = None) -> torch.Tensor:
        h = self.proj_in(x) + self.pos_embed
        if cond_t is not None:
            h = h + cond_t
        mask = self.causal_attn_mask.bool()
        for block in self.fwd_blocks:
            h = block(h, mask)
        return h + x


class AggregationAttentionBlock(nn.Module):
    """Hollow read-out: query i attends to l2r_j (j ≤ i, sees x_{<j}) and r2l_j (j ≥ i, sees x_{>j})."""

    def __init__(self, channels: int, head_channels: int, data_dim: int, expansion: int = 4):
        super().__init__()
        self.data_dim, self.n_heads = data_dim, channels // head_channels
        self.pos_embed = nn.Parameter(torch.randn(data_dim, head_channels) * 1e-2)
        self.norm1 = nn.LayerNorm(channels)
        self.attn_q = nn.Linear(channels, channels)
        self.attn_k = nn.Linear(channels, channels)
        self.attn_v = nn.Linear(channels, channels)
        self.attn_out = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = MLP(channels, expansion)
        d = data_dim
        left = ~torch.triu(torch.ones(d, d, dtype=torch.bool), diagonal=1)  # j <= i
        right = ~torch.tril(torch.ones(d, d, dtype=torch.bool), diagonal=-1)  # j >= i
        self.register_buffer("joint_mask", torch.cat([left, right], -1), persistent=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:2], self.n_heads, -1).transpose(1, 2)  # (B, H, n, dh)

    def aggregate(self, combined: torch.Tensor, l2r: torch.Tensor, r2l: torch.Tensor) -> torch.Tensor:
        both = self.norm1(torch.cat([l2r, r2l], 1))
        combined = self.norm1(combined)
        pos = self.pos_embed[None, None]
        q = self._heads(self.attn_q(combined)) + pos
        k = self._heads(self.attn_k(both)) + torch.cat([pos, pos], 2)
        v = self._heads(self.attn_v(both))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.joint_mask)
        return self.attn_out(out.transpose(1, 2).reshape(combined.shape))

    def forward(self, fwd: torch.Tensor, bwd: torch.Tensor, cond_t: torch.Tensor | None = None) -> torch.Tensor:
        l2r, r2l = fwd[:, :-1], bwd[:, 1:]  # position i: l2r sees x_{<i}, r2l sees x_{>i}
        combined = (l2r + r2l) / math.sqrt(2)
        if cond_t is not None:
            combined, l2r, r2l = combined + cond_t, l2r + cond_t, r2l + cond_t
        h = combined + self.aggregate(combined, l2r, r2l)
        return h + self.mlp(self.norm2(h))


class LocallyEquivariantTransformer(
    nn.Module, HubMixin, library_name="dnfs", paper_url="https://arxiv.org/abs/2505.17741"
):
    """``G_θ(τ, i | x, t)``: locally equivariant rates for ``{0..S-1}^D`` (input long ``(B, D)``, t ``(B,)``)."""

    def __init__(self, config: LETransformerConfig):
        super().__init__()
        self.config = c = config
        self.data_dim, self.vocab_size = c.data_dim, c.vocab_size
        self.vocab_embedder = EmbeddingLayer(c.hidden_dim, c.vocab_size)
        self.time_embedder = TimestepEmbedder(c.hidden_dim)

        def stream():
            return nn.ModuleList(
                [
                    CausalBlock(c.hidden_dim, c.data_dim, c.head_dim, c.layers_per_block, c.expansion)
                    for _ in range(c.num_blocks)
                ]
            )

        self.fwd_blocks, self.bwd_blocks = stream(), stream()
        self.readout = AggregationAttentionBlock(c.hidden_dim, c.head_dim, c.data_dim, c.expansion)
        self.output_layer = LEOutputLayer(c.hidden_dim, c.vocab_size)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        validate_states(x, self.vocab_size, self.data_dim)
        validate_times(t, x.shape[0])
        emb = self.vocab_embedder(x)
        cond = self.time_embedder(t)[:, None]
        fwd = torch.cat([cond, emb], 1)
        for block in self.fwd_blocks:
            fwd = block(fwd)
        bwd = torch.cat([cond, emb.flip(1)], 1)
        for block in self.bwd_blocks:
            bwd = block(bwd)
        h = self.readout(fwd, bwd.flip(1), cond)
        return self.output_layer(x, h, cond)


def load_official_state_dict(model: LocallyEquivariantTransformer, state_dict: dict) -> LocallyEquivariantTransformer:
    """Load a ``state_dict`` of the authors' ``LEquiTFRtModel`` (same keys) with checked shapes."""
    from labcore.checkpoint import load_state_dict_checked

    state_dict = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state_dict.items()}
    load_state_dict_checked(model, state_dict)
    return model
