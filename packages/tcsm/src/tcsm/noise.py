"""Discrete forward processes ``p_{t|1}(x_t | x_1)`` (factorised over positions) and their schedules.

Convention of the paper (discrete-flow-matching style): ``t ∈ [0, 1]``, ``t = 1`` is clean data and
``κ_t`` is the probability that a token is still clean (``κ_0 = 0``, ``κ_1 = 1``).
"""

from __future__ import annotations

import math

import torch

EPS = 1e-6


class Schedule:
    """``κ_t`` and ``dκ_t/dt`` for ``linear`` (``κ_t = t``) or ``cosine`` (``κ_t = 1 − cos(πt/2)``)."""

    NAMES = ("linear", "cosine")

    def __init__(self, name: str = "linear"):
        if name not in self.NAMES:
            raise ValueError(f"schedule must be one of {self.NAMES}, got {name!r}")
        self.name = name

    def kappa(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.name == "linear" else 1 - torch.cos(0.5 * math.pi * t)

    def dkappa(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t) if self.name == "linear" else 0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        """``κ'_t / (1 − κ_t)``: the continuous-time masked-diffusion NELBO weight (MDLM/MD4, in this convention)."""
        return self.dkappa(t) / (1 - self.kappa(t)).clamp_min(EPS)


class MaskedProcess:
    """Absorbing process: each token is kept with probability ``κ_t``, else replaced by ``[MASK]``."""

    name = "masked"

    def __init__(self, vocab_size: int, schedule: str | Schedule = "linear"):
        self.vocab_size = vocab_size
        self.mask_id = vocab_size
        self.schedule = schedule if isinstance(schedule, Schedule) else Schedule(schedule)

    def sample(self, x1: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        keep = torch.rand(x1.shape, device=x1.device, generator=generator) < self.schedule.kappa(t)[:, None]
        return torch.where(keep, x1, torch.full_like(x1, self.mask_id))

    def noised_positions(self, xt: torch.Tensor) -> torch.Tensor:
        """Positions whose clean value is uncertain given ``x_t`` (the masked ones)."""
        return xt == self.mask_id

    def log_likelihood_table(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``log p_{t|1}(x_t^i | x_1^i = v)`` for every ``v``: ``(B, L, V)``."""
        kappa = self.schedule.kappa(t)[:, None, None]
        masked = self.noised_positions(xt)[..., None]
        clean = torch.nn.functional.one_hot(xt.clamp_max(self.vocab_size - 1), self.vocab_size).bool()
        p = torch.where(masked, 1 - kappa, torch.where(clean, kappa, torch.zeros_like(kappa)))
        return torch.log(p.clamp_min(0.0))

    def denoiser_log_probs(self, logits: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """``log p_θ(x_1^i | x_t)`` with carry-over: an unmasked token is its own clean value (MDLM's SUBS)."""
        logp = logits.float().log_softmax(-1)
        clean = torch.nn.functional.one_hot(xt.clamp_max(self.vocab_size - 1), self.vocab_size).bool()
        carried = torch.where(clean, 0.0, -math.inf)
        return torch.where(self.noised_positions(xt)[..., None], logp, carried)

    def reverse_step(
        self,
        xt: torch.Tensor,
        logp: torch.Tensor,
        t: torch.Tensor,
        s: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral step ``t → s > t``: unmask each masked token w.p. ``(κ_s − κ_t)/(1 − κ_t)`` from ``p_θ``."""
        kt, ks = self.schedule.kappa(t), self.schedule.kappa(s)
        p_unmask = ((ks - kt) / (1 - kt).clamp_min(EPS)).clamp(0, 1)
        u = torch.rand(xt.shape, device=xt.device, generator=generator)
        draw = torch.multinomial(logp.exp().flatten(0, 1), 1, generator=generator).view_as(xt)
        unmask = self.noised_positions(xt) & (u < p_unmask[:, None])
        return torch.where(unmask, draw, xt)


class UniformProcess:
    """Uniform process: each token is kept with probability ``κ_t``, else resampled uniformly over ``V``."""

    name = "uniform"

    def __init__(self, vocab_size: int, schedule: str | Schedule = "linear"):
        self.vocab_size = vocab_size
        self.schedule = schedule if isinstance(schedule, Schedule) else Schedule(schedule)

    def sample(self, x1: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        keep = torch.rand(x1.shape, device=x1.device, generator=generator) < self.schedule.kappa(t)[:, None]
        noise = torch.randint(0, self.vocab_size, x1.shape, device=x1.device, generator=generator)
        return torch.where(keep, x1, noise)

    def noised_positions(self, xt: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(xt, dtype=torch.bool)

    def log_likelihood_table(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        kappa = self.schedule.kappa(t)[:, None, None]
        same = torch.nn.functional.one_hot(xt, self.vocab_size).bool()
        return torch.log(torch.where(same, kappa, 0.0) + (1 - kappa) / self.vocab_size)

    def denoiser_log_probs(self, logits: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        return logits.float().log_softmax(-1)

    def reverse_probs(self, xt: torch.Tensor, logp: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Per-position ``Σ_u p(u|x_t) q(x_s | x_t, x_1 = u)`` for ``t → s > t``: ``(B, L, V)``.

        With ``logp`` the log one-hot of ``x_1`` this is the true posterior ``q(x_s | x_t, x_1)``.
        """
        v = self.vocab_size
        kt, ks = self.schedule.kappa(t)[:, None, None], self.schedule.kappa(s)[:, None, None]
        same = torch.nn.functional.one_hot(xt, v).float()  # (B, L, V) indicator x_t == ·
        ratio = (kt / ks.clamp_min(EPS)).clamp(0, 1)
        q_t_given_s = ratio * same + (1 - ratio) / v  # q(x_t | x_s = ·)
        w = logp.exp() / (kt * same + (1 - kt) / v)  # p_θ(u | x_t) / q(x_t | x_1 = u)
        probs = q_t_given_s * (ks * w + (1 - ks) / v * w.sum(-1, keepdim=True))
        return probs / probs.sum(-1, keepdim=True)

    def reverse_step(
        self,
        xt: torch.Tensor,
        logp: torch.Tensor,
        t: torch.Tensor,
        s: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral step ``t → s > t`` from :meth:`reverse_probs` (exact per-position posterior)."""
        probs = self.reverse_probs(xt, logp, t, s)
        return torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view_as(xt)


def check_denoiser_process(denoiser, process: MaskedProcess | UniformProcess, name: str = "denoiser") -> None:
    """Refuse a denoiser whose config says it was trained for the other process (its logits and inputs
    mean other things: a masked model has a mask token and no time input, a uniform one the reverse)."""
    trained = getattr(getattr(denoiser, "config", None), "process", None)
    if trained is not None and trained != process.name:
        raise ValueError(
            f"{name} was trained for the {trained!r} process but a {process.name!r} process was given; use "
            f"make_process(model.config.process, ...) to build the process the model was trained with"
        )


def make_process(name: str, vocab_size: int, schedule: str = "linear") -> MaskedProcess | UniformProcess:
    if name == "masked":
        return MaskedProcess(vocab_size, schedule)
    if name == "uniform":
        return UniformProcess(vocab_size, schedule)
    raise ValueError(f"process must be 'masked' or 'uniform', got {name!r}")
