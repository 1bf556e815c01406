"""Building blocks shared by the rate networks (parameter names follow the authors' layout)."""

from __future__ import annotations

import math

import torch
from torch import nn


class EmbeddingLayer(nn.Module):
    """A ``(vocab, dim)`` table indexed by integer states."""

    def __init__(self, dim: int, vocab_dim: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_dim, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding[x]


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t (cos, sin; max period 1e4) followed by a 2-layer SiLU MLP."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def sinusoidal(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
        return torch.cat([emb, torch.zeros_like(emb[:, :1])], -1) if dim % 2 else emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoidal(t, self.frequency_embedding_size).to(self.mlp[0].weight.dtype))


class MLP(nn.Module):
    """Pre-norm GELU feed-forward ``x ↦ W₂ GELU(W₁ LN(x))``."""

    def __init__(self, channels: int, expansion: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.main = nn.Sequential(
            nn.Linear(channels, channels * expansion), nn.GELU(), nn.Linear(channels * expansion, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(self.norm(x))


class LEOutputLayer(nn.Module):
    """Locally equivariant read-out ``G(τ, i | x) = h_i · (ω_τ − ω_{x_i})`` (the LE output head of the authors' code).

    If ``h_i`` does not depend on ``x_i`` (hollow), ``G(x_i, i | swap(x, i, τ)) = −G(τ, i | x)`` exactly.
    """

    def __init__(self, channels: int, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.ommega_embedder = EmbeddingLayer(channels, vocab_size)  # (sic) the authors' parameter name
        self.norm_final = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor, h: torch.Tensor, cond_t: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm_final(h)
        if cond_t is not None:
            h = h + cond_t
        scores = h @ self.ommega_embedder.embedding.T  # h_i · ω_τ, (B, D, S)
        return scores - scores.gather(-1, x[..., None])
