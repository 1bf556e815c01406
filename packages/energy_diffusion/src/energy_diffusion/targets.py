"""Isotropic Gaussian mixtures: analytic noised energies and scores, exact products and powers.

Under x_σ = x₀ + σε a mixture Σ w_j N(μ_j, s_j²I) stays a mixture with variances s_j² + σ², so its
energy −log p_σ, score, denoiser and samples are exact at every noise level: the ground truth
for distillation, composition (products) and low-temperature (integer powers) tests and demos.
"""

from __future__ import annotations

import math

import torch


class GaussianMixture:
    """``Σ_j w_j N(μ_j, s_j² I)`` in ``dim`` dimensions; weights need not be normalised on input."""

    def __init__(self, means: torch.Tensor, stds: torch.Tensor | float, weights: torch.Tensor | None = None):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        if self.means.ndim != 2:
            raise ValueError(f"means must be (components, dim), got {tuple(self.means.shape)}")
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float32).expand(k).clone()
        w = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if (w < 0).any() or w.sum() <= 0 or (self.stds <= 0).any():
            raise ValueError("weights must be non-negative with a positive sum, stds positive")
        self.weights = w / w.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _component_log_probs(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
        var = self.stds.to(x)[None] ** 2 + sigma**2  # (N or 1, K)
        sq = (x[:, None, :] - self.means.to(x)[None]).pow(2).sum(-1)
        return self.weights.to(x).log()[None] - 0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)

    def log_prob(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """log p_σ(x), shape ``(N,)``."""
        return torch.logsumexp(self._component_log_probs(x, sigma), dim=1)

    def energy(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Exact energy −log p_σ(x) (normalised)."""
        return -self.log_prob(x, sigma)

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        sigma_t = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
        resp = torch.softmax(self._component_log_probs(x, sigma), dim=1)  # (N, K)
        var = self.stds.to(x)[None] ** 2 + sigma_t**2
        return (resp[..., None] * (self.means.to(x)[None] - x[:, None, :]) / var[..., None]).sum(1)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """E[x₀ | x_σ = x] = x + σ²∇log p_σ(x) (Tweedie): the exact teacher."""
        return x + sigma.reshape(-1, 1) ** 2 * self.score(x, sigma)

    __call__ = denoise

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator)
        return self.means[comp] + self.stds[comp, None] * eps

    def mean(self) -> torch.Tensor:
        return (self.weights[:, None] * self.means).sum(0)

    def covariance(self) -> torch.Tensor:
        m = self.mean()
        second = (
            self.weights[:, None, None]
            * (self.means[:, :, None] * self.means[:, None, :] + self.stds[:, None, None] ** 2 * torch.eye(self.dim))
        ).sum(0)
        return second - m[:, None] * m[None, :]

    def product(self, other: GaussianMixture) -> tuple[GaussianMixture, float]:
        """The normalised product p·q and log ∫ p q dx (exact: products of Gaussians are Gaussian)."""
        a2, b2 = self.stds[:, None] ** 2, other.stds[None, :] ** 2  # (K, L)
        c2 = a2 * b2 / (a2 + b2)
        mu = c2[..., None] * (self.means[:, None] / a2[..., None] + other.means[None] / b2[..., None])
        sq = (self.means[:, None] - other.means[None]).pow(2).sum(-1)
        log_overlap = -0.5 * sq / (a2 + b2) - 0.5 * self.dim * torch.log(2 * math.pi * (a2 + b2))
        log_w = self.weights.log()[:, None] + other.weights.log()[None] + log_overlap
        log_z = torch.logsumexp(log_w.flatten(), 0)
        mix = GaussianMixture(mu.reshape(-1, self.dim), c2.sqrt().flatten(), (log_w - log_z).exp().flatten())
        return mix, float(log_z)

    def power(self, beta: int) -> tuple[GaussianMixture, float]:
        """The normalised p^β and log ∫ p^β dx for an integer β ≥ 1."""
        if int(beta) != beta or beta < 1:
            raise ValueError(f"exact powers need an integer beta >= 1, got {beta}")
        out, log_z = self, 0.0
        for _ in range(int(beta) - 1):
            out, lz = out.product(self)
            log_z += lz
        return out, log_z


def ring(n_modes: int = 8, radius: float = 1.5, std: float = 0.15) -> GaussianMixture:
    """Modes evenly spaced on a circle."""
    angle = torch.arange(n_modes) * 2 * math.pi / n_modes
    return GaussianMixture(radius * torch.stack([angle.cos(), angle.sin()], 1), std)


def grid(n_side: int = 3, spacing: float = 1.2, std: float = 0.15) -> GaussianMixture:
    """Modes on a centred square grid."""
    ticks = (torch.arange(n_side) - (n_side - 1) / 2) * spacing
    xx, yy = torch.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(torch.stack([xx.flatten(), yy.flatten()], 1), std)
