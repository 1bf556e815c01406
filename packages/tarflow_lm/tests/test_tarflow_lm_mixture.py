"""Mixture-CDF numerics: monotonicity, inverse accuracy, log-derivatives, tails, Rosenblatt (Mix-d)."""

import pytest
import torch
from torch.autograd.functional import jacobian

from tarflow_lm.mixture import (
    RootFindingError,
    mixd_forward,
    mixd_inverse,
    mixture_cdf_forward,
    mixture_cdf_inverse,
    mixture_logcdf_logsf,
    mixture_logpdf,
)


def random_mixture(shape, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    lw = torch.log_softmax(torch.randn(*shape, k, generator=g, dtype=torch.float64), -1)
    m = 3 * torch.randn(*shape, k, generator=g, dtype=torch.float64)
    ls = torch.empty(*shape, k, dtype=torch.float64).uniform_(-4, 1, generator=g)
    return lw, m, ls


def test_cdf_is_monotone_and_forward_map_increasing():
    lw, m, ls = random_mixture((1,), 6)
    z = torch.linspace(-15, 15, 20001, dtype=torch.float64)
    log_cdf, _ = mixture_logcdf_logsf(z, lw, m, ls)
    u, _ = mixture_cdf_forward(z, lw.expand(len(z), -1), m.expand(len(z), -1), ls.expand(len(z), -1))
    assert (log_cdf.diff() >= 0).all()
    assert (u.diff() > 0).all()


def test_inverse_accurate_to_1e6():
    lw, m, ls = random_mixture((500,), 5, seed=1)
    u = torch.linspace(-6, 6, 500, dtype=torch.float64)
    z = mixture_cdf_inverse(u, lw, m, ls)
    u_back, _ = mixture_cdf_forward(z, lw, m, ls)
    assert (u_back - u).abs().max() < 1e-6
    z_back = mixture_cdf_inverse(mixture_cdf_forward(z, lw, m, ls)[0], lw, m, ls)
    assert (z_back - z).abs().max() < 1e-6


def test_log_derivative_matches_autograd():
    lw, m, ls = random_mixture((7,), 4, seed=2)
    z = torch.randn(7, dtype=torch.float64)
    _, logdet = mixture_cdf_forward(z, lw, m, ls)
    jac = jacobian(lambda x: mixture_cdf_forward(x, lw, m, ls)[0], z)
    torch.testing.assert_close(logdet, torch.diagonal(jac).log(), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(
        mixture_logpdf(z, lw, m, ls).exp(),
        (lw.exp() * torch.distributions.Normal(m, ls.exp()).log_prob(z[:, None]).exp()).sum(-1),
    )


def test_single_component_is_standardisation_even_in_far_tails():
    z = torch.linspace(-30, 30, 121, dtype=torch.float64)
    lw, m, ls = (
        torch.zeros(121, 1, dtype=torch.float64),
        torch.full((121, 1), 0.5, dtype=torch.float64),
        torch.full((121, 1), -0.7, dtype=torch.float64),
    )
    u, logdet = mixture_cdf_forward(z, lw, m, ls)
    expected = (z - 0.5) / torch.exp(torch.tensor(-0.7, dtype=torch.float64))
    torch.testing.assert_close(u, expected, rtol=1e-9, atol=1e-9)  # |u| reaches 60: past exp underflow
    torch.testing.assert_close(logdet, torch.full_like(logdet, 0.7), rtol=1e-7, atol=1e-7)


def test_root_finding_reports_failure():
    lw, m, ls = random_mixture((2,), 3)
    with pytest.raises(RootFindingError, match="did not converge"):  # a starved solver must not return garbage
        mixture_cdf_inverse(torch.tensor([0.0, 3.0], dtype=torch.float64), lw, m, ls, bisect_iters=3, newton_iters=0)
    with pytest.raises(RootFindingError, match="non-finite"):
        mixture_cdf_inverse(torch.tensor([0.0, float("nan")], dtype=torch.float64), lw, m, ls)


def test_mixd_jacobian_triangular_and_logdet():
    lw, _, _ = random_mixture((), 4, seed=3)
    _, m, ls = random_mixture((3,), 4, seed=4)
    z = torch.randn(3, dtype=torch.float64)
    u, logdet = mixd_forward(z, lw, m, ls)
    jac = jacobian(lambda x: mixd_forward(x, lw, m, ls)[0], z)
    assert torch.allclose(torch.triu(jac, 1), torch.zeros_like(jac))
    torch.testing.assert_close(logdet, torch.linalg.slogdet(jac)[1], rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(mixd_inverse(u, lw, m, ls), z, rtol=0, atol=1e-7)


def test_mixd_rosenblatt_gaussianises_mixture_samples():
    """If the Bayes weight update were wrong, u would not be N(0, I) for z drawn from the mixture."""
    g = torch.Generator().manual_seed(5)
    k, d, n = 3, 2, 20000
    lw = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    m = torch.tensor([[-3.0, 0.0, 3.0], [2.0, -2.0, 0.0]], dtype=torch.float64)
    ls = torch.log(torch.tensor([[0.5, 1.0, 0.7], [0.6, 0.4, 1.2]], dtype=torch.float64))
    comp = torch.multinomial(lw.exp(), n, replacement=True, generator=g)
    z = m.T[comp] + ls.exp().T[comp] * torch.randn(n, d, generator=g, dtype=torch.float64)
    u, _ = mixd_forward(z, lw.expand(n, k), m.expand(n, d, k), ls.expand(n, d, k))
    assert u.mean(0).abs().max() < 0.03
    cov = torch.cov(u.T)
    torch.testing.assert_close(cov, torch.eye(d, dtype=torch.float64), atol=0.04, rtol=0)
    # A stronger check than moments: the CDF of u_2 at 1.0 matches Φ(1) ≈ 0.8413.
    assert abs((u[:, 1] < 1.0).double().mean().item() - 0.8413) < 0.01


def test_inverse_on_skewed_mixtures_and_far_tails():
    """Both tails (u up to ≈ ±40), near-degenerate weights and scales e^-7…e^3 still invert to 1e-9."""
    g = torch.Generator().manual_seed(7)
    n, k = 3000, 6
    lw = 4 * torch.randn(n, k, generator=g, dtype=torch.float64)
    m = 8 * torch.randn(n, k, generator=g, dtype=torch.float64)
    ls = torch.empty(n, k, dtype=torch.float64).uniform_(-7, 3, generator=g)
    u = 12 * torch.randn(n, generator=g, dtype=torch.float64)
    z = mixture_cdf_inverse(u, lw, m, ls)
    assert (mixture_cdf_forward(z, lw, m, ls)[0] - u).abs().max() < 1e-9
    assert u.max() > 30 and u.min() < -30
