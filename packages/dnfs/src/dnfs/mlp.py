"""Locally equivariant MLP baseline (hollow first layer + position-wise MLP + LE head).

``z_i = Σ_{j≠i} W_{ij} e(x_j)`` (a linear map whose diagonal blocks are masked to zero), then a per-position
MLP conditioned on t and a position embedding; ``h_i`` is hollow so ``G = h_i·(ω_τ − ω_{x_i})`` is locally
equivariant. This is our own simple baseline: the paper's exact MLP architecture could not be checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dnfs.layers import LEOutputLayer, TimestepEmbedder
from dnfs.targets import validate_states, validate_times
from labcore.hub import HubMixin


@dataclass
class LEMLPConfig:
    data_dim: int
    vocab_size: int
    hidden_dim: int = 64
    num_layers: int = 2


class LocallyEquivariantMLP(nn.Module, HubMixin, library_name="dnfs", paper_url="https://arxiv.org/abs/2505.17741"):
    def __init__(self, config: LEMLPConfig):
        super().__init__()
        self.config = c = config
        self.data_dim, self.vocab_size = c.data_dim, c.vocab_size
        d, s, h = c.data_dim, c.vocab_size, c.hidden_dim
        self.mix = nn.Parameter(torch.randn(d, d, s, h) / math.sqrt(d * s))
        self.register_buffer("hollow", 1.0 - torch.eye(d)[:, :, None, None], persistent=False)
        self.pos_embed = nn.Parameter(torch.randn(d, h) * 1e-2)
        self.time_embedder = TimestepEmbedder(h)
        layers = []
        for _ in range(c.num_layers):
            layers += [nn.LayerNorm(h), nn.Linear(h, h), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.output_layer = LEOutputLayer(h, s)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        validate_states(x, self.vocab_size, self.data_dim)
        validate_times(t, x.shape[0])
        onehot = nn.functional.one_hot(x, self.vocab_size).to(self.mix.dtype)
        z = torch.einsum("bjs,ijsh->bih", onehot, self.mix * self.hollow)  # no x_i in z_i
        cond = self.time_embedder(t)[:, None]
        h = self.body(z + self.pos_embed + cond)
        return self.output_layer(x, h, cond)
