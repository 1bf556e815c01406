"""The reference implementation's computation strategy, run on a :class:`TarFlow`'s own weights.

A straightforward re-statement of how apple/ml-tarflow evaluates the model: attention with the
explicit ``attn_mask`` buffer, a KV cache grown by concatenation at every token, and separate
conditional/unconditional calls for guidance. It exists as the baseline of the benchmark and
as an independent check of the fast paths in the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tarflow.block import MetaBlock
from tarflow.layers import Attention, layer_norm_fp32
from tarflow.model import TarFlow


def _attend(
    attn: Attention,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    temp: float,
    cache: dict[str, list[torch.Tensor]] | None,
) -> torch.Tensor:
    b, t, c = x.shape
    q, k, v = attn.qkv(layer_norm_fp32(attn.norm, x)).reshape(b, t, 3 * attn.num_heads, -1).transpose(1, 2).chunk(3, 1)
    if cache is not None:
        cache["k"].append(k)
        cache["v"].append(v)
        k, v = torch.cat(cache["k"], dim=2), torch.cat(cache["v"], dim=2)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=None if mask is None else mask.bool(), scale=attn.head_dim**-0.5 / temp
    )
    return attn.proj(out.transpose(1, 2).reshape(b, t, c))


def _run_layers(block: MetaBlock, h: torch.Tensor, mask, temp, caches) -> torch.Tensor:
    for layer, cache in zip(block.attn_blocks, caches or [None] * len(block.attn_blocks)):
        h = h + _attend(layer.attention, h, mask, temp, cache)
        h = h + layer.mlp(h)
    return h


def _embed(block: MetaBlock, y: torch.Tensor | None) -> torch.Tensor | float:
    if block.class_embed is None:
        return 0.0
    if y is None:
        return block.class_embed.mean(dim=0)
    m = (y < 0).float().view(-1, 1, 1)
    return (1 - m) * block.class_embed[y.clamp(min=0)] + m * block.class_embed.mean(dim=0)


def baseline_forward(
    model: TarFlow, x: torch.Tensor, y: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z, logdet)`` with the explicit causal mask; ``logdet`` summed per example."""
    h = model.patchify(x)
    logdet = torch.zeros(x.shape[0], device=x.device)
    for block in model.blocks:
        h = block.permute(h)
        inp = h
        out = block.proj_in(h) + block.permute(block.pos_embed, dim=0) + _embed(block, y)
        out = block.proj_out(_run_layers(block, out, block.attn_mask, 1.0, None))
        out = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)
        a, b = out.chunk(2, dim=-1) if block.nvp else (torch.zeros_like(out), out)
        h = block.permute((inp - b) * torch.exp(-a.float()).type(a.dtype))
        logdet = logdet - a.float().sum(dim=(1, 2))
    return h, logdet


def _step(block: MetaBlock, x: torch.Tensor, pos_embed: torch.Tensor, i: int, y, temp: float, caches):
    h = block.proj_in(x[:, i : i + 1]) + pos_embed[i : i + 1] + _embed(block, y)
    out = block.proj_out(_run_layers(block, h, None, temp, caches))
    return out.chunk(2, dim=-1) if block.nvp else (torch.zeros_like(out), out)


@torch.no_grad()
def baseline_inverse(
    model: TarFlow,
    z: torch.Tensor,
    y: torch.Tensor | None = None,
    guidance: float = 0.0,
    guide_what: str = "ab",
    attn_temp: float = 1.0,
    annealed_guidance: bool = False,
) -> torch.Tensor:
    """Token-by-token inverse with concatenating caches and separate CFG calls."""
    x = z * model.var.sqrt().to(z.dtype)
    for block in reversed(model.blocks):
        x = block.permute(x).clone()
        pos_embed = block.permute(block.pos_embed, dim=0)
        n = len(block.attn_blocks)
        cond = [{"k": [], "v": []} for _ in range(n)]
        uncond = [{"k": [], "v": []} for _ in range(n)]
        length = x.shape[1]
        for i in range(length - 1):
            a, b = _step(block, x, pos_embed, i, y, 1.0, cond)
            if guidance > 0 and guide_what:
                a_u, b_u = _step(block, x, pos_embed, i, None, attn_temp, uncond)
                g = (i + 1) / (length - 1) * guidance if annealed_guidance else guidance
                if "a" in guide_what:
                    a = a + g * (a - a_u)
                if "b" in guide_what:
                    b = b + g * (b - b_u)
            x[:, i + 1] = x[:, i + 1] * torch.exp(a[:, 0].float()).type(a.dtype) + b[:, 0]
        x = block.permute(x)
    return model.unpatchify(x)
