"""A small causal Transformer (SDPA attention, pre-norm) with an incremental KV cache for inversion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Per-layer key/value tensors grown one position at a time during sequential inversion."""

    def __init__(self, num_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, mlp_ratio: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} must be divisible by num_heads {heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        width = mlp_ratio * hidden
        self.mlp = nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, hidden))

    def forward(self, h: torch.Tensor, cache: KVCache | None = None, index: int = 0) -> torch.Tensor:
        b, n, c = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(index, k, v)
        # A cached step attends to every earlier position, so it needs no mask; full passes are causal.
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        h = h + self.proj(attn.transpose(1, 2).reshape(b, n, c))
        return h + self.mlp(self.norm2(h))


class CausalTransformer(nn.Module):
    """Maps ``(B, N, D_in)`` to causal features ``(B, N, H)``; position ``n`` sees inputs ``≤ n``."""

    def __init__(self, in_dim: int, hidden: int, depth: int, heads: int, max_len: int, mlp_ratio: int = 4):
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Linear(in_dim, hidden)
        self.pos = nn.Parameter(torch.randn(max_len, hidden) * 0.02)
        self.blocks = nn.ModuleList(Block(hidden, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        if start + x.shape[1] > self.max_len:
            raise ValueError(
                f"sequence of {start + x.shape[1]} patches exceeds max_seq_len/patch_size = "
                f"{self.max_len}; raise max_seq_len in the config"
            )
        h = self.embed(x) + self.pos[start : start + x.shape[1]]
        for i, block in enumerate(self.blocks):
            h = block(h, cache, i)
        return self.norm(h)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))
