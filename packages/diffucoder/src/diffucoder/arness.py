"""Autoregressive-ness of a decoding order (paper §3, appendix on AR-ness).

A decoding order of a completion of ``T`` tokens is a permutation ``p_1 … p_T`` of its positions (``p_n`` is
the position revealed at step ``n``); the prompt counts as already decoded, left to right.

* **local AR-ness@k**: fraction of steps ``n`` whose last ``k`` reveals ``p_{n−k+1} … p_n`` each continue the
  previously revealed token (``p_m = p_{m−1} + 1``), a next-token streak of length ``k``;
* **global AR-ness@k**: fraction of steps whose revealed position is among the ``k`` left-most positions
  still masked.

Left-to-right decoding scores 1 on both. The paper's appendix text was not available to us: these are our
reading of its definitions (checked on L2R = 1, R2L: local 0, global@1 = 1/T).
When a sampler reveals several tokens in one step they are ordered left to right within the step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def order_from_history(history: Sequence[torch.Tensor], prompt_len: int, mask_token_id: int) -> torch.Tensor:
    """``(batch, T)`` decoding order from the sampler's per-step history (``output_history=True``)."""
    if not history:
        raise ValueError(
            "empty history: call diffusion_generate(..., output_history=True, return_dict_in_generate=True)"
        )
    steps = torch.stack([h[:, prompt_len:] != mask_token_id for h in history])  # (S, B, T)
    if not bool(steps[-1].all()):
        raise ValueError("the history ends with masked tokens; generation did not finish")
    first = steps.int().argmax(0)  # step at which each position was revealed
    t = first.shape[1]
    key = first * t + torch.arange(t, device=first.device)  # by step, then left to right
    return key.argsort(-1)


def _check_order(order: torch.Tensor, k: int) -> torch.Tensor:
    order = torch.as_tensor(order)
    if order.dim() == 1:
        order = order[None]
    t = order.shape[1]
    if not bool((order.sort(-1).values == torch.arange(t, device=order.device)).all()):
        raise ValueError("order must be a permutation of 0..T-1 per row")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return order


def local_arness(order: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Local AR-ness@k per sequence (fraction of steps ending a next-token streak of length ``k``)."""
    order = _check_order(order, k)
    b, _ = order.shape
    prompt = torch.arange(-k, 0, device=order.device).expand(b, k)  # prompt tokens, decoded left to right
    ext = torch.cat([prompt, order], dim=1)
    follows = (ext[:, 1:] - ext[:, :-1]) == 1  # follows[:, j]: ext[j+1] continues ext[j]
    streak = follows.unfold(1, k, 1).all(-1)  # window of k consecutive continuations
    return streak[:, -order.shape[1] :].float().mean(-1)


def global_arness(order: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Global AR-ness@k per sequence (fraction of steps revealing one of the ``k`` left-most masked positions)."""
    order = _check_order(order, k)
    t = order.shape[1]
    later = torch.triu(torch.ones(t, t, dtype=torch.bool, device=order.device), diagonal=1)  # m > n
    left_of = order[:, None, :] < order[:, :, None]  # [b, n, m]: p_m < p_n
    rank = (left_of & later).sum(-1)  # still-masked positions left of p_n
    return (rank < k).float().mean(-1)


@torch.no_grad()
def arness_vs_temperature(
    model,
    input_ids: torch.Tensor,
    temperatures: Sequence[float],
    max_new_tokens: int,
    alg: str = "entropy",
    k: int = 1,
    attention_mask: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[float, tuple[float, float]]:
    """Mean (local, global) AR-ness@k of one-token-per-step decoding at each sampling temperature (paper §3).

    ``<|mask|>`` is excluded as a sampled value so every run finishes.
    """
    from diffucoder.generation import diffusion_generate

    mask_id = model.config.mask_token_id

    def no_mask(step, x, logits):
        return logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), -torch.inf)

    results = {}
    for temp in temperatures:
        out = diffusion_generate(
            model,
            input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            steps=max_new_tokens,
            temperature=temp,
            alg=alg,
            output_history=True,
            return_dict_in_generate=True,
            generator=torch.Generator(input_ids.device).manual_seed(seed),
            generation_logits_hook_func=no_mask,
        )
        order = order_from_history(out.history, input_ids.shape[1], mask_id)
        results[float(temp)] = (local_arness(order, k).mean().item(), global_arness(order, k).mean().item())
    return results
