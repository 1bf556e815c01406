"""Coupled-GRPO (paper §4): GRPO for masked diffusion LMs with complementary-mask log-likelihood estimates.

The token log-likelihood of a completion is not available in closed form for a diffusion LM. Coupled-GRPO
estimates it from three forward passes run as one batch: the completion fully masked, masked with ``m``
(each completion token masked with probability ``t ~ U[0.2, 0.8]``) and masked with the complement ``¬m``.
Every completion token is thus masked in exactly one of the pair, and its estimate is

    log π(o_i) ≈ ½ [ log p(o_i | all masked) + 1{i ∈ m} log p(o_i | x_m) / t + 1{i ∉ m} log p(o_i | x_¬m) / (1 − t) ]

(the reference ``selective_log_softmax`` weighting). Masks are drawn from a seed fixed per GRPO iteration
(official: by row position, :func:`official_masks`; our clean variant: by row content), so old, reference
and current log-probs use the same masks. Advantages are leave-one-out,
``r_i − mean_{j≠i} r_j = G/(G−1) (r_i − mean r)``, and the loss is the clipped PPO surrogate plus
``β`` times the k3 KL estimator, averaged over completion tokens (reference ``compute_loss``).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from diffucoder.generation import diffusion_generate, left_pad, prepare_positions
from diffucoder.recipes import RECIPES
from diffucoder.tokenizer import IM_END
from labcore.extras import require


def _row_keys(input_ids: torch.Tensor) -> list[int]:
    """A content hash per row, so a sequence gets the same masks wherever it sits in a (shuffled) batch."""
    weights = torch.randint(1, 2**31 - 1, (input_ids.shape[1],), generator=torch.Generator().manual_seed(0))
    return ((input_ids.cpu().long() + 1) * weights).sum(-1).remainder(2**61 - 1).tolist()


def _check_t_range(t_range: tuple[float, float]) -> None:
    lo, hi = t_range
    if not 0 < lo <= hi < 1:
        raise ValueError(f"t_range must satisfy 0 < lo <= hi < 1, got {t_range}")


def official_masks(
    shape: tuple[int, int],
    logits_to_keep: int,
    seed: int,
    micro_batch: int | None = None,
    t_range: tuple[float, float] = (0.2, 0.8),
) -> tuple[torch.Tensor, float]:
    """The mask ``m`` (B, K) and ``t`` as the official trainer draws them (``forward_process``, CPU stream).

    apple/ml-diffucoder seeds every generator with ``seed``, draws ``t = random.uniform(0.2, 0.8)`` (Python's
    stream) and one uniform matrix over the whole row width for ``micro_batch`` rows, repeated over the
    gradient-accumulation chunks; ``m = u < t`` on the completion columns. Masks therefore depend on a row's
    position within its micro-batch, not on its content (row ``r`` uses row ``r mod micro_batch``).
    """
    b, n = shape
    if not 0 < logits_to_keep < n:
        raise ValueError(f"logits_to_keep must be in (0, {n}), got {logits_to_keep}")
    _check_t_range(t_range)
    micro_batch = b if micro_batch is None else micro_batch
    t = random.Random(int(seed)).uniform(*t_range)
    u = torch.rand((micro_batch, n), generator=torch.Generator().manual_seed(int(seed)))
    return u[torch.arange(b) % micro_batch, n - logits_to_keep :] < t, t


def content_masks(
    input_ids: torch.Tensor, logits_to_keep: int, seed: int, t_range: tuple[float, float] = (0.2, 0.8)
) -> tuple[torch.Tensor, float]:
    """Our "clean" variant: ``t`` from the seed, each row's mask from the seed and the row's *content*, so
    old/reference/current passes agree even after TRL shuffles the batch."""
    n = input_ids.shape[1]
    if not 0 < logits_to_keep < n:
        raise ValueError(f"logits_to_keep must be in (0, {n}), got {logits_to_keep}")
    _check_t_range(t_range)
    lo, hi = t_range
    t = lo + (hi - lo) * torch.rand((), generator=torch.Generator().manual_seed(int(seed))).item()
    gens = (torch.Generator().manual_seed(int(seed) * 7919 + key) for key in _row_keys(input_ids))
    u = torch.stack([torch.rand(logits_to_keep, generator=g) for g in gens])
    return u < t, t


def noisy_copies(input_ids: torch.Tensor, m: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """``(3, B, N)``: completion (last ``m.shape[1]`` tokens) fully masked, masked where ``m``, where ``¬m``."""
    b, n = input_ids.shape
    m = m.to(input_ids.device)
    prompt = torch.zeros(b, n - m.shape[1], dtype=torch.bool, device=input_ids.device)
    full = torch.cat([prompt, torch.ones_like(m)], 1)
    first, second = torch.cat([prompt, m], 1), torch.cat([prompt, ~m], 1)  # each token masked in exactly one
    return torch.stack([input_ids.masked_fill(mask, mask_token_id) for mask in (full, first, second)])


def coupled_noisy_inputs(
    input_ids: torch.Tensor,
    logits_to_keep: int,
    seed: int,
    mask_token_id: int,
    t_range: tuple[float, float] = (0.2, 0.8),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clean variant's three noisy copies ``(3, B, N)``, its mask ``m`` and ``t`` (see :func:`content_masks`)."""
    m, t = content_masks(input_ids, logits_to_keep, seed, t_range)
    return noisy_copies(input_ids, m, mask_token_id), m.to(input_ids.device), torch.tensor(t)


def coupled_logps_given_masks(
    model,
    input_ids: torch.Tensor,
    logits_to_keep: int,
    masks: torch.Tensor,
    t,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Coupled estimates of ``log π(o_i)`` for the last ``logits_to_keep`` tokens given the masks (stable API).

    ``input_ids`` (B, N) prompt + completion; ``masks`` (S, B, K) bool, ``m`` of each of S pairs; ``t`` (S,)
    their mask ratios. ``attention_mask=None`` attends to every token, pads included, with positions
    ``0 … N−1`` (the official trainer); a (B, N) left-padding mask hides pads and numbers positions from the
    first token. Returns (B, S, K); all ``3·S·B`` passes run as one forward.
    """
    b, n = input_ids.shape
    k = logits_to_keep
    if masks.dim() != 3 or masks.shape[1:] != (b, k):
        raise ValueError(
            f"masks must be (S, {b}, {k}) for input_ids {tuple(input_ids.shape)}, got {tuple(masks.shape)}"
        )
    t = torch.as_tensor(t, dtype=torch.float32, device=input_ids.device).reshape(-1)
    s = masks.shape[0]
    if t.numel() != s or not bool(((t > 0) & (t < 1)).all()):
        raise ValueError(f"t must hold {s} mask ratios in (0, 1), got {t.tolist()}")
    masks = masks.to(input_ids.device)
    batch = torch.cat([noisy_copies(input_ids, m, mask_token_id).reshape(3 * b, n) for m in masks])
    attn, pos = prepare_positions(attention_mask, n)
    if attn is not None:
        attn, pos = attn.repeat(3 * s, 1), pos.repeat(3 * s, 1)
    logits = model(batch, attn, pos).logits[:, n - k - 1 : n - 1].float()  # shifted: row i−1 predicts token i
    targets = input_ids[:, n - k :].repeat(3 * s, 1)
    logp = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").view(s, 3, b, k)
    t = t.view(s, 1, 1)
    estimate = (logp[:, 0] + torch.where(masks, logp[:, 1] / t, logp[:, 2] / (1 - t))) / 2
    return estimate.permute(1, 0, 2)


def coupled_per_token_logps(
    model,
    input_ids: torch.Tensor,
    logits_to_keep: int,
    seeds: list[int],
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    t_range: tuple[float, float] = (0.2, 0.8),
    recipe: str = "official",
    micro_batch: int | None = None,
) -> torch.Tensor:
    """Coupled estimates with one mask pair per seed: (B, len(seeds), logits_to_keep).

    ``recipe="official"``: masks by row position as :func:`official_masks` (``micro_batch`` rows per draw,
    default all); ``"clean"``: masks by row content as :func:`content_masks`.
    """
    if recipe == "official":
        drawn = [official_masks(tuple(input_ids.shape), logits_to_keep, s, micro_batch, t_range) for s in seeds]
    elif recipe == "clean":
        drawn = [content_masks(input_ids, logits_to_keep, s, t_range) for s in seeds]
    else:
        raise ValueError(f"recipe must be 'official' or 'clean', got {recipe!r}")
    masks = torch.stack([m for m, _ in drawn])
    return coupled_logps_given_masks(
        model, input_ids, logits_to_keep, masks, [t for _, t in drawn], mask_token_id, attention_mask
    )


def completion_mask_to_stop(tokens: torch.Tensor, stop_id: int) -> torch.Tensor:
    """1 up to and including the first ``stop_id`` of each row (whole row if none), as the official trainer."""
    is_stop = tokens == stop_id
    last = torch.where(is_stop.any(1), is_stop.int().argmax(1), tokens.shape[1] - 1)
    return (torch.arange(tokens.shape[1], device=tokens.device) <= last[:, None]).int()


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
    GRPOTrainer = require("trl", extra="rl", package="diffucoder").GRPOTrainer
    split_tensor_dict = require("trl.trainer.utils", extra="rl", package="diffucoder").split_tensor_dict

    class CoupledGRPOTrainer(GRPOTrainer):
        """TRL ``GRPOTrainer`` with diffusion rollouts and the coupled log-likelihood estimator.

        ``recipe="official"`` reproduces apple/ml-diffucoder's ``DiffuGRPOTrainer`` point by point:

        * masks by row position (:func:`official_masks`, ``per_device_train_batch_size`` rows per draw), the
          generation batch is not shuffled before it is split into accumulation chunks, and the loss of
          each micro-batch uses mask seed ``_step % num_iterations`` read *after* the official trainer
          increments ``_step`` (TRL increments it after the loss, hence ``(_step + 1) % num_iterations``):
          with the recipe's accumulation 2 and 2 iterations each micro-batch sees the same mask twice;
        * likelihood passes attend to every token, pads included, with positions ``0 … N−1``;
        * completions keep the whole generated tail as context; the loss covers tokens up to and including
          the first ``<|im_end|>``.

        ``recipe="clean"`` is our variant: masks keyed on row content (robust to TRL's shuffle), mask seed
        ``(_step // steps_per_generation) % num_iterations``, pads hidden from attention, completions cut
        after the first end-of-sequence or ``<|im_end|>`` and re-padded by TRL.

        Both: fresh mask seeds per generation batch when ``random_masking`` (else 42 for every iteration),
        leave-one-out advantages (TRL's group-centred advantage × ``G/(G−1)``; use ``scale_rewards="none"``),
        clipped surrogate + ``β``·k3 KL. Reference-model sync is TRL's (``sync_ref_model``). Defaults of the
        keyword arguments are the official recipe's (``recipes/config_coupled_code.yaml``).
        """

        def __init__(
            self,
            *args,
            recipe: str = "official",
            diffusion_steps: int = 256,
            generation_temperature: float = 1.0,
            alg: str = "entropy",
            random_masking: bool = True,
            t_range=(0.2, 0.8),
            **kwargs,
        ):
            if recipe not in RECIPES:
                raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
            super().__init__(*args, **kwargs)
            self.recipe = recipe
            self.diffusion_steps, self.generation_temperature, self.alg = diffusion_steps, generation_temperature, alg
            self.random_masking, self.t_range = random_masking, t_range
            self._mask_seeds = [42] * self.num_iterations
            tok = self.processing_class
            self.mask_token_id = self.model.config.mask_token_id if tok.mask_token_id is None else tok.mask_token_id
            vocab = tok.get_vocab()
            self.im_end_id = vocab.get(IM_END)

        def _prepare_inputs(self, generation_batch):
            if self.recipe == "clean" or not self.model.training:
                return super()._prepare_inputs(generation_batch)
            # official: buffer the generation batch and split it in order (TRL shuffles first)
            if self._step % (self.args.steps_per_generation * self.num_iterations) == 0 or not self._buffered_inputs:
                batch = self._generate_and_score_completions(generation_batch)
                self._buffered_inputs = split_tensor_dict(batch, self.args.steps_per_generation)
            return self._buffered_inputs[self._step % self.args.steps_per_generation]

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
            if self.recipe == "official":  # the whole generated tail; the loss mask is set after scoring
                return out.tolist(), None
            stops = set(self.eos_token_ids) | ({self.im_end_id} if self.im_end_id is not None else set())
            return cut_at_stop(out, stops), None

        def _generate_and_score_completions(self, inputs):
            if self.model.training and self.random_masking:
                self._mask_seeds = torch.randint(0, 2**12, (self.num_iterations,)).tolist()
            output = super()._generate_and_score_completions(inputs)
            if self.recipe == "official":
                stop = self.im_end_id if self.im_end_id is not None else self.eos_token_ids[0]
                output["completion_mask"] = completion_mask_to_stop(output["completion_ids"], stop)
            g = self.num_generations if self.model.training else self.num_generations_eval
            if g > 1:  # leave-one-out baseline: r − mean_{j≠i} r_j = G/(G−1)(r − mean r)
                output["advantages"] = output["advantages"] * g / (g - 1)
            return output

        def _coupled_logps(self, model, input_ids, attention_mask, logits_to_keep, seeds):
            if self.recipe == "official":
                micro = self.args.per_device_train_batch_size
                return coupled_per_token_logps(
                    model, input_ids, logits_to_keep, seeds, self.mask_token_id, None, self.t_range, "official", micro
                )
            prompt_mask = attention_mask.clone()
            prompt_mask[:, input_ids.shape[1] - logits_to_keep :] = 1  # completions attended in full
            return coupled_per_token_logps(
                model, input_ids, logits_to_keep, seeds, self.mask_token_id, prompt_mask, self.t_range, "clean"
            )

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *a, **kw):
            """Old/reference log-probs: one coupled estimate per GRPO iteration's mask seed."""
            return self._coupled_logps(model, input_ids, attention_mask, logits_to_keep, self._mask_seeds), None, None

        def iteration_index(self) -> int:
            """Which of the generation batch's mask seeds the current micro-batch's loss uses."""
            if self.recipe == "official":  # the official trainer reads _step after incrementing it
                return (self._step + 1) % self.num_iterations
            return (self._step // self.args.steps_per_generation) % self.num_iterations

        def _compute_loss(self, model, inputs):
            input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            k = inputs["completion_ids"].shape[1]
            it = self.iteration_index()
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
