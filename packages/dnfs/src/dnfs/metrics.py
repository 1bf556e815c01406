"""Importance-sampling diagnostics: ESS, log Z and Ising thermodynamics per site (as in the authors' evaluate())."""

from __future__ import annotations

import math

import torch


def normalised_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights ``softmax(log w)``."""
    if torch.isnan(log_weights).any():
        raise FloatingPointError("log-weights contain NaN; check the target and the model outputs")
    return torch.softmax(log_weights.double(), 0)


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """Normalised ESS ``1 / (N Σ w̄²)`` in ``(0, 1]``."""
    w = normalised_weights(log_weights)
    return float(1.0 / (w.square().sum() * w.numel()))


def log_partition(log_weights: torch.Tensor) -> dict[str, float]:
    """Two estimates of ``log Z_1``: ``log mean w`` (consistent) and ``mean log w`` (a lower bound in expectation;
    the authors' reported free energy uses this one)."""
    lw = log_weights.double()
    return {"log_mean_exp": float(torch.logsumexp(lw, 0) - math.log(lw.numel())), "mean_log": float(lw.mean())}


def weighted_mean(values: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance-sampling estimate of ``E_ρ[values]`` (``values`` is ``(N, ...)``)."""
    w = normalised_weights(log_weights).to(values.dtype)
    return torch.tensordot(w, values, dims=([0], [0]))


def magnetisation(samples: torch.Tensor, log_weights: torch.Tensor) -> float:
    """Weighted mean spin per site ``E_w[mean_i s_i]`` with ``s = 2x − 1`` (binary samples ``(N, D)``)."""
    return float(weighted_mean(2.0 * samples.double() - 1, log_weights).mean())


def ising_thermodynamics(
    log_weights: torch.Tensor,
    log_rho: torch.Tensor,
    beta: float,
    num_sites: int,
    estimator: str = "mean_log",
    field_log_rho: torch.Tensor | None = None,
) -> dict[str, float]:
    """Free energy ``F/D = −log Z/(βD)``, internal energy ``U/D`` and entropy ``S/D``.

    ``log ρ = β Σ_edges s_i s_j + h·Σ_i s_i`` (``β = 2σ``). ``U/D = −E_w[Σ_edges s_i s_j]/D`` is the
    coupling energy, the quantity :func:`~dnfs.exact.transfer_matrix_ising` and
    :func:`~dnfs.exact.ferdinand_fisher` report: pass the field part ``h·Σ s`` of ``log_rho`` as
    ``field_log_rho`` (``None``: no field). The entropy ``S/D = β(U_total − F)/D`` counts the field
    energy too.
    """
    log_z = log_partition(log_weights)[estimator]
    free = -log_z / beta / num_sites
    field = torch.zeros_like(log_rho) if field_log_rho is None else field_log_rho
    internal = float(-weighted_mean((log_rho - field).double(), log_weights)) / beta / num_sites
    total = float(-weighted_mean(log_rho.double(), log_weights)) / beta / num_sites
    return {"free_energy": free, "internal_energy": internal, "entropy": beta * (total - free)}
