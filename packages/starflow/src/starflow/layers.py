"""Transformer pieces of a flow block: RMSNorm, 2-D/3-D RoPE, a preallocated KV cache, attention.

Module and parameter names (``attention.qkv``, ``mlp.main.0``, ``final_norm.weight``, ...) follow
the reference release so its checkpoints load by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from labcore.flows import at_least_fp32


class RMSNorm(nn.Module):
    """RMSNorm with a unit offset: ``x / rms(x) · (1 + w)``, ``w`` initialised to zero."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = at_least_fp32(x)
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * (1 + self.weight.to(xf.dtype))).type_as(x)


def rope_angles(grid: int, txt_len: int, head_dim: int, with_text_axis: bool, theta: float = 1e4) -> torch.Tensor:
    """Rotation angles ``(txt_len + grid², head_dim // 2)`` of the reference's 2-D/3-D RoPE.

    Image tokens sit at ``(row, col, 0)`` and text token ``i`` at ``(0, 0, i/txt_len·grid)``.
    With a text axis (any text-conditioned model) the last 8 frequencies rotate along it;
    the rest are split evenly between rows and columns.
    """
    half = head_dim // 2
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    rows, cols = rows.reshape(-1).float(), cols.reshape(-1).float()
    spatial = half - 8 if with_text_axis else half
    freqs = theta ** (-torch.arange(0, spatial, 2).float() / spatial)
    parts = [rows[:, None] * freqs, cols[:, None] * freqs]
    if with_text_axis:
        freqs_t = theta ** (-torch.arange(8).float() / 8)
        t = torch.cat([torch.arange(txt_len).float() / max(txt_len, 1) * grid, torch.zeros(grid * grid)])
        parts = [torch.cat([torch.zeros(txt_len, p.shape[1]), p]) for p in parts]
        parts.append(t[:, None] * freqs_t)
    return torch.cat(parts, -1)


class Rope:
    """Cos/sin tables of :func:`rope_angles`, interleaved per channel pair."""

    def __init__(self, angles: torch.Tensor, dtype: torch.dtype = torch.float32):
        angles = angles.repeat_interleave(2, dim=-1)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)

    def to(self, device: torch.device) -> Rope:
        self.cos, self.sin = self.cos.to(device), self.sin.to(device)
        return self

    def apply(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Rotate ``x (B, H, L, d)`` whose tokens sit at positions ``start .. start+L-1``."""
        cos, sin = self.cos[start : start + x.shape[-2]], self.sin[start : start + x.shape[-2]]
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), -1).flatten(-2)
        return (at_least_fp32(x) * cos + at_least_fp32(rotated) * sin).to(x.dtype)


class KVCache:
    """Preallocated keys/values ``(layers, 2, B, H, max_len, d)`` with one write pointer per layer."""

    def __init__(
        self,
        num_layers: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        device: torch.device,
        dtype: torch.dtype,
    ):
        self.kv = torch.zeros(num_layers, 2, batch, heads, max_len, head_dim, device=device, dtype=dtype)
        self.index = [0] * num_layers

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k, v`` at the pointer; return all keys/values so far."""
        start, n = self.index[layer], k.shape[-2]
        if start + n > self.kv.shape[-2]:
            raise RuntimeError(f"KV cache overflow: {start + n} > {self.kv.shape[-2]} positions")
        self.kv[layer, 0, :, :, start : start + n] = k
        self.kv[layer, 1, :, :, start : start + n] = v
        self.index[layer] = start + n
        return self.kv[layer, 0, :, :, : start + n], self.kv[layer, 1, :, :, : start + n]

    def rewind(self, n: int) -> None:
        """Forget the last ``n`` positions (a Jacobi iteration that did not converge)."""
        self.index = [max(0, i - n) for i in self.index]


class Attention(nn.Module):
    def __init__(self, channels: int, head_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.num_heads, self.head_dim = channels // head_dim, head_dim
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(
        self,
        x: torch.Tensor,
        rope: Rope | None,
        cache: KVCache | None = None,
        layer: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        start = cache.index[layer] if cache is not None else 0
        if rope is not None:  # keys are cached already rotated
            q, k = rope.apply(q, start), rope.apply(k, start)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        if mask is not None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif k.shape[-2] == n:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif n == 1:
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk of new queries after a cached prefix (Jacobi blocks)
            causal = torch.ones(n, k.shape[-2], dtype=torch.bool, device=x.device).tril(k.shape[-2] - n)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, channels: int, expansion: float):
        super().__init__()
        hidden = int(channels * expansion)
        self.norm = nn.LayerNorm(channels)
        self.main = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(self.norm(x))


class AttentionBlock(nn.Module):
    """Pre-norm causal transformer layer."""

    def __init__(self, channels: int, head_dim: int, expansion: float):
        super().__init__()
        self.attention = Attention(channels, head_dim)
        self.mlp = MLP(channels, expansion)

    def forward(
        self,
        x: torch.Tensor,
        rope: Rope | None,
        cache: KVCache | None = None,
        layer: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attention(x, rope, cache, layer, mask)
        return x + self.mlp(x)


def causal_mask(n: int, device: torch.device) -> torch.Tensor:
    """Explicit lower-triangular boolean mask (used by the reference-strategy baseline)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))
