"""Block-wise cached sampler with confidence-threshold parallel decoding (beyond the paper; after Fast-dLLM).

The completion is decoded in blocks of ``block_length`` tokens, left to right. At the start of a block one
full forward pass refreshes the key/value cache of everything before the block; the following steps run
the model only on ``[block_start − 1, end)`` (the extra token gives the shifted logit of the block's first
position) against that cached prefix. Each step reveals, in the current block, every masked token whose
greedy (or sampled) probability exceeds ``threshold`` and always at least the most confident one, so a
block takes at most ``block_length`` steps (``<|mask|>`` itself is never proposed).

With ``dual_cache=True`` the keys/values of the positions after the block are cached too and the in-block
steps run the model on ``[block_start − 1, block_end)`` only (Fast-dLLM's dual cache).

The caches are an approximation (cached keys were computed while other tokens were still masked), so
results can differ from :func:`~diffucoder.generation.diffusion_generate`; the benchmark reports the token
agreement rate. ``use_cache=False`` runs the same schedule with full forwards (exact model calls).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffucoder.generation import DreamModelOutput, prepare_positions, sample_tokens
from diffucoder.modeling import shift_logits


@torch.no_grad()
def cached_generate(
    model,
    inputs: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 128,
    block_length: int = 32,
    threshold: float = 0.9,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    use_cache: bool = True,
    dual_cache: bool = False,
    mask_token_id: int | None = None,
    output_history: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[DreamModelOutput, int]:
    """Sample completions block by block with a prefix KV cache; returns ``(output, model_calls)``."""
    mask_token_id = model.config.mask_token_id if mask_token_id is None else mask_token_id
    if inputs.dim() != 2 or inputs.shape[1] < 1:
        raise ValueError(f"inputs must be (batch, prompt_len >= 1), got {tuple(inputs.shape)}")
    if max_new_tokens < 1 or block_length < 1 or max_new_tokens % block_length:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be a positive multiple of block_length={block_length}")
    total = inputs.shape[1] + max_new_tokens
    if total > model.config.max_position_embeddings:
        raise ValueError(f"{total} tokens exceed the context {model.config.max_position_embeddings}")
    x = F.pad(inputs, (0, max_new_tokens), value=mask_token_id)
    attn, pos = prepare_positions(attention_mask, total)
    history, nfe = [], 0
    for start in range(inputs.shape[1], total, block_length):
        end = start + block_length
        past = future = None
        stop = end if dual_cache else total  # the model runs on [start − 1, stop) against the caches
        while bool((x[:, start:end] == mask_token_id).any()):
            if past is None or not use_cache:
                out = model(x, attn, pos, use_cache=use_cache)
                logits = shift_logits(out.logits)[:, start:end]
                if use_cache:  # keys/values of [0, start − 1) and, for the dual cache, of [end, total)
                    past = tuple((k[:, :, : start - 1], v[:, :, : start - 1]) for k, v in out.past_key_values)
                    if dual_cache:
                        future = tuple((k[:, :, end:], v[:, :, end:]) for k, v in out.past_key_values)
            else:
                # without padding the model numbers the slice from the past length, i.e. start − 1 .. stop − 1
                sub_pos = None if pos is None else pos[:, start - 1 : stop]
                out = model(x[:, start - 1 : stop], attn, sub_pos, past_key_values=past, future_key_values=future)
                logits = out.logits[:, : end - start]  # raw logit j predicts token start + j
            nfe += 1
            masked = x[:, start:end] == mask_token_id
            logits = logits.clone()
            logits[..., mask_token_id] = -torch.inf  # never propose <|mask|>: every step makes progress
            b, n, v = logits.shape
            conf, tok = sample_tokens(logits.reshape(b * n, v), temperature, top_p, top_k, generator=generator)
            conf = conf.view(b, n).float().masked_fill(~masked, -1.0)
            best = conf.argmax(-1, keepdim=True)
            reveal = (conf > threshold) | torch.zeros_like(masked).scatter(1, best, True)
            reveal &= masked
            x[:, start:end] = torch.where(reveal, tok.view(b, n), x[:, start:end])
            if output_history:
                history.append(x.clone())
    return DreamModelOutput(sequences=x, history=tuple(history) if output_history else None), nfe
