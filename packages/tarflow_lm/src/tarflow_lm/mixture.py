"""Gaussian-mixture CDF couplings (Mix-1, Mix-d) with stable log-CDF, Φ⁻¹ and a bracketed inverse.

Forward (data → noise) per scalar: ``u = Φ⁻¹(F_mix(z))`` with
``log|du/dz| = log p_mix(z) − log N(u; 0, 1)`` (paper §3.3, Mix-1). Mix-d applies the Rosenblatt
transform of a d-dimensional diagonal-Gaussian mixture: the weights of dimension ``i`` are the
Bayes-updated posteriors ``π_k^{(i)} ∝ π_k ∏_{j<i} N(z_j; m_kj, s_kj)`` (Algorithm 1).
All CDF work runs in float64; the inverse is a vectorised bisection on log-CDF followed by
safeguarded Newton steps, and raises :class:`RootFindingError` rather than return garbage.
"""

from __future__ import annotations

import math

import torch
from torch.special import log_ndtr, ndtri

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
LOG_HALF = math.log(0.5)


class RootFindingError(RuntimeError):
    """The mixture-CDF inverse did not reach the requested accuracy."""


def normal_logpdf(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * x * x - LOG_SQRT_2PI


def _component_terms(z, means, log_scales):
    """Standardised ``(z − m)/s`` per component; ``z`` is ``(...)``, params are ``(..., K)``."""
    return (z.unsqueeze(-1) - means) * torch.exp(-log_scales)


def mixture_logpdf(z, log_weights, means, log_scales):
    """``log Σ_k π_k N(z; m_k, s_k²)`` for normalised ``log_weights`` of shape ``(..., K)``."""
    x = _component_terms(z, means, log_scales)
    return torch.logsumexp(log_weights + normal_logpdf(x) - log_scales, dim=-1)


def mixture_logcdf_logsf(z, log_weights, means, log_scales):
    """``(log F(z), log(1 − F(z)))`` computed without cancellation in either tail."""
    x = _component_terms(z, means, log_scales)
    return (torch.logsumexp(log_weights + log_ndtr(x), dim=-1), torch.logsumexp(log_weights + log_ndtr(-x), dim=-1))


def ndtri_log(log_p: torch.Tensor, newton_steps: int = 3) -> torch.Tensor:
    """``Φ⁻¹(exp(log_p))`` for ``log_p ≤ log ½`` in float64, valid far past ``exp`` underflow.

    Starts from ``ndtri`` (or the Mills-ratio asymptote ``−√(t − log 2πt)``, ``t = −2 log p``, in the
    extreme tail) and polishes with Newton steps on ``log Φ(u) = log_p``. The gradient is the
    analytic ``du/dlog p = Φ(u)/φ(u)`` (first order), not a derivative through the iterations.
    """
    log_p = log_p.double()
    with torch.no_grad():
        safe = log_p > -700.0
        t = -2.0 * log_p.clamp_max(-700.0)
        asymptote = -torch.sqrt(t - torch.log(2 * math.pi * t))
        u = torch.where(safe, ndtri(torch.exp(log_p.clamp_min(-700.0))), asymptote)
        for _ in range(newton_steps):
            lc = log_ndtr(u)
            u = u - (lc - log_p) * torch.exp(lc - normal_logpdf(u))
        slope = torch.exp(log_ndtr(u) - normal_logpdf(u))
    return u + slope * (log_p - log_p.detach()) if log_p.requires_grad else u


def normal_icdf_from_logs(log_cdf: torch.Tensor, log_sf: torch.Tensor) -> torch.Tensor:
    """``Φ⁻¹(F)`` from ``log F`` and ``log(1−F)``, using the smaller tail for precision (float64)."""
    lower = log_cdf <= LOG_HALF
    return torch.where(
        lower,
        ndtri_log(torch.minimum(log_cdf, torch.full_like(log_cdf, LOG_HALF))),
        -ndtri_log(torch.minimum(log_sf, torch.full_like(log_sf, LOG_HALF))),
    )


def mixture_cdf_forward(z, log_weights, means, log_scales):
    """Mix-1 scalar map ``u = Φ⁻¹(F_mix(z))`` and its log-derivative, elementwise over ``z``."""
    dtype = z.dtype
    z64, lw, m, ls = (t.double() for t in (z, log_weights, means, log_scales))
    lw = torch.log_softmax(lw, dim=-1)
    log_cdf, log_sf = mixture_logcdf_logsf(z64, lw, m, ls)
    u = normal_icdf_from_logs(log_cdf, log_sf)
    logdet = mixture_logpdf(z64, lw, m, ls) - normal_logpdf(u)
    return u.to(dtype), logdet.to(dtype)


def mixture_cdf_inverse(
    u, log_weights, means, log_scales, *, tol: float = 1e-9, bisect_iters: int = 30, newton_iters: int = 4
):
    """Solve ``Φ⁻¹(F_mix(z)) = u`` for ``z`` elementwise (bracketed bisection + Newton polish).

    The bracket ``[min_k m_k − c·s_k, max_k m_k + c·s_k]`` with ``c = |u| + 10`` contains the root
    for every mixture. Both stages work on the log-CDF (or log-survival, whichever tail is smaller)
    against ``log Φ(±u)``, so no ``Φ⁻¹`` is evaluated until the final check. Raises
    :class:`RootFindingError` with the worst residual when ``|u(z) − u|`` exceeds ``tol`` after
    refinement (e.g. ``u`` beyond float64's normal range).
    """
    dtype = u.dtype
    u64, lw, m, ls = (t.double() for t in (u, log_weights, means, log_scales))
    if not torch.isfinite(u64).all():
        raise RootFindingError("mixture CDF inverse got non-finite u; check the noise you are inverting")
    lw = torch.log_softmax(lw, dim=-1)
    lower_half = u64 <= 0
    reach = (u64.abs() + 10.0).unsqueeze(-1) * torch.exp(ls)
    lo = (m - reach).min(dim=-1).values
    hi = (m + reach).max(dim=-1).values

    sign = torch.where(lower_half, 1.0, -1.0).to(u64)
    log_target = log_ndtr(-u64.abs())  # log Φ(u) in the lower half, log(1 − Φ(u)) in the upper one
    inv_scales, sign_k = torch.exp(-ls), sign.unsqueeze(-1)

    def log_tail(z):  # log F(z) (lower half) or log(1 − F(z)) (upper half): one log-sum-exp per element
        return torch.logsumexp(lw + log_ndtr(sign_k * (z.unsqueeze(-1) - m) * inv_scales), dim=-1)

    for _ in range(bisect_iters):
        mid = 0.5 * (lo + hi)
        go_right = (sign * (log_tail(mid) - log_target)) < 0  # F(mid) < Φ(u)
        lo = torch.where(go_right, mid, lo)
        hi = torch.where(go_right, hi, mid)
    z = 0.5 * (lo + hi)
    for _ in range(newton_iters):  # Newton on the log tail: d log F/dz = p/F, d log(1 − F)/dz = −p/(1 − F)
        tail = log_tail(z)
        step = sign * (tail - log_target) * torch.exp(tail - mixture_logpdf(z, lw, m, ls))
        z_new = z - step
        z = torch.where((z_new > lo) & (z_new < hi) & torch.isfinite(z_new), z_new, z)
    residual = (mixture_cdf_forward(z, lw, m, ls)[0] - u64).abs()
    worst = residual.max() if residual.numel() else residual.new_zeros(())
    if not worst <= tol:
        idx = int(residual.flatten().argmax())
        raise RootFindingError(
            f"mixture CDF inverse did not converge: max |u(z) − u| = {worst.item():.3e} > tol {tol:g} "
            f"at flat index {idx} (u = {u64.flatten()[idx].item():.4g}, bracket width "
            f"{(hi - lo).flatten()[idx].item():.3e}); lower the temperature or check for extreme scales"
        )
    return z.to(dtype)


def bayes_updated_log_weights(z, log_weights, means, log_scales):
    """Algorithm 1 weights: ``log π_k^{(i)} = log π_k + Σ_{j<i} log N(z_j; m_kj, s_kj)``, normalised.

    ``z``: ``(..., d)``; params: ``(..., d, K)`` (weights may be ``(..., K)``). Returns ``(..., d, K)``.
    """
    comp = normal_logpdf((z.unsqueeze(-1) - means) * torch.exp(-log_scales)) - log_scales  # (..., d, K)
    prefix = torch.cumsum(comp, dim=-2) - comp  # exclusive cumulative sum over dimensions
    if log_weights.dim() == means.dim() - 1:
        log_weights = log_weights.unsqueeze(-2)
    return torch.log_softmax(log_weights + prefix, dim=-1)


def mixd_forward(z, log_weights, means, log_scales):
    """Mix-d Rosenblatt map of a diagonal-Gaussian mixture over the last axis ``d`` (Algorithm 1).

    ``log_weights``: ``(..., K)``; ``means``/``log_scales``: ``(..., d, K)``. Returns ``u`` and the
    per-vector log-det ``log p_mix(z) − Σ_i log N(u_i)``.
    """
    dtype = z.dtype
    z64, lw, m, ls = (t.double() for t in (z, log_weights, means, log_scales))
    lw = torch.log_softmax(lw, dim=-1)
    w = bayes_updated_log_weights(z64, lw, m, ls)
    log_cdf, log_sf = mixture_logcdf_logsf(z64, w, m, ls)
    u = normal_icdf_from_logs(log_cdf, log_sf)
    comp = (normal_logpdf((z64.unsqueeze(-1) - m) * torch.exp(-ls)) - ls).sum(-2)  # (..., K)
    log_p = torch.logsumexp(lw + comp, dim=-1)
    logdet = log_p - normal_logpdf(u).sum(-1)
    return u.to(dtype), logdet.to(dtype)


def mixd_inverse(u, log_weights, means, log_scales, *, tol: float = 1e-9):
    """Invert :func:`mixd_forward` one dimension at a time, updating the weights by Bayes' rule."""
    dtype = u.dtype
    u64, lw, m, ls = (t.double() for t in (u, log_weights, means, log_scales))
    lw = torch.log_softmax(lw, dim=-1)
    zs = []
    for i in range(u64.shape[-1]):  # d is the small latent width, never the sequence length
        z_i = mixture_cdf_inverse(u64[..., i], lw, m[..., i, :], ls[..., i, :], tol=tol)
        zs.append(z_i)
        lw = torch.log_softmax(
            lw + normal_logpdf((z_i.unsqueeze(-1) - m[..., i, :]) * torch.exp(-ls[..., i, :])) - ls[..., i, :], dim=-1
        )
    return torch.stack(zs, dim=-1).to(dtype)
