"""Coupled-GRPO (paper §4): GRPO for masked diffusion LMs with complementary-mask log-likelihood estimates.

The token log-likelihood of a completion is not available in closed form for a diffusion LM. Coupled-GRPO
estimates it from three forward passes run as one batch: the completion fully masked, masked with ``m``
(each completion token masked with probability ``t ~ U[0.2, 0.8]``) and masked with the complement ``¬m``.
Every completion token is thus masked in exactly one of the pair, and its estimate is

    log π(o_i) ≈ ½ [ log p(o_i | all masked) + 1{i ∈ m} log p(o_i | x_m) / t + 1{i ∉ m} log p(o_i | x_¬m) / (1 − t) ]

(the reference ``selective_log_softmax`` weighting). Masks are drawn from a seed fixed per GRPO iteration
(and from each row's content), so old, reference and current log-probs use the same masks. Advantages are leave-one-out,
``r_i − mean_{j≠i} r_j = G/(G−1) (r_i − mean r)``, and the loss is the clipped PPO surrogate plus
``β`` times the k3 KL estimator, averaged over completion tokens (reference ``compute_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffucoder.generation import diffusion_generate, left_pad, prepare_positions
from diffucoder.tokenizer import IM_END


def _row_keys(input_ids: torch.Tensor) -> list[int]:
    """A content hash per row, so a sequence gets the same masks wherever it sits in a (shuffled) batch."""
    weights = torch.randint(1, 2**31 - 1, (input_ids.shape[1],), generator=torch.Generator().manual_seed(0))
    return ((input_ids.cpu().long() + 1) * weights).sum(-1).remainder(2**61 - 1).tolist()


def coupled_noisy_inputs(
    input_ids: torch.Tensor,
    logits_to_keep: int,
    seed: int,
    mask_token_id: int,
    t_range: tuple[float, float] = (0.2, 0.8),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three noisy copies ``(3, B, N)`` (completion fully masked, masked by ``m``, by ``¬m``), ``m`` and ``t``.

    ``t ~ U[t_range]`` is shared by the batch (one per seed, as in the reference); each row's mask is drawn
    from the seed and the row's content, so old/reference/current passes agree even after TRL shuffles.
    """
    b, n = input_ids.shape
    k = logits_to_keep
    if not 0 < k < n:
        raise ValueError(f"logits_to_keep must be in (0, {n}), got {k}")
    lo, hi = t_range
    if not 0 < lo <= hi < 1:
        raise ValueError(f"t_range must satisfy 0 < lo <= hi < 1, got {t_range}")
    t = lo + (hi - lo) * torch.rand((), generator=torch.Generator().manual_seed(int(seed)))
    u = torch.stack(
        [torch.rand(k, generator=torch.Generator().manual_seed(int(seed) * 7919 + key)) for key in _row_keys(input_ids)]
    )
    m = (u < t).to(input_ids.device)
    completion = torch.zeros(b, n, dtype=torch.bool, device=input_ids.device)
    completion[:, n - k :] = True
    pad = torch.zeros(b, n - k, dtype=torch.bool, device=input_ids.device)
    first, second = torch.cat([pad, m], 1), torch.cat([pad, ~m], 1)  # complementary: each token in exactly one
    noisy = torch.stack([input_ids.masked_fill(mask, mask_token_id) for mask in (completion, first, second)])
    return noisy, m, t.to(input_ids.device)


def coupled_per_token_logps(
    model,
    input_ids: torch.Tensor,
    logits_to_keep: int,
    seeds: list[int],
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    t_range: tuple[float, float] = (0.2, 0.8),
) -> torch.Tensor:
    """Coupled estimates of ``log π(o_i)`` for the last ``logits_to_keep`` tokens, one mask pair per seed.

    ``input_ids``: (B, N) prompt + completion; ``attention_mask``: optional left-padding mask (B, N).
    Returns (B, len(seeds), logits_to_keep); all ``3·len(seeds)·B`` passes run as one forward.
    """
    b, n = input_ids.shape
    k, s = logits_to_keep, len(seeds)
    parts = [coupled_noisy_inputs(input_ids, k, seed, mask_token_id, t_range) for seed in seeds]
    batch = torch.cat([noisy.reshape(3 * b, n) for noisy, _, _ in parts])  # seed-major, then pass, then row
    attn, pos = prepare_positions(attention_mask, n)
    if attn is not None:
        attn, pos = attn.repeat(3 * s, 1), pos.repeat(3 * s, 1)
    logits = model(batch, attn, pos).logits[:, n - k - 1 : n - 1].float()  # shifted: row i−1 predicts token i
    targets = input_ids[:, n - k :].repeat(3 * s, 1)
    logp = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").view(s, 3, b, k)
    t = torch.stack([t for _, _, t in parts]).view(s, 1, 1)
    m = torch.stack([m for _, m, _ in parts])  # (S, B, K)
    estimate = (logp[:, 0] + torch.where(m, logp[:, 1] / t, logp[:, 2] / (1 - t))) / 2
    return estimate.permute(1, 0, 2)


def cut_at_stop(tokens: torch.Tensor, stop_ids) -> list[list[int]]:
    """Rows of ``tokens`` (B, L) up to and including their first stop token (whole row if none)."""
    is_stop = torch.isin(tokens, torch.tensor(sorted(stop_ids), dtype=tokens.dtype, device=tokens.device))
    lengths = torch.where(is_stop.any(1), is_stop.int().argmax(1) + 1, tokens.shape[1])
    return [row[:n] for row, n in zip(tokens.tolist(), lengths.tolist())]


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``r_i − mean_{j≠i} r_j`` within consecutive groups of ``group_size`` completions of the same prompt."""
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"need group_size >= 2 dividing {rewards.numel()} rewards, got {group_size}")
    g = rewards.view(-1, group_size)
    return (g - (g.sum(1, keepdim=True) - g) / (group_size - 1)).view(-1)


def coupled_grpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    ref_per_token_logps: torch.Tensor | None = None,
    beta: float = 0.01,
    epsilon_low: float = 0.5,
    epsilon_high: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate + ``β``·k3 KL, averaged over completion tokens of the batch (all (B, L))."""
    ratio = torch.exp(per_token_logps - old_per_token_logps)
    clipped = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    adv = advantages[:, None]
    per_token = -torch.min(ratio * adv, clipped * adv)
    stats = {}
    mask = completion_mask.float()
    denom = mask.sum().clamp(min=1.0)
    if beta != 0.0:
        if ref_per_token_logps is None:
            raise ValueError("beta != 0 needs ref_per_token_logps")
        delta = ref_per_token_logps - per_token_logps
        kl = torch.exp(delta) - delta - 1  # k3 estimator of KL(π‖π_ref)
        per_token = per_token + beta * kl
        stats["kl"] = float((kl.detach() * mask).sum() / denom)
    clipped_region = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    stats["clip_ratio"] = float((clipped_region * mask).sum() / denom)
    return (per_token * mask).sum() / denom, stats


def _make_trainer_class():
    from trl import GRPOTrainer

    class CoupledGRPOTrainer(GRPOTrainer):
        """TRL ``GRPOTrainer`` with diffusion rollouts and the coupled log-likelihood estimator.

        Extra keyword arguments: ``diffusion_steps``, ``generation_temperature``, ``alg`` (default "entropy"),
        ``random_masking`` (fresh mask seeds per generation batch; else 42 for every iteration, as in the
        reference) and ``t_range``. Use ``scale_rewards="none"`` for the paper's plain leave-one-out advantage.
        """

        def __init__(
            self,
            *args,
            diffusion_steps: int = 128,
            generation_temperature: float = 1.2,
            alg: str = "entropy",
            random_masking: bool = True,
            t_range=(0.2, 0.8),
            **kwargs,
        ):
            super().__init__(*args, **kwargs)
            self.diffusion_steps, self.generation_temperature, self.alg = diffusion_steps, generation_temperature, alg
            self.random_masking, self.t_range = random_masking, t_range
            self._mask_seeds = [42] * self.num_iterations
            tok = self.processing_class
            self.mask_token_id = self.model.config.mask_token_id if tok.mask_token_id is None else tok.mask_token_id

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs):
            pad = self.processing_class.pad_token_id
            ids, mask = left_pad(prompt_ids, pad, device=self.accelerator.device)
            width = ids.shape[1]
            model = self.accelerator.unwrap_model(self.model)
            temperature = self.generation_temperature
            out = diffusion_generate(
                model,
                ids,
                attention_mask=mask,
                max_new_tokens=self.max_completion_length,
                steps=self.diffusion_steps,
                temperature=temperature,
                top_p=0.95 if temperature > 0 else None,
                alg=self.alg,
                alg_temp=0.0,
                mask_token_id=self.mask_token_id,
            )[:, width:]
            stops = set(self.eos_token_ids)  # and <|im_end|>, where the reference cuts instruct completions
            vocab = self.processing_class.get_vocab()
            stops |= {vocab[IM_END]} if IM_END in vocab else set()
            return cut_at_stop(out, stops), None

        def _generate_and_score_completions(self, inputs):
            if self.model.training and self.random_masking:
                self._mask_seeds = torch.randint(0, 2**12, (self.num_iterations,)).tolist()
            output = super()._generate_and_score_completions(inputs)
            g = self.num_generations if self.model.training else self.num_generations_eval
            if g > 1:  # leave-one-out baseline: r − mean_{j≠i} r_j = G/(G−1)(r − mean r)
                output["advantages"] = output["advantages"] * g / (g - 1)
            return output

        def _coupled_logps(self, model, input_ids, attention_mask, logits_to_keep, seeds):
            prompt_mask = attention_mask.clone()
            prompt_mask[:, input_ids.shape[1] - logits_to_keep :] = 1  # completions attended in full, as the reference
            return coupled_per_token_logps(
                model, input_ids, logits_to_keep, seeds, self.mask_token_id, prompt_mask, self.t_range
            )

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, **kwargs):
            """Old/reference log-probs: one coupled estimate per GRPO iteration's mask seed."""
            return self._coupled_logps(model, input_ids, attention_mask, logits_to_keep, self._mask_seeds), None, None

        def _compute_loss(self, model, inputs):
            input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            k = inputs["completion_ids"].shape[1]
            it = (self._step // self.args.steps_per_generation) % self.num_iterations
            logps = self._coupled_logps(model, input_ids, attention_mask, k, [self._mask_seeds[it]])[:, 0]
            old = inputs.get("old_per_token_logps")
            old = logps.detach() if old is None else old[:, it]
            ref = inputs.get("ref_per_token_logps")
            ref = None if ref is None else ref[:, it]
            loss, stats = coupled_grpo_loss(
                logps,
                old,
                inputs["advantages"],
                inputs["completion_mask"],
                ref,
                self.beta,
                self.epsilon_low,
                self.epsilon_high,
            )
            mode = "train" if self.model.training else "eval"
            for name, value in stats.items():
                self._metrics[mode][f"coupled/{name}"].append(value)
            return loss

    return CoupledGRPOTrainer


def __getattr__(name: str):
    if name == "CoupledGRPOTrainer":  # imported lazily: TRL is heavy
        cls = _make_trainer_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
