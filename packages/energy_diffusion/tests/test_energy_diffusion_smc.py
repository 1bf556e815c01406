import math

import pytest
import torch

from energy_diffusion import EDMConfig, FeynmanKac, GaussianMixture, box_log_potential, mala, smc_sample
from energy_diffusion.experiment import at_sigma_min
from energy_diffusion.metrics import mmd_rbf
from energy_diffusion.smc import RESAMPLERS, reverse_diffusion, systematic_resample

CFG = EDMConfig(sigma_max=10.0)


def _pair():
    a = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.7, torch.tensor([0.5, 0.5]))
    b = GaussianMixture(torch.tensor([[0.0, -0.8], [0.8, 0.8]]), 0.8, torch.tensor([0.3, 0.7]))
    return a, b


@pytest.mark.parametrize("scheme", sorted(RESAMPLERS))
def test_resampling_is_unbiased(scheme):
    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([0.05, 0.4, 0.25, 0.0, 0.3])
    trials = 4000
    counts = torch.zeros(5)
    for _ in range(trials):
        counts += torch.bincount(RESAMPLERS[scheme](w, gen), minlength=5)
    torch.testing.assert_close(counts / trials, 5 * w, atol=0.06, rtol=0)
    assert counts[3] == 0


def test_systematic_offspring_counts_are_floor_or_ceil():
    gen = torch.Generator().manual_seed(1)
    w = torch.softmax(torch.randn(50, generator=gen), 0)
    for _ in range(20):
        c = torch.bincount(systematic_resample(w, gen), minlength=50).float()
        assert ((c >= torch.floor(50 * w) - 1e-6) & (c <= torch.ceil(50 * w) + 1e-6)).all()


def test_exact_energies_at_beta_one_keep_weights_uniform():
    # With exact energies the incremental weights only carry discretisation error: ESS → N.
    gm = _pair()[0]
    fk = FeynmanKac([gm])
    ess = [
        min(
            smc_sample(
                fk, 500, (2,), steps=s, cfg=CFG, ess_threshold=0.0, generator=torch.Generator().manual_seed(0)
            ).ess
        )
        for s in (100, 400, 1600)
    ]
    assert ess[0] < ess[1] < ess[2] and ess[2] > 0.95, ess


def test_product_composition_matches_exact_target_and_z_is_unbiased():
    a, b = _pair()
    exact, log_z = at_sigma_min(a).product(at_sigma_min(b))
    fk = FeynmanKac([a, b])
    z_hats, samples = [], []
    for seed in range(30):  # resampling at every step (threshold 1) keeps the estimator of Z unbiased
        res = smc_sample(
            fk, 500, (2,), steps=100, cfg=CFG, ess_threshold=1.0, generator=torch.Generator().manual_seed(seed)
        )
        z_hats.append(math.exp(res.log_z))
        samples.append(res.resampled(torch.Generator().manual_seed(seed)))
    z_hats = torch.tensor(z_hats)
    se = z_hats.std() / math.sqrt(len(z_hats))
    assert abs(z_hats.mean() - math.exp(log_z)) < 3 * se + 0.02 * math.exp(log_z)
    x = torch.cat(samples)
    torch.testing.assert_close(x.mean(0), exact.mean(), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), exact.covariance(), atol=0.05, rtol=0)


def test_low_temperature_smc_beats_score_scaling():
    gm = GaussianMixture(
        torch.tensor([[-1.0, 0.0], [1.2, 0.3], [0.0, 1.5]]),
        torch.tensor([0.4, 0.6, 0.5]),
        torch.tensor([0.2, 0.5, 0.3]),
    )
    exact, _ = at_sigma_min(gm).power(2)
    fk = FeynmanKac([gm], betas=[2.0])
    gen = torch.Generator().manual_seed(0)
    smc = smc_sample(fk, 3000, (2,), steps=100, cfg=CFG, generator=gen).resampled(gen)
    naive = reverse_diffusion(fk, 3000, (2,), steps=100, cfg=CFG, generator=gen)
    ref = exact.sample(3000, gen)
    mmd_smc, mmd_naive = mmd_rbf(smc, ref), mmd_rbf(naive, ref)
    assert mmd_smc < 0.25 * mmd_naive and mmd_smc < 5e-3, (mmd_smc, mmd_naive)


def test_mala_leaves_the_target_invariant():
    gm = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.3, 0.5]), torch.tensor([0.3, 0.7]))
    sigma = 0.3
    noisy = GaussianMixture(gm.means, (gm.stds**2 + sigma**2).sqrt(), gm.weights)
    gen = torch.Generator().manual_seed(0)
    x0 = noisy.sample(4000, gen)
    x, acc = mala(FeynmanKac([gm]), x0, sigma, step=0.05, n_steps=30, generator=gen)
    assert 0.3 < acc < 1.0
    assert (x - x0).abs().mean() > 0.1  # the chain moved
    torch.testing.assert_close(x.mean(0), noisy.mean(), atol=0.04, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), noisy.covariance(), atol=0.06, rtol=0)


def test_mala_with_a_wrong_step_density_would_drift():
    # Sanity of the test above: unadjusted Langevin with a large step visibly inflates the variance.
    gm = GaussianMixture(torch.zeros(1, 2), 0.5)
    fk = FeynmanKac([gm])
    gen = torch.Generator().manual_seed(0)
    x = gm.sample(4000, gen)
    for _ in range(30):
        _, grad = fk.log_gamma(x, 0.0)
        x = x + 0.2 * grad + math.sqrt(0.4) * torch.randn(x.shape, generator=gen)
    assert torch.cov(x.T).diagonal().mean() > 1.2 * 0.25
    y, _ = mala(fk, gm.sample(4000, gen), 0.0, step=0.2, n_steps=30, generator=gen)
    assert torch.cov(y.T).diagonal().mean() == pytest.approx(0.25, rel=0.1)


def test_bounded_generation_stays_in_the_box():
    gm = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.4)
    fk = FeynmanKac([gm], log_potential=box_log_potential(torch.tensor([0.0, -5.0]), torch.tensor([5.0, 5.0])))
    gen = torch.Generator().manual_seed(0)
    x = smc_sample(fk, 1000, (2,), steps=100, cfg=CFG, generator=gen).resampled(gen)
    assert (x[:, 0] > -0.08).float().mean() > 0.99


def test_bad_inputs():
    gm = GaussianMixture(torch.zeros(1, 2), 0.5)
    with pytest.raises(ValueError, match="beta"):
        FeynmanKac([gm], betas=[0.0])
    with pytest.raises(ValueError, match="at least 2 particles"):
        smc_sample(FeynmanKac([gm]), 1, (2,))
    with pytest.raises(ValueError, match="resampling"):
        smc_sample(FeynmanKac([gm]), 4, (2,), resampling="magic")

    class NaNEnergy:
        def energy(self, x, sigma):
            return x.sum(1) * float("nan")

    with pytest.raises(FloatingPointError, match="NaN"):
        smc_sample(FeynmanKac([NaNEnergy()]), 4, (2,), steps=3)

    class WrongShape:
        def energy(self, x, sigma):
            return x

    with pytest.raises(ValueError, match="shape"):
        smc_sample(FeynmanKac([WrongShape()]), 4, (2,), steps=3)


def test_weights_switched_off_below_weight_min_sigma_reduce_to_reverse_diffusion():
    # Above σ_max nothing is reweighted: SMC must then be exactly the guided reverse diffusion (same noise).
    a, b = _pair()
    fk = FeynmanKac([a, b])
    res = smc_sample(
        fk, 300, (2,), steps=40, cfg=CFG, weight_min_sigma=2 * CFG.sigma_max, generator=torch.Generator().manual_seed(3)
    )
    ref = reverse_diffusion(fk, 300, (2,), steps=40, cfg=CFG, generator=torch.Generator().manual_seed(3))
    assert res.ess == [] and res.resampled_at == []
    torch.testing.assert_close(res.samples, ref)
    # Switching weights off only below a small σ keeps the product target (exact energies).
    exact, _ = at_sigma_min(a).product(at_sigma_min(b))
    part = smc_sample(
        fk, 2000, (2,), steps=100, cfg=CFG, weight_min_sigma=0.05, generator=torch.Generator().manual_seed(4)
    ).resampled(torch.Generator().manual_seed(5))
    assert mmd_rbf(part, exact.sample(2000, torch.Generator().manual_seed(6))) < 0.01
