"""Transformer pieces of a TarFlow block, named as apple/ml-tarflow names them (state-dict compatible).

Attention runs through ``F.scaled_dot_product_attention``: ``is_causal=True`` for whole
sequences (training, likelihood, Jacobi sampling) and a preallocated KV cache for the
token-by-token inverse, so no explicit mask is ever built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labcore.flows import at_least_fp32


def layer_norm_fp32(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm evaluated in (at least) float32 and cast back (the paper keeps LN in full precision);
    works for bf16 and float64 models too (the weights are cast with the input)."""
    h = at_least_fp32(x)
    w = None if norm.weight is None else norm.weight.to(h.dtype)
    b = None if norm.bias is None else norm.bias.to(h.dtype)
    return F.layer_norm(h, norm.normalized_shape, w, b, norm.eps).type(x.dtype)


class KVCache:
    """Keys and values of every layer of one flow block, allocated once for the whole sequence.

    The same cache serves every block of a model in turn: each block writes position ``i``
    before it reads positions ``0..i``.
    """

    def __init__(self, num_layers: int, length: int):
        self.length = length
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    def update(self, layer: int, pos: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` of shape ``(B, H, 1, d)`` at ``pos``; return the cached ``(B, H, pos+1, d)``."""
        cached = self.keys[layer]
        if cached is None or cached.shape[:2] != k.shape[:2] or cached.dtype != k.dtype or cached.device != k.device:
            shape = (*k.shape[:2], self.length, k.shape[-1])
            self.keys[layer] = k.new_empty(shape)
            self.values[layer] = v.new_empty(shape)
        keys, values = self.keys[layer], self.values[layer]
        keys[:, :, pos] = k[:, :, 0]
        values[:, :, pos] = v[:, :, 0]
        return keys[:, :, : pos + 1], values[:, :, : pos + 1]


class Attention(nn.Module):
    """Pre-LN multi-head causal self-attention (reference ``Attention``: ``norm``, ``qkv``, ``proj``)."""

    def __init__(self, channels: int, head_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.num_heads = channels // head_dim
        self.head_dim = head_dim

    def _qkv(self, x: torch.Tensor, temp: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        qkv = self.qkv(layer_norm_fp32(self.norm, x))
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)  # (B, H, T, d) each
        if temp is not None:  # attention temperature (§2.4 unconditional guidance): logits / temp
            q = q / temp.to(q.dtype).view(-1, 1, 1, 1)
        return q, k, v

    def forward(self, x: torch.Tensor, temp: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._qkv(x, temp)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(out.transpose(1, 2).flatten(2))

    def step(self, x: torch.Tensor, cache: KVCache, layer: int, pos: int, temp: torch.Tensor | None) -> torch.Tensor:
        """Attention of the single token ``x`` ``(B, 1, C)`` at ``pos`` to the cached prefix."""
        q, k, v = self._qkv(x, temp)
        k, v = cache.update(layer, pos, k, v)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    """Pre-LN GELU MLP (reference ``MLP``: ``norm``, ``main.0``, ``main.2``)."""

    def __init__(self, channels: int, expansion: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.main = nn.Sequential(
            nn.Linear(channels, channels * expansion), nn.GELU(), nn.Linear(channels * expansion, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(layer_norm_fp32(self.norm, x))


class AttentionBlock(nn.Module):
    """One causal pre-LN Transformer layer (reference ``AttentionBlock``)."""

    def __init__(self, channels: int, head_dim: int, expansion: int):
        super().__init__()
        self.attention = Attention(channels, head_dim)
        self.mlp = MLP(channels, expansion)

    def forward(self, x: torch.Tensor, temp: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(x, temp)
        return x + self.mlp(x)

    def step(self, x: torch.Tensor, cache: KVCache, layer: int, pos: int, temp: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attention.step(x, cache, layer, pos, temp)
        return x + self.mlp(x)
