"""Dream's masked-diffusion sampler (``diffusion_generate``), vectorised over the batch.

Semantics follow the official Dream ``generation_utils.py``: the completion starts fully masked; at step
``i`` of ``steps`` with times ``t_i = linspace(1, eps, steps + 1)``

* ``alg="origin"``: each masked token is revealed independently with probability ``1 − s/t`` (all at the
  last step), its value drawn from the (temperature / top-p / top-k) distribution;
* ``alg ∈ {maskgit_plus, topk_margin, entropy}``: every masked position proposes a token and a confidence
  (its probability, top-1 minus top-2 margin, or negative entropy); ``floor(M·(1 − s/t))`` positions are
  revealed, ``M`` the mean number of masked tokens per row (the rest at the last step): the most confident
  ones, or, with ``alg_temp > 0``, drawn without replacement from ``softmax(confidence / alg_temp)``.

Logits are shifted (position ``i`` predicted from hidden state ``i − 1``). Left-padded prompts get position
ids from the attention mask (``cumsum − 1``) and padded keys are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput

from diffucoder.modeling import shift_logits

ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy")


@dataclass
class DreamModelOutput(ModelOutput):
    sequences: torch.Tensor | None = None
    history: tuple[torch.Tensor, ...] | None = None


def top_p_logits(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest prefix of sorted tokens whose mass reaches ``top_p`` (always ≥ 1)."""
    sorted_logits, order = torch.sort(logits, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = cum > top_p
    drop[..., 1:] = drop[..., :-1].clone()
    drop[..., 0] = False
    drop = torch.zeros_like(drop).scatter(-1, order, drop)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def top_k_logits(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def sample_tokens(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    confidence: str = "prob",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propose one token per row of ``logits`` (argmax at temperature 0) and its confidence.

    ``confidence``: ``"prob"`` (probability of the proposal), ``"margin"`` (top-1 − top-2 probability) or
    ``"neg_entropy"`` (Σ p log p), all computed on the filtered, tempered distribution.
    """
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = top_p_logits(logits, top_p)
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0:
        tokens = torch.multinomial(probs.float(), 1, generator=generator)[:, 0]
        conf = probs.gather(-1, tokens[:, None])[:, 0]
    else:
        conf, tokens = probs.max(-1)
    if confidence == "margin":
        top2 = probs.topk(2, dim=-1).values
        conf = top2[:, 0] - top2[:, 1]
    elif confidence == "neg_entropy":
        conf = (probs * torch.log(probs + 1e-10)).sum(-1)
    return conf, tokens


def _check(model, input_ids, attention_mask, steps, max_length, alg, mask_token_id, alg_temp, temperature):
    if input_ids.dim() != 2:
        raise ValueError(f"inputs must be (batch, prompt_len) token ids, got shape {tuple(input_ids.shape)}")
    if input_ids.is_floating_point():
        raise ValueError(f"inputs must be integer token ids, got {input_ids.dtype}")
    if alg not in ALGS:
        raise ValueError(f"unknown alg {alg!r}; choose one of {ALGS}")
    if mask_token_id is None:
        raise ValueError("no mask_token_id: set it in the model config or pass mask_token_id=<id of <|mask|>>")
    new = max_length - input_ids.shape[1]
    if new <= 0:
        raise ValueError(f"nothing to generate: prompt has {input_ids.shape[1]} tokens and max_length={max_length}")
    limit = model.config.max_position_embeddings
    if max_length > limit:
        raise ValueError(
            f"prompt ({input_ids.shape[1]}) + new tokens ({new}) = {max_length} exceeds the context {limit}"
        )
    if not 1 <= steps <= new:
        raise ValueError(f"steps must be in [1, max_new_tokens={new}], got {steps}")
    if not 0 <= temperature < math.inf or (alg_temp is not None and not 0 <= alg_temp < math.inf):
        raise ValueError(f"temperature and alg_temp must be finite and non-negative, got {temperature}, {alg_temp}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match inputs {tuple(input_ids.shape)}")


def left_pad(
    prompts: list[list[int]], pad_token_id: int, width: int | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token-id lists to ``width`` (default: the longest): ``(input_ids, attention_mask)``, 1 = token."""
    longest = max(len(p) for p in prompts)
    width = longest if width is None else width
    if width < longest:
        raise ValueError(f"width={width} is shorter than the longest prompt ({longest} tokens)")
    ids = torch.tensor([[pad_token_id] * (width - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    return ids, mask


def prepare_positions(
    attention_mask: torch.Tensor | None, total: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Right-extend a left-padding mask to ``total`` and derive Dream's position ids (``cumsum − 1``)."""
    if attention_mask is None or bool((attention_mask != 0).all()):
        return None, None
    mask = F.pad(attention_mask.long(), (0, total - attention_mask.shape[1]), value=1)
    pos = mask.cumsum(-1) - 1
    return mask, pos.masked_fill(mask == 0, 1)


@torch.no_grad()
def diffusion_generate(
    model,
    inputs: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int | None = None,
    max_length: int | None = None,
    steps: int = 512,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    alg: str = "origin",
    alg_temp: float | None = None,
    eps: float = 1e-3,
    num_return_sequences: int = 1,
    output_history: bool = False,
    return_dict_in_generate: bool = False,
    mask_token_id: int | None = None,
    generation_tokens_hook_func: Callable | None = None,
    generation_logits_hook_func: Callable | None = None,
    generator: torch.Generator | None = None,
) -> DreamModelOutput | torch.Tensor:
    """Sample completions of ``inputs`` (left-padded prompts) with Dream's masked-diffusion sampler.

    ``<|mask|>`` tokens inside a prompt are filled too (infilling).
    """
    mask_token_id = mask_token_id if mask_token_id is not None else getattr(model.config, "mask_token_id", None)
    if max_new_tokens is not None:
        max_length = inputs.shape[1] + max_new_tokens
    if max_length is None:
        raise ValueError("pass max_new_tokens (or max_length)")
    _check(model, inputs, attention_mask, steps, max_length, alg, mask_token_id, alg_temp, temperature)
    if num_return_sequences > 1:
        inputs = inputs.repeat_interleave(num_return_sequences, 0)
        attention_mask = None if attention_mask is None else attention_mask.repeat_interleave(num_return_sequences, 0)
    tokens_hook = generation_tokens_hook_func or (lambda step, x, logits: x)
    logits_hook = generation_logits_hook_func or (lambda step, x, logits: logits)
    device = inputs.device
    x = F.pad(inputs, (0, max_length - inputs.shape[1]), value=mask_token_id)
    attn, pos = prepare_positions(attention_mask, max_length)
    timesteps = torch.linspace(1, eps, steps + 1, device=device)
    history = [] if (output_history and return_dict_in_generate) else None
    confidence = {"maskgit_plus": "prob", "topk_margin": "margin", "entropy": "neg_entropy"}.get(alg)
    x = tokens_hook(None, x, None)
    for i in range(steps):
        mask_index = x == mask_token_id
        logits = shift_logits(model(x, attn, pos).logits)
        logits = logits_hook(i, x, logits)
        t, s = timesteps[i], timesteps[i + 1]
        if alg == "origin":
            p_transfer = 1 - s / t if i < steps - 1 else 1.0
            reveal = mask_index & (torch.rand(x.shape, device=device, generator=generator) < p_transfer)
            if reveal.any():
                _, new = sample_tokens(logits[reveal], temperature, top_p, top_k, generator=generator)
                x = x.masked_scatter(reveal, new)
        else:
            conf, x0 = sample_tokens(logits[mask_index], temperature, top_p, top_k, confidence, generator)
            num_mask = mask_index.sum() / mask_index.shape[0]
            # floor(M·(1 − s/t)) with M the mean mask count (as the reference); the last step reveals every
            # remaining mask of every row (equal to the reference when rows hold equally many masks)
            k = int(num_mask * (1 - s / t)) if i < steps - 1 else int(mask_index.sum(-1).max())
            if k > 0:
                full_conf = torch.full(x.shape, -torch.inf, device=device, dtype=logits.dtype)
                full_conf[mask_index] = conf
                if not alg_temp:
                    idx = full_conf.topk(k, dim=-1).indices
                else:
                    weights = (full_conf / alg_temp).float().softmax(-1)
                    idx = torch.multinomial(weights, k, generator=generator)
                proposal = torch.full_like(x, mask_token_id)
                proposal[mask_index] = x0
                # rows with fewer masks than k (masks in prompts) never overwrite unmasked tokens
                keep = full_conf.gather(1, idx) == -torch.inf
                x = x.scatter(1, idx, torch.where(keep, x.gather(1, idx), proposal.gather(1, idx)))
        x = tokens_hook(i, x, logits)
        if history is not None:
            history.append(x.clone())
    if return_dict_in_generate:
        return DreamModelOutput(sequences=x, history=tuple(history) if history is not None else None)
    return x
