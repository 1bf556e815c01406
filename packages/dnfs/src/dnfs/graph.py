"""Locally equivariant graph Transformer for combinatorial problems on a graph with adjacency ``A``.

A structural stream (degree embedding, graph-masked self-attention; independent of x) gives node features
``s_i``. Hollow layers then update ``h_i`` by attending from ``h_i`` to keys/values built from ``(s_j, x_j)`` for
``j ≠ i`` only (an edge/non-edge bias per head favours graph neighbours), so ``h_i`` never depends on ``x_i`` and the
LE head ``h_i·(ω_τ − ω_{x_i})`` is locally equivariant. Our design: the paper's graph Transformer could not be
checked line by line (its code is not in the authors' first commit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dnfs.layers import MLP, EmbeddingLayer, LEOutputLayer, TimestepEmbedder
from dnfs.targets import validate_states, validate_times
from dnfs.transformer import AttentionBlock
from labcore.hub import HubMixin


@dataclass
class LEGraphConfig:
    data_dim: int
    vocab_size: int = 2
    hidden_dim: int = 64
    head_dim: int = 16
    structural_layers: int = 2
    hollow_layers: int = 2
    max_degree: int = 64


class HollowGraphLayer(nn.Module):
    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.n_heads = channels // head_channels
        self.norm_q, self.norm_kv = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.q, self.kv = nn.Linear(channels, channels), nn.Linear(channels, 2 * channels)
        self.edge_bias = nn.Parameter(torch.zeros(2, self.n_heads))
        self.out = nn.Linear(channels, channels)
        self.mlp = MLP(channels)

    def forward(self, h: torch.Tensor, kv_in: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        b, n, c = h.shape
        q = self.q(self.norm_q(h)).reshape(b, n, self.n_heads, -1).transpose(1, 2)
        k, v = self.kv(self.norm_kv(kv_in)).reshape(b, n, 2, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        bias = self.edge_bias[adjacency.long()].permute(2, 0, 1)  # (H, n, n)
        eye = torch.eye(n, dtype=torch.bool, device=h.device)
        bias = bias.masked_fill(eye, float("-inf"))  # never attend to yourself: keeps h_i free of x_i
        if n == 1:
            bias = torch.zeros_like(bias)  # a single node has nothing else to see; v is zeroed below
            v = torch.zeros_like(v)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None].to(q.dtype))
        h = h + self.out(att.transpose(1, 2).reshape(b, n, c))
        return h + self.mlp(h)


class LocallyEquivariantGraphTransformer(
    nn.Module, HubMixin, library_name="dnfs", paper_url="https://arxiv.org/abs/2505.17741"
):
    def __init__(self, config: LEGraphConfig, adjacency: torch.Tensor):
        super().__init__()
        self.config = c = config
        self.data_dim, self.vocab_size = c.data_dim, c.vocab_size
        self.set_graph(adjacency)
        self.degree_embed = nn.Embedding(c.max_degree + 1, c.hidden_dim)
        self.vocab_embedder = EmbeddingLayer(c.hidden_dim, c.vocab_size)
        self.time_embedder = TimestepEmbedder(c.hidden_dim)
        self.structural = nn.ModuleList([AttentionBlock(c.hidden_dim, c.head_dim) for _ in range(c.structural_layers)])
        self.hollow = nn.ModuleList([HollowGraphLayer(c.hidden_dim, c.head_dim) for _ in range(c.hollow_layers)])
        self.output_layer = LEOutputLayer(c.hidden_dim, c.vocab_size)

    def set_graph(self, adjacency: torch.Tensor) -> None:
        """Use another graph with the same number of nodes (e.g. a fresh Erdős–Rényi instance)."""
        # read on the graph's own device (CPU for lists/arrays), also while a model is built on the meta device
        adjacency = torch.as_tensor(adjacency, device=adjacency.device if torch.is_tensor(adjacency) else "cpu").float()
        if adjacency.shape != (self.data_dim, self.data_dim):
            raise ValueError(f"adjacency must be ({self.data_dim}, {self.data_dim}), got {tuple(adjacency.shape)}")
        if torch.diagonal(adjacency).any():
            raise ValueError("the graph has self-loops; remove them (nx.selfloop_edges) before building the model")
        device = next(self.parameters(), adjacency).device  # the model's device once it has parameters
        adjacency = (adjacency > 0).float().to(device)
        self.register_buffer("adjacency", adjacency, persistent=False)
        # graph-only inputs of the structural stream, computed once per graph rather than in every forward
        degree = adjacency.sum(1).long().clamp(max=self.config.max_degree)
        self.register_buffer("degree", degree, persistent=False)
        self.register_buffer("graph_mask", (adjacency + torch.eye(self.data_dim, device=device)) > 0, persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        validate_states(x, self.vocab_size, self.data_dim)
        validate_times(t, x.shape[0])
        cond = self.time_embedder(t)[:, None]
        s = self.degree_embed(self.degree)[None] + cond
        for block in self.structural:
            s = block(s, self.graph_mask)
        kv = s + self.vocab_embedder(x)  # node j's key/value sees x_j only
        h = s
        for layer in self.hollow:
            h = layer(h, kv, self.adjacency)
        return self.output_layer(x, h, cond)
