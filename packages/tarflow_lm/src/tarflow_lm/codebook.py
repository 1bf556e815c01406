"""VAE bridge between tokens and latents: a Gaussian codebook encoder and its tied decoder (§3.1).

``q(z_t | x_t = k) = N(μ_k, σ_k² I)`` and ``p(x_t = k | z_t) ∝ N(z_t; μ_k, σ_k² I)`` share the
same parameters, so the decoder is the Bayes posterior of a uniform mixture of the codes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class GaussianCodebook(nn.Module):
    def __init__(self, vocab_size: int, latent_dim: int, init_log_sigma: float = -1.0):
        super().__init__()
        self.vocab_size, self.latent_dim = vocab_size, latent_dim
        self.means = nn.Parameter(torch.randn(vocab_size, latent_dim))
        self.log_sigmas = nn.Parameter(torch.full((vocab_size,), float(init_log_sigma)))

    def check_ids(self, ids: torch.Tensor) -> None:
        if ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"token ids must be an integer tensor, got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.vocab_size}); got range "
                f"[{int(ids.min())}, {int(ids.max())}]: re-tokenise or enlarge vocab_size"
            )

    def encode(self, ids: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised ``z ~ q(z|x)`` and ``log q(z|x)`` summed over the latent axis (Eq. 3)."""
        self.check_ids(ids)
        mu, log_sigma = self.means[ids], self.log_sigmas[ids].unsqueeze(-1)
        eps = torch.randn_like(mu) if noise is None else noise
        z = mu + torch.exp(log_sigma) * eps
        log_q = (-0.5 * eps.pow(2) - log_sigma - 0.5 * LOG_2PI).sum(-1)
        return z, log_q

    def component_log_density(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; μ_k, σ_k² I)`` for every code ``k``: shape ``(..., V)``."""
        d = self.latent_dim
        sq = z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.means.T + self.means.pow(2).sum(-1)
        sq = sq.clamp_min(0)
        return -0.5 * sq * torch.exp(-2 * self.log_sigmas) - d * self.log_sigmas - 0.5 * d * LOG_2PI

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Tied decoder ``log p(x = k | z)`` (normalised over the vocabulary)."""
        return torch.log_softmax(self.component_log_density(z), dim=-1)
