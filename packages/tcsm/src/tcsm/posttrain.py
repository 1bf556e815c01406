"""Post-training with TCSM (paper §5): reward fine-tuning, preference data, AR-teacher distillation."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tcsm.noise import MaskedProcess, check_denoiser_process
from tcsm.objective import TCSMObjective
from tcsm.targets import ARTeacherTopK, DenoiserTarget, TiltedTarget, ar_teacher_target
from tcsm.train import train


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def reward_target(
    reference: torch.nn.Module, process, reward: Callable[[torch.Tensor], torch.Tensor], beta: float
) -> TiltedTarget:
    """Target ``p_1 ∝ p_ref · exp(r/β)`` around a frozen pretrained denoiser (§5.1)."""
    return TiltedTarget(DenoiserTarget(reference, process), reward, beta)


def reward_finetune(
    model: torch.nn.Module,
    process,
    reward: Callable[[torch.Tensor], torch.Tensor],
    beta: float,
    batches: Callable[[int], torch.Tensor],
    steps: int,
    lr: float = 3e-4,
    divergence: str = "kl",
    **train_kwargs,
) -> dict[str, list[float]]:
    """Fine-tune ``model`` (in place) toward ``p_ref·e^{r/β}`` with distribution-based TCSM; ``p_ref`` = the model now.

    ``batches(step)`` supplies the proposal ``x_1`` (data, or samples of the model); any proposal
    covering the support has the tilted target as minimiser.
    """
    target = reward_target(frozen_copy(model), process, reward, beta)
    objective = TCSMObjective(process, "distribution", divergence, weighting="constant")
    return train(model, objective, batches, steps, lr=lr, target=target, **train_kwargs)


def distill(
    model: torch.nn.Module,
    teacher: torch.nn.Module,
    process,
    batches: Callable[[int], torch.Tensor],
    steps: int,
    lr: float = 1e-3,
    divergence: str = "kl",
    bos_token_id: int | None = None,
    top_k: int | None = None,
    **train_kwargs,
) -> dict[str, list[float]]:
    """Distil an autoregressive teacher ``p_AR`` into the denoiser with target ``p_1 = p_AR`` (§5.3).

    ``top_k`` restricts the neighbours to the teacher's top-``k`` tokens (large vocabularies).
    """
    target = (
        ar_teacher_target(teacher, process, bos_token_id)
        if top_k is None
        else ARTeacherTopK(teacher, process, top_k, bos_token_id)
    )
    objective = TCSMObjective(process, "distribution", divergence, weighting="constant")
    return train(model, objective, batches, steps, lr=lr, target=target, **train_kwargs)


def implicit_log_ratio(
    model, reference, process: MaskedProcess, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """``Σ_{masked i} ω(t)[log p_θ(x_1^i|x_t) − log p_ref(x_1^i|x_t)]``: one-sample estimate of ``log p_θ(x)/p_ref(x)``
    through the denoising bound (our estimator; see the README)."""
    lp = process.denoiser_log_probs(model(xt, t), xt).gather(-1, x1[..., None])[..., 0]
    with torch.no_grad():
        lr = process.denoiser_log_probs(reference(xt, t), xt).gather(-1, x1[..., None])[..., 0]
    masked = process.noised_positions(xt)
    return process.schedule.elbo_weight(t) * torch.where(masked, lp - lr, 0.0).sum(-1)


def preference_loss(
    model,
    reference,
    process: MaskedProcess,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    beta: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Bradley–Terry loss on pairs with the implicit reward ``β log p_θ/p_ref`` of the tilted target.

    The tilted target ``p_ref·e^{r/β}`` (§5.1) with a reward fitted to preferences makes
    ``r = β log p*/p_ref``; the log-ratio is estimated on shared times and masks for both sequences.
    Masked process only: the log-ratio estimate is the masked denoising bound's.
    """
    if not isinstance(process, MaskedProcess):
        raise TypeError(
            f"preference_loss needs a MaskedProcess (the implicit reward is estimated through the masked "
            f"denoising bound), got {type(process).__name__}; train the preference model with process='masked'"
        )
    check_denoiser_process(model, process, "model")
    check_denoiser_process(reference, process, "reference")
    if chosen.shape != rejected.shape:
        raise ValueError(
            f"chosen and rejected must have the same shape, got {tuple(chosen.shape)} and {tuple(rejected.shape)}"
        )
    b = chosen.shape[0]
    t = TCSMObjective(process).sample_t(b, chosen.device, generator)
    keep = torch.rand(chosen.shape, device=chosen.device, generator=generator) < process.schedule.kappa(t)[:, None]
    mask = torch.full_like(chosen, process.mask_id)
    dw = implicit_log_ratio(model, reference, process, chosen, torch.where(keep, chosen, mask), t)
    dl = implicit_log_ratio(model, reference, process, rejected, torch.where(keep, rejected, mask), t)
    return -F.logsigmoid(beta * (dw - dl)).mean()
