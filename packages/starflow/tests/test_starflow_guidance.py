"""Closed-form guidance (§3.3): reductions and the score identity, for Gaussian heads."""

import math

import torch

from starflow import guided_gaussian


def log_normal(x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)


def test_equal_sigmas_reduce_to_standard_cfg():
    g = torch.Generator().manual_seed(0)
    mu_c, mu_u = torch.randn(100, generator=g), torch.randn(100, generator=g)
    sigma = torch.rand(100, generator=g) + 0.1
    for w in (0.0, 0.5, 3.0):
        mu, s = guided_gaussian(mu_c, sigma, mu_u, sigma, w)
        torch.testing.assert_close(mu, mu_c + w * (mu_c - mu_u))
        torch.testing.assert_close(s, sigma)


def test_score_identity_and_proportional_density():
    """∇log p̃ = (1+w)∇log p_c − w∇log p_u and log p̃ − [(1+w)log p_c − w log p_u] is constant in x."""
    g = torch.Generator().manual_seed(1)
    n = 64
    mu_c, mu_u = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    sigma_u = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    sigma_c = sigma_u * (0.2 + 0.8 * torch.rand(n, generator=g, dtype=torch.float64))  # σ_c ≤ σ_u: no clipping
    w = 1.7
    mu, sigma = guided_gaussian(mu_c, sigma_c, mu_u, sigma_u, w)
    x = (3 * torch.randn(5, n, generator=g, dtype=torch.float64)).requires_grad_(True)
    guided = log_normal(x, mu, sigma)
    target = (1 + w) * log_normal(x, mu_c, sigma_c) - w * log_normal(x, mu_u, sigma_u)
    (g1,) = torch.autograd.grad(guided.sum(), x)
    (g2,) = torch.autograd.grad(target.sum(), x)
    torch.testing.assert_close(g1, g2)
    diff = (guided - target).detach()
    torch.testing.assert_close(diff, diff[:1].expand_as(diff))


def test_clipping_keeps_precision_positive():
    mu_c, mu_u = torch.tensor([1.0]), torch.tensor([-1.0])
    sigma_c, sigma_u = torch.tensor([2.0]), torch.tensor([0.5])  # σ_c > σ_u: s clipped to 1
    mu, sigma = guided_gaussian(mu_c, sigma_c, mu_u, sigma_u, 4.0)
    torch.testing.assert_close(sigma, sigma_c)
    torch.testing.assert_close(mu, torch.tensor([1.0 + 4.0 * 2.0]))
    assert torch.isfinite(guided_gaussian(mu_c, sigma_c, mu_u, sigma_u, 100.0)[1]).all()
