"""Block-wise cached sampler with confidence-threshold parallel decoding (beyond the paper; after Fast-dLLM).

The completion is decoded in blocks of ``block_length`` tokens, left to right. At the start of a block one
full forward pass refreshes the key/value cache of everything before the block and decodes its first
tokens; the following steps run the model only on ``[block_start − 1, end)`` (the extra token gives the
shifted logit of the block's first position) against that cached prefix. With ``dual_cache=True`` the
keys/values of the positions after the block are cached too and the in-block steps run the model on
``[block_start − 1, block_end)`` only (Fast-dLLM's dual cache).

Two in-block schedules, as Fast-dLLM's Dream sampler:

* ``threshold`` (default, ``steps=None``): each step reveals every masked token of the block whose
  probability exceeds ``threshold`` and always the most confident one, so a block takes at most
  ``block_length`` steps (Fast-dLLM's ``confidence_threshold``);
* ``steps``: Dream's schedule inside each block (``steps / num_blocks`` steps per block, ``floor(M·(1 −
  s/t))`` reveals per step, the rest at the block's last step), ranked by ``alg``'s confidence (``maskgit_plus``
  probability, ``topk_margin``, ``entropy``), drawn with ``alg_temp > 0``.

``<|mask|>`` itself is never proposed. One difference from Fast-dLLM: its refresh pass reveals the block's
first position unconditionally; here it decodes like every other step, so a block never takes more model
passes than there (one full refresh, then passes on the block only). The caches are an approximation
(cached keys were computed while other tokens were still masked); ``use_cache=False`` runs the same
schedule with full forwards, and the benchmark reports how many tokens agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffucoder.generation import DreamModelOutput, prepare_positions, sample_tokens
from diffucoder.modeling import shift_logits

CONFIDENCE = {"maskgit_plus": "prob", "topk_margin": "margin", "entropy": "neg_entropy"}


def _check(inputs, max_new_tokens, block_length, threshold, steps, alg, alg_temp, temperature):
    if inputs.dim() != 2 or inputs.shape[1] < 1 or inputs.is_floating_point():
        raise ValueError(f"inputs must be integer token ids (batch, prompt_len >= 1), got {tuple(inputs.shape)}")
    if max_new_tokens < 1 or block_length < 1 or max_new_tokens % block_length:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be a positive multiple of block_length={block_length}")
    blocks = max_new_tokens // block_length
    if steps is None:
        if threshold is None:
            raise ValueError("pass threshold (parallel decoding) or steps (a fixed schedule per block)")
        if alg not in (None, "maskgit_plus") or alg_temp:
            raise ValueError(
                f"alg={alg!r}/alg_temp={alg_temp!r} apply to the fixed schedule: pass steps=..., or leave them unset "
                "for threshold decoding (which ranks by probability)"
            )
    else:
        if steps % blocks or not 1 <= steps // blocks <= block_length:
            raise ValueError(
                f"steps={steps} must be a multiple of the {blocks} blocks with 1..{block_length} steps per block"
            )
        if (alg or "maskgit_plus") not in CONFIDENCE:
            raise ValueError(f"alg must be one of {sorted(CONFIDENCE)} in the cached sampler, got {alg!r}")
    if temperature < 0 or (alg_temp is not None and alg_temp < 0):
        raise ValueError("temperature and alg_temp must be non-negative")


@torch.no_grad()
def cached_generate(
    model,
    inputs: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 128,
    block_length: int = 32,
    threshold: float | None = 0.9,
    steps: int | None = None,
    alg: str | None = None,
    alg_temp: float | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    eps: float = 1e-3,
    use_cache: bool = True,
    dual_cache: bool = False,
    mask_token_id: int | None = None,
    output_history: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[DreamModelOutput, int]:
    """Sample completions block by block with a KV cache; returns ``(output, model_calls)``."""
    mask_token_id = model.config.mask_token_id if mask_token_id is None else mask_token_id
    _check(inputs, max_new_tokens, block_length, threshold, steps, alg, alg_temp, temperature)
    total = inputs.shape[1] + max_new_tokens
    if total > model.config.max_position_embeddings:
        raise ValueError(f"{total} tokens exceed the context {model.config.max_position_embeddings}")
    confidence = CONFIDENCE[alg or "maskgit_plus"]
    per_block = None if steps is None else steps // (max_new_tokens // block_length)
    timesteps = None if per_block is None else torch.linspace(1, eps, per_block + 1)
    x = F.pad(inputs, (0, max_new_tokens), value=mask_token_id)
    attn, pos = prepare_positions(attention_mask, total)
    history, nfe = [], 0
    for start in range(inputs.shape[1], total, block_length):
        end = start + block_length
        cache = None
        stop = end if dual_cache else total  # the model runs on [start − 1, stop) against the cache
        step = 0
        while bool((x[:, start:end] == mask_token_id).any()):
            if cache is None or not use_cache:
                out = model(x, attn, pos, use_cache=use_cache)
                logits = shift_logits(out.logits)[:, start:end]
                cache = out.past_key_values  # keys/values of every position, refreshed once per block
            else:  # [start − 1, stop) recomputed and written into the cache in place; the rest is reused
                sub_pos = None if pos is None else pos[:, start - 1 : stop]
                out = model(x[:, start - 1 : stop], attn, sub_pos, past_key_values=cache, cache_position=start - 1)
                logits = out.logits[:, : end - start]  # raw logit j predicts token start + j
            nfe += 1
            masked = x[:, start:end] == mask_token_id
            logits = logits.clone()
            logits[..., mask_token_id] = -torch.inf  # never propose <|mask|>: every step makes progress
            b, n, v = logits.shape
            conf, tok = sample_tokens(
                logits.reshape(b * n, v), temperature, top_p, top_k, confidence, generator=generator
            )
            conf = conf.view(b, n).float().masked_fill(~masked, -torch.inf)
            none = torch.zeros_like(masked)
            if per_block is None:  # threshold: all confident tokens, at least the best one
                reveal = (conf > threshold) | none.scatter(1, conf.argmax(-1, keepdim=True), True)
            else:  # Dream's schedule inside the block
                t, s = timesteps[step], timesteps[step + 1]
                last = step == per_block - 1
                k = int(masked.sum(-1).max()) if last else int(masked.sum() / b * (1 - s / t))
                if k == 0:
                    reveal = none
                elif alg_temp:
                    idx = torch.multinomial((conf / alg_temp).softmax(-1), k, generator=generator)
                    reveal = none.scatter(1, idx, True)
                else:
                    reveal = none.scatter(1, conf.topk(k, -1).indices, True)
            step += 1
            reveal &= masked
            x[:, start:end] = torch.where(reveal, tok.view(b, n), x[:, start:end])
            if output_history:
                history.append(x.clone())
    return DreamModelOutput(sequences=x, history=tuple(history) if output_history else None), nfe
