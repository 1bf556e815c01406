"""The TCSM objectives (paper §3–4): score-based and distribution-based, over the 1-Hamming neighbourhood.

``L(θ) = E_{ω(t) p_t(x_t)} E_{h(x_1|x_t)} Σ_i D(target_i, model_i)`` where ``target_i``/``model_i``
are either the concrete scores (ratios to the neighbours ``x_1^{i←v}``; score-based family) or the
per-position conditionals ``p(· | x_1^{\\i}, x_t)`` (distribution-based family). With no explicit
target (pre-training from data, ``h = p_{1|t}``), only divergences that are linear in the target
admit unbiased estimators from samples: generalised KL and L2 (score-based) and forward KL
(distribution-based); every divergence is available with an explicit (parametric) target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tcsm.concrete import log_concrete_score

SCORE_DIVERGENCES = ("gkl", "l2")
DISTRIBUTION_DIVERGENCES = ("kl", "rkl", "js")


def _others(x1: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``(B, L, V)`` mask of the neighbours ``v ≠ x_1^i``."""
    return ~F.one_hot(x1, vocab_size).bool()


def score_tcsm(
    model_log_cond: torch.Tensor,
    x1: torch.Tensor,
    positions: torch.Tensor,
    divergence: str = "gkl",
    target_log_cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Score-based TCSM per sequence ``(B,)``: ``Σ_{i ∈ positions} D(c_target^i(x_1), c_θ^i(x_1))``.

    ``gkl``: generalised KL ``Σ_v u log(u/w) − u + w``; ``l2``: ``Σ_v (u − w)²`` (concrete score
    matching). Without a target, ``x_1`` must be a sample of ``p_{1|t}(·|x_t)`` and the unbiased
    data estimators are used (obtained by swapping ``x_1 ↔ x_1^{i←v}`` in the target-linear term):
    ``gkl → Σ_v r_v + log r_v`` and ``l2 → Σ_v r_v² − 2/r_v`` with ``r_v = w`` the model ratio;
    they equal the divergence in expectation up to a θ-independent constant.
    """
    if divergence not in SCORE_DIVERGENCES:
        raise ValueError(f"score-based divergence must be one of {SCORE_DIVERGENCES}, got {divergence!r}")
    vocab = model_log_cond.shape[-1]
    others = _others(x1, vocab) & positions[..., None]
    log_w = torch.where(others, log_concrete_score(model_log_cond, x1), 0.0)  # finite off-support: no NaN grads
    if target_log_cond is None:
        if divergence == "gkl":
            terms = log_w.exp() + log_w
        else:
            terms = (2 * log_w).exp() - 2 * (-log_w).exp()
    else:
        log_u = torch.where(others, log_concrete_score(target_log_cond, x1), 0.0)
        u, w = log_u.exp(), log_w.exp()
        if divergence == "gkl":
            terms = u * torch.where(u > 0, log_u - log_w, 0.0) - u + w
        else:
            terms = (u - w) ** 2
    return torch.where(others, terms, 0.0).sum((-1, -2))


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    support = log_p > -math.inf
    return (log_p.exp() * torch.where(support, log_p - log_q, 0.0)).sum(-1)


def distribution_tcsm(
    model_log_cond: torch.Tensor,
    x1: torch.Tensor,
    positions: torch.Tensor,
    divergence: str = "kl",
    target_log_cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Distribution-based TCSM per sequence ``(B,)``:
    ``Σ_{i ∈ positions} D(p_{1|t}(·|x_1^{\\i},x_t), p_θ(·|x_1^{\\i},x_t))``.

    Without a target only the forward KL is estimable; its estimator is ``−log p_θ(x_1^i | x_1^{\\i}, x_t)``
    (a pseudo-likelihood; for a factorised denoiser exactly the masked-diffusion cross-entropy).
    """
    if divergence not in DISTRIBUTION_DIVERGENCES:
        raise ValueError(f"distribution-based divergence must be one of {DISTRIBUTION_DIVERGENCES}, got {divergence!r}")
    off = ~positions[..., None]  # finite placeholders off the noised positions keep gradients NaN-free
    model_log_cond = model_log_cond.masked_fill(off, 0.0)
    if target_log_cond is None:
        if divergence != "kl":
            raise ValueError(
                f"divergence {divergence!r} needs the target's conditionals: pass a target "
                "(pre-training from data samples supports only 'kl')"
            )
        return torch.where(positions, -model_log_cond.gather(-1, x1[..., None])[..., 0], 0.0).sum(-1)
    target_log_cond = target_log_cond.masked_fill(off, 0.0)
    if divergence == "kl":
        per_pos = _kl(target_log_cond, model_log_cond)
    elif divergence == "rkl":
        per_pos = _kl(model_log_cond, target_log_cond)
    else:
        log_m = torch.logsumexp(torch.stack([target_log_cond, model_log_cond]), 0) - math.log(2)
        per_pos = 0.5 * (_kl(target_log_cond, log_m) + _kl(model_log_cond, log_m))
    return torch.where(positions, per_pos, 0.0).sum(-1)


def masked_diffusion_ce(
    logits: torch.Tensor, x1: torch.Tensor, xt: torch.Tensor, mask_id: int, weight: torch.Tensor
) -> torch.Tensor:
    """Reference MDLM/MD4 loss per sequence: ``w(t) Σ_{i: x_t^i = [M]} −log p_θ(x_1^i | x_t)``."""
    ce = F.cross_entropy(logits.flatten(0, 1).float(), x1.flatten(), reduction="none").view_as(x1)
    return weight * (ce * (xt == mask_id)).sum(-1)
