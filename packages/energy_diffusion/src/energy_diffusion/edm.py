"""EDM conventions (Karras et al., 2022): x_σ = x_0 + σ·ε, preconditioning, schedules, teacher training.

A *denoiser* is any callable ``D(x, sigma) -> x̂_0`` with ``sigma`` of shape ``(N,)``; its score is
``(D(x, σ) − x) / σ²`` (Tweedie).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EDMConfig:
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    p_mean: float = -1.2
    p_std: float = 1.2


TOY_EDM = EDMConfig(sigma_max=10.0)  # low-dimensional data of unit scale needs no σ_max = 80


def preconditioning(sigma: torch.Tensor, sigma_data: float):
    """EDM Table 1: ``c_skip, c_out, c_in, c_noise`` for noise levels ``sigma``."""
    s2, d2 = sigma**2, sigma_data**2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / (s2 + d2).sqrt()
    c_in = 1 / (s2 + d2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM weighting λ(σ) = (σ² + σ_d²)/(σ·σ_d)², which makes the effective target unit-variance."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigma(n: int, cfg: EDMConfig, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Training noise levels: ln σ ~ N(P_mean, P_std²)."""
    return (cfg.p_mean + cfg.p_std * torch.randn(n, generator=generator, device=device)).exp()


def karras_sigmas(steps: int, cfg: EDMConfig, device=None) -> torch.Tensor:
    """Decreasing noise levels σ_max … σ_min (EDM eq. 5), length ``steps``."""
    if steps < 2:
        raise ValueError(f"need at least 2 noise levels, got {steps}")
    i = torch.arange(steps, dtype=torch.float64, device=device) / (steps - 1)
    a, b = cfg.sigma_max ** (1 / cfg.rho), cfg.sigma_min ** (1 / cfg.rho)
    return ((a + i * (b - a)) ** cfg.rho).float()


def score_from_denoiser(denoiser: Denoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """∇ log p_σ(x) = (D(x, σ) − x)/σ²."""
    s = _expand(sigma, x)
    return (denoiser(x, sigma) - x) / s**2


def _expand(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def _mlp(d_in: int, hidden: int, depth: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


class MLPDenoiser(nn.Module):
    """EDM-preconditioned MLP denoiser for low-dimensional data (the toy teacher)."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, sigma_data: float = 0.5):
        super().__init__()
        self.dim, self.sigma_data = dim, sigma_data
        self.net = _mlp(dim + 1, hidden, depth, dim)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        c_skip, c_out, c_in, c_noise = (c[:, None] for c in preconditioning(sigma, self.sigma_data))
        return c_skip * x + c_out * self.net(torch.cat([c_in * x, c_noise], dim=1))


class UNetDenoiser(nn.Module):
    """A diffusers ``UNet2DModel`` as an EDM denoiser (the image-scale teacher)."""

    def __init__(self, unet: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.unet, self.sigma_data = unet, sigma_data

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        c_skip, c_out, c_in, c_noise = preconditioning(sigma, self.sigma_data)
        f = self.unet(_expand(c_in, x) * x, c_noise).sample
        return _expand(c_skip, x) * x + _expand(c_out, x) * f


def denoising_loss(
    denoiser: Denoiser, x0: torch.Tensor, cfg: EDMConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """EDM training loss E_σ,ε[λ(σ)‖D(x₀ + σε, σ) − x₀‖²] (per-example sum over dimensions, batch mean)."""
    sigma = sample_sigma(x0.shape[0], cfg, generator, x0.device)
    noisy = x0 + _expand(sigma, x0) * torch.randn(x0.shape, generator=generator, device=x0.device)
    err = (denoiser(noisy, sigma) - x0).pow(2).flatten(1).sum(1)
    return (loss_weight(sigma, cfg.sigma_data) * err).mean()


def train_denoiser(
    denoiser: nn.Module,
    data: torch.Tensor,
    cfg: EDMConfig,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    **fit_kwargs,
) -> list[float]:
    """Train a teacher denoiser on ``data`` with the EDM loss (resumable: see :func:`training.fit`)."""
    from energy_diffusion.training import fit

    return fit(
        denoiser,
        partial(denoising_loss, denoiser, cfg=cfg),  # picklable, for Lightning's spawn strategies
        data,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        **fit_kwargs,
    )


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: float | torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var·I) summed over all but the batch dimension."""
    d = x[0].numel()
    var = torch.as_tensor(var, dtype=x.dtype, device=x.device)
    sq = (x - mean).pow(2).flatten(1).sum(1)
    return -0.5 * sq / var - 0.5 * d * torch.log(2 * math.pi * var)
