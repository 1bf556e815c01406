"""The full TCSM training objective: time sampling, forward noising, weighting and parameterisation."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from tcsm.concrete import log_conditionals_from_joint
from tcsm.losses import DISTRIBUTION_DIVERGENCES, SCORE_DIVERGENCES, distribution_tcsm, score_tcsm
from tcsm.noise import MaskedProcess, UniformProcess

LogCond = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def factorised(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], process: MaskedProcess | UniformProcess
) -> LogCond:
    """Factorised parameterisation ``p_θ(x_1|x_t) = ∏_i p_θ(x_1^i|x_t)``: conditionals ignore ``x_1^{\\i}``.
    (Parameterisations are partials, not closures, so a training module pickles for Lightning's spawn strategies.)"""
    return partial(_factorised, denoiser, process)


def _factorised(denoiser, process, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return process.denoiser_log_probs(denoiser(xt, t), xt)


def joint(log_joint: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], vocab_size: int) -> LogCond:
    """Joint parameterisation from an unnormalised ``log p_θ(x_1 | x_t) → (N,)`` (``L·V`` evaluations per sequence)."""
    return partial(log_conditionals_from_joint, log_joint, vocab_size=vocab_size)


class TCSMObjective:
    """``L(θ) = E_t ω(t) E_{x_t, x_1} Σ_i D(target_i, model_i)`` (paper Eq. for score- and distribution-based TCSM).

    ``family``: ``"score"`` (divergences ``gkl``, ``l2``) or ``"distribution"`` (``kl``, ``rkl``, ``js``).
    ``weighting``: ``"elbo"`` (``ω = κ'_t/(1−κ_t)``; with forward KL and a factorised denoiser the loss is
    the masked-diffusion NELBO) or ``"constant"``.
    """

    def __init__(
        self,
        process: MaskedProcess | UniformProcess,
        family: str = "distribution",
        divergence: str | None = None,
        weighting: str = "elbo",
        t_max: float = 0.999,
    ):
        valid = {"score": SCORE_DIVERGENCES, "distribution": DISTRIBUTION_DIVERGENCES}
        if family not in valid:
            raise ValueError(f"family must be 'score' or 'distribution', got {family!r}")
        divergence = divergence or valid[family][0]
        if divergence not in valid[family]:
            raise ValueError(f"{family}-based TCSM supports divergences {valid[family]}, got {divergence!r}")
        if weighting not in ("elbo", "constant"):
            raise ValueError(f"weighting must be 'elbo' or 'constant', got {weighting!r}")
        self.process, self.family, self.divergence = process, family, divergence
        self.weighting, self.t_max = weighting, t_max

    def sample_t(
        self, batch: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Low-discrepancy ``t ∈ [0, t_max)`` (one uniform offset, evenly spaced over the batch)."""
        u = torch.rand(1, device=device, generator=generator)
        return ((u + torch.arange(batch, device=device) / batch) % 1.0) * self.t_max

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        return self.process.schedule.elbo_weight(t) if self.weighting == "elbo" else torch.ones_like(t)

    def per_sequence(
        self, model: LogCond, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, target=None
    ) -> torch.Tensor:
        """``ω(t) Σ_i D(...)`` per sequence ``(B,)`` on given ``(x_1, x_t, t)``; ``target=None`` means data."""
        if int(x1.min()) < 0 or int(x1.max()) >= self.process.vocab_size:
            raise ValueError(
                f"clean token ids must lie in 0..{self.process.vocab_size - 1}; got values in "
                f"[{int(x1.min())}, {int(x1.max())}]"
            )
        positions = self.process.noised_positions(xt)
        target_lc = None if target is None else target.log_conditionals(x1, xt, t)
        loss_fn = score_tcsm if self.family == "score" else distribution_tcsm
        return self.weight(t) * loss_fn(model(x1, xt, t), x1, positions, self.divergence, target_lc)

    def __call__(
        self, model: LogCond, x1: torch.Tensor, target=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Batch-mean loss: draws ``t`` and ``x_t ~ p_{t|1}(·|x_1)``; ``x_1`` is the proposal sample."""
        t = self.sample_t(x1.shape[0], x1.device, generator)
        xt = self.process.sample(x1, t, generator)
        return self.per_sequence(model, x1, xt, t, target).mean()
