"""Feynman–Kac models of the reverse diffusion and their sequential Monte Carlo samplers.

Targets along the noise schedule σ_0 > … > σ_K are γ_k(x) = exp(−Σ_i β_i E_i(x, σ_k) + log G(x, σ_k)):
a product of (tempered) energy models — composition when several models, low temperature when
β > 1 — times an optional extra potential G (e.g. a bounded region). Particles move with the
reverse-diffusion Euler–Maruyama kernel M_k driven by ∇log γ_k (score-sum guidance), and the
Feynman–Kac potentials are the incremental importance weights

    G_k = γ_{k+1}(x') L_k(x | x') / (γ_k(x) M_k(x' | x)),   L_k = the forward noising kernel,

so the weighted particles target γ_K exactly as N → ∞ whatever the discretisation error, and
the running product of mean weights estimates Z_K / Z_0 (unbiased). Optional MALA correctors
(with the correct asymmetric proposal densities) leave each γ_k invariant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from energy_diffusion.edm import TOY_EDM, EDMConfig, karras_sigmas, log_normal


class EnergyFunction(Protocol):
    def energy(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


LogPotential = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- resampling
def multinomial_resample(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.multinomial(weights, len(weights), replacement=True, generator=generator)


def _inverse_cdf(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    cdf = weights.double().cumsum(0)
    cdf = cdf / cdf[-1]
    return torch.searchsorted(cdf, u.double(), right=True).clamp_(max=len(weights) - 1)


def systematic_resample(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniform shared by all strata: offspring counts are ⌊N w_i⌋ or ⌈N w_i⌉."""
    n = len(weights)
    u = (torch.rand(1, generator=generator, device=weights.device) + torch.arange(n, device=weights.device)) / n
    return _inverse_cdf(weights, u)


def stratified_resample(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniform per stratum [i/N, (i+1)/N)."""
    n = len(weights)
    u = (torch.rand(n, generator=generator, device=weights.device) + torch.arange(n, device=weights.device)) / n
    return _inverse_cdf(weights, u)


RESAMPLERS = {"multinomial": multinomial_resample, "systematic": systematic_resample, "stratified": stratified_resample}


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """ESS = 1/Σ W_i² of the normalised weights."""
    w = torch.softmax(log_weights, 0)
    return float(1.0 / (w**2).sum())


# ---------------------------------------------------------------- potentials
def box_log_potential(low: float | torch.Tensor, high: float | torch.Tensor, width: float = 0.02) -> LogPotential:
    """Bounded generation: log G(x, σ) = −dist(x, box)² / (2(σ² + width²)).

    Loose at high noise, a box of soft edge ``width`` at the end of sampling.
    """

    def log_g(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.as_tensor(low, dtype=x.dtype), torch.as_tensor(high, dtype=x.dtype)
        dist2 = (x - x.clamp(lo, hi)).pow(2).flatten(1).sum(1)
        return -dist2 / (2 * (sigma**2 + width**2))

    return log_g


# ---------------------------------------------------------------- the Feynman–Kac model
@dataclass
class FeynmanKac:
    """log γ(x, σ) = −Σ β_i E_i(x, σ) + log G(x, σ) and its gradient."""

    models: Sequence[EnergyFunction]
    betas: Sequence[float] | None = None
    log_potential: LogPotential | None = None

    def __post_init__(self):
        if not self.models:
            raise ValueError("need at least one energy model")
        self.betas = [1.0] * len(self.models) if self.betas is None else [float(b) for b in self.betas]
        if len(self.betas) != len(self.models):
            raise ValueError(f"{len(self.models)} models but {len(self.betas)} betas")
        if any(not b > 0 for b in self.betas):
            raise ValueError(f"every beta must be > 0 (inverse temperatures), got {self.betas}")

    def log_gamma(self, x: torch.Tensor, sigma: float, with_grad: bool = True):
        """``(log γ, ∇ log γ)`` at noise level ``sigma`` (gradient ``None`` unless ``with_grad``)."""
        s = torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            x = x.detach().requires_grad_(with_grad)
            total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for beta, model in zip(self.betas, self.models):
                e = model.energy(x, s)
                if e.shape != (x.shape[0],):
                    raise ValueError(f"energy must return shape ({x.shape[0]},), got {tuple(e.shape)}")
                total = total - beta * e
            if self.log_potential is not None:
                total = total + self.log_potential(x, s)
            if torch.isnan(total).any():
                raise FloatingPointError(
                    f"log-target is NaN for {int(torch.isnan(total).sum())} particles at "
                    f"sigma={sigma:.4g}: check the energy models and potential"
                )
            grad = torch.autograd.grad(total.sum(), x)[0] if with_grad else None
        return total.detach(), (grad.detach() if grad is not None else None)


@dataclass
class SMCResult:
    samples: torch.Tensor
    log_weights: torch.Tensor  # normalised, final
    log_z: float  # log of the unbiased estimate of Z = ∫ γ(x, σ_min) dx (weight_min_sigma = 0 only; see smc_summary)
    ess: list[float] = field(default_factory=list)  # ESS / N after each step's reweighting
    resampled_at: list[int] = field(default_factory=list)
    acceptance: list[float] = field(default_factory=list)

    def resampled(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Equally weighted samples (one final systematic resampling)."""
        return self.samples[systematic_resample(self.log_weights.exp(), generator)]


def mala(
    fk: FeynmanKac, x: torch.Tensor, sigma: float, step: float, n_steps: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, float]:
    """Metropolis-adjusted Langevin moves leaving γ(·, σ) invariant; returns (x, mean acceptance).

    Proposal q(y|x) = N(y; x + h∇log γ(x), 2h I); acceptance uses q(x|y) evaluated with ∇log γ(y).
    """
    logp, grad = fk.log_gamma(x, sigma)
    accepted = 0.0
    for _ in range(n_steps):
        mean_fwd = x + step * grad
        y = mean_fwd + math.sqrt(2 * step) * torch.randn(x.shape, generator=generator, device=x.device)
        logp_y, grad_y = fk.log_gamma(y, sigma)
        log_q_fwd = log_normal(y, mean_fwd, 2 * step)
        log_q_bwd = log_normal(x, y + step * grad_y, 2 * step)
        log_alpha = logp_y + log_q_bwd - logp - log_q_fwd
        accept = torch.rand(x.shape[0], generator=generator, device=x.device).log() < log_alpha
        mask = accept.reshape(-1, *([1] * (x.ndim - 1)))
        x = torch.where(mask, y, x)
        logp = torch.where(accept, logp_y, logp)
        grad = torch.where(mask, grad_y, grad)
        accepted += accept.float().mean().item()
    return x, accepted / max(n_steps, 1)


def check_schedule(fk: FeynmanKac, cfg: EDMConfig) -> None:
    """Refuse energies trained on another noise schedule than ``cfg`` (their ``sigma_data``, and the
    ``sigma_max`` kept in ``hub_info`` by ``from_pretrained``): the product is defined on one schedule."""
    for i, model in enumerate(fk.models):
        trained = {"sigma_data": getattr(model, "sigma_data", None),
                   "sigma_max": getattr(model, "hub_info", {}).get("sigma_max")}
        for name, value in trained.items():
            if value is not None and not math.isclose(float(value), float(getattr(cfg, name)), rel_tol=1e-6):
                raise ValueError(
                    f"energy #{i} was trained with {name}={value} but cfg.{name}={getattr(cfg, name)}; sample with "
                    "the schedule the energies were trained on (all energies must share one)"
                )


def smc_sample(
    fk: FeynmanKac,
    n_particles: int,
    shape: tuple[int, ...],
    *,
    steps: int = 100,
    cfg: EDMConfig = TOY_EDM,
    resampling: str = "systematic",
    ess_threshold: float = 0.5,
    mala_steps: int = 0,
    mala_step_size: float = 0.05,
    weight_min_sigma: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> SMCResult:
    """Sequential Monte Carlo through the Feynman–Kac model ``fk`` from σ_max down to σ_min.

    ``mala_step_size`` is relative: the MALA step at level σ is ``mala_step_size · σ²``.
    ``weight_min_sigma`` > 0 sets the potentials to 1 below that noise level (plain guided reverse
    diffusion there): learnt energies scale like σ_d/σ, so their mode-to-mode offsets become
    unreliable at the smallest σ while the targets barely change. 0 keeps the exact FK model.
    """
    if n_particles < 2:
        raise ValueError(f"SMC needs at least 2 particles (n_particles), got {n_particles}")
    check_schedule(fk, cfg)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if resampling not in RESAMPLERS:
        raise ValueError(f"resampling must be one of {sorted(RESAMPLERS)}, got {resampling!r}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError(f"ess_threshold must be in [0, 1], got {ess_threshold}")
    sigmas = karras_sigmas(steps + 1, cfg).tolist()
    resample = RESAMPLERS[resampling]
    x = sigmas[0] * torch.randn(n_particles, *shape, generator=generator, device=device)
    logp, grad = fk.log_gamma(x, sigmas[0])
    log_w = logp - log_normal(x, torch.zeros_like(x), sigmas[0] ** 2)  # importance weight of the start
    log_z = float(torch.logsumexp(log_w, 0)) - math.log(n_particles)
    log_w = log_w - torch.logsumexp(log_w, 0)
    result = SMCResult(x, log_w, log_z)
    for k, (s_now, s_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        var = s_now**2 - s_next**2
        mean = x + var * grad  # Euler–Maruyama reverse step (VE SDE)
        x_next = mean + math.sqrt(var) * torch.randn(x.shape, generator=generator, device=device)
        logp_next, grad_next = fk.log_gamma(x_next, s_next)
        if s_next < weight_min_sigma:
            x, logp, grad = x_next, logp_next, grad_next
            continue
        log_inc = (logp_next + log_normal(x, x_next, var)) - (logp + log_normal(x_next, mean, var))
        log_inc = torch.nan_to_num(log_inc, nan=-math.inf)
        unnorm = log_w + log_inc
        total = torch.logsumexp(unnorm, 0)
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"all particle weights vanished at step {k} (sigma={s_next:.4g}); the potential "
                "may exclude every particle: use more particles or a looser potential"
            )
        result.log_z += float(total)
        log_w = unnorm - total
        x, logp, grad = x_next, logp_next, grad_next
        ess = effective_sample_size(log_w) / n_particles
        result.ess.append(ess)
        if ess < ess_threshold:
            idx = resample(log_w.exp(), generator)
            x, logp, grad = x[idx], logp[idx], grad[idx]
            log_w = torch.full_like(log_w, -math.log(n_particles))
            result.resampled_at.append(k)
        if mala_steps:
            x, acc = mala(fk, x, s_next, mala_step_size * s_next**2, mala_steps, generator)
            logp, grad = fk.log_gamma(x, s_next)
            result.acceptance.append(acc)
    result.samples, result.log_weights = x.detach(), log_w
    return result


def reverse_diffusion(
    fk: FeynmanKac,
    n: int,
    shape: tuple[int, ...],
    *,
    steps: int = 100,
    cfg: EDMConfig = TOY_EDM,
    mala_steps: int = 0,
    mala_step_size: float = 0.05,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Baseline: the same reverse-diffusion moves driven by ∇log γ (score-sum guidance) with no weights,
    optionally MCMC-corrected at every level (as in Du et al., 2023). Biased for products and powers."""
    if n < 1 or steps < 1:
        raise ValueError(f"n and steps must be >= 1, got n={n}, steps={steps}")
    check_schedule(fk, cfg)
    sigmas = karras_sigmas(steps + 1, cfg).tolist()
    x = sigmas[0] * torch.randn(n, *shape, generator=generator, device=device)
    for s_now, s_next in zip(sigmas[:-1], sigmas[1:]):
        _, grad = fk.log_gamma(x, s_now)
        var = s_now**2 - s_next**2
        x = x + var * grad + math.sqrt(var) * torch.randn(x.shape, generator=generator, device=device)
        if mala_steps:
            x, _ = mala(fk, x, s_next, mala_step_size * s_next**2, mala_steps, generator)
    return x.detach()


def smc_summary(result: SMCResult, weight_min_sigma: float = 0.0) -> str:
    """One log line for an SMC run. ``log_z`` estimates the target's ``log Z`` only with
    ``weight_min_sigma = 0``: above it the potentials are switched off, so it is then not reported."""
    ess = result.ess[-1] if result.ess else 1.0
    head = (f"log Z estimate {result.log_z:.3f}" if weight_min_sigma <= 0 else
            f"no log Z estimate (the weights stop at sigma {weight_min_sigma:g}, so the FK normaliser is not Z)")
    return f"SMC: {head}, {len(result.resampled_at)} resampling events, final ESS {ess:.2f}"
