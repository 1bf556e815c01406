"""The annealing path, the locally equivariant rates and the Kolmogorov residual of DNFS.

Semantics follow the authors' code (the paper text was not available to check equation numbers).

Path: ``p_t(x) ∝ ρ(x)^t η(x)^{1−t}`` with ``η`` uniform on ``{0..S-1}^D`` (normalised, so ``Z_0 = 1``).
Rates on 1-Hamming neighbours ``y = swap(x, i, τ)``: ``R_t(x→y) = [G_t(τ, i | x)]_+`` and, by local equivariance,
``R_t(y→x) = [−G_t(τ, i | x)]_+``. Dividing the Kolmogorov forward equation by ``p_t(x)`` gives

    ξ_t(x) = ∂_t log p̃_t(x) + Σ_{i, τ≠x_i} ( [G]_+ − (p_t(y)/p_t(x)) [−G]_+ ),      ∂_t log p_t = ξ_t − ∂_t log Z_t

so the residual is ``δ_t = ξ_t − c_t`` with ``c_t = ∂_t log Z_t``. By the discrete Stein identity the sum has zero
mean under ``p_t`` for *any* G, hence ``c_t = E_{p_t}[ξ_t]`` (the control variate, estimated from samples).
"""

from __future__ import annotations

import math

import torch

from dnfs.targets import DiscreteTarget, validate_states


class GeometricPath:
    """``p_t ∝ ρ^t η^{1−t}`` between the uniform ``η`` and the target ``ρ``."""

    def __init__(self, target: DiscreteTarget):
        self.target = target
        self.dim, self.num_states = target.dim, target.num_states
        self.log_eta = -self.dim * math.log(self.num_states)  # normalised uniform reference, log Z_0 = 0

    def sample_initial(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None):
        """``n`` samples from the uniform reference ``η``."""
        return torch.randint(0, self.num_states, (n, self.dim), device=device, generator=generator)

    def dt_log_unnormalised(self, x: torch.Tensor) -> torch.Tensor:
        """``∂_t log p̃_t(x) = log ρ(x) − log η(x)`` (independent of t on this path)."""
        return self.target.log_prob(x) - self.log_eta

    def log_ratio(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``log p_t(swap(x,i,τ)) − log p_t(x) = t·(log ρ(y) − log ρ(x))`` as ``(B, D, S)`` (η is uniform)."""
        ratio = self.target.neighbour_log_ratio(x)
        return t.reshape(-1, 1, 1).to(ratio.dtype) * ratio


def off_diagonal(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g`` with the ``τ = x_i`` entries (no jump) set to zero."""
    return g.scatter(-1, x[..., None], 0.0)


def stein_term(
    g: torch.Tensor, log_ratio: torch.Tensor, x: torch.Tensor, clamp_log_ratio: float | None = None
) -> torch.Tensor:
    """``Σ_{i,τ≠x_i} [G]_+ − e^{log_ratio} [−G]_+`` per sample, shape ``(B,)`` (zero mean under p_t).

    ``clamp_log_ratio`` caps the log-ratio before exponentiation (the authors use 5 in the training loss).
    """
    g = off_diagonal(g, x)
    lr = off_diagonal(log_ratio, x)
    if clamp_log_ratio is not None:
        lr = lr.clamp(max=clamp_log_ratio)
    out = torch.relu(g) - torch.relu(-g) * lr.exp()
    # a forbidden neighbour (log ratio -inf) contributes 0 · [−G]_+ = 0, not NaN
    out = torch.where(torch.isneginf(lr), torch.relu(g), out)
    return out.flatten(1).sum(-1)


def xi(
    g: torch.Tensor, x: torch.Tensor, t: torch.Tensor, path: GeometricPath, clamp_log_ratio: float | None = None
) -> torch.Tensor:
    """``ξ_t(x) = ∂_t log p̃_t(x) + Stein term``: the Kolmogorov residual before subtracting ``∂_t log Z_t``."""
    validate_states(x, path.num_states, path.dim)
    if g.shape != (*x.shape, path.num_states):
        raise ValueError(f"G must have shape {(*x.shape, path.num_states)}, got {tuple(g.shape)}")
    # the target is a constant for the rate network (matters when it is itself being learned, e.g. an EBM)
    dt_log_p, log_ratio = path.dt_log_unnormalised(x).detach(), path.log_ratio(x, t).detach()
    return dt_log_p + stein_term(g, log_ratio, x, clamp_log_ratio)


def kolmogorov_residual(
    g: torch.Tensor,
    x: torch.Tensor,
    t: torch.Tensor,
    path: GeometricPath,
    c_t: torch.Tensor | float,
    clamp_log_ratio: float | None = None,
) -> torch.Tensor:
    """``δ_t(x) = ξ_t(x) − c_t``: zero for every x iff the rates solve the Kolmogorov equation and c_t = ∂_t log Z_t."""
    return xi(g, x, t, path, clamp_log_ratio) - c_t


def control_variate(xi_values: torch.Tensor, time_index: torch.Tensor, num_times: int) -> torch.Tensor:
    """``c_t = mean of ξ_t`` over the samples at each time index: the minimiser of ``E(ξ_t − c_t)²``."""
    sums = torch.zeros(num_times, dtype=xi_values.dtype, device=xi_values.device).index_add_(0, time_index, xi_values)
    counts = torch.bincount(time_index, minlength=num_times).clamp(min=1)
    return sums / counts
