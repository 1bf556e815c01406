"""Issue #23: the implied denoiser differentiates correctly by default; samplers refuse energies from another
noise schedule; no "log Z" is reported when the weights stop early."""

import dataclasses

import pytest
import torch

from energy_diffusion.edm import TOY_EDM
from energy_diffusion.energy import MLPEnergy
from energy_diffusion.smc import FeynmanKac, SMCResult, reverse_diffusion, smc_sample, smc_summary


def _energy(sigma_data=0.5, dtype=torch.float32):
    torch.manual_seed(0)
    return MLPEnergy(2, hidden=16, depth=2, sigma_data=sigma_data).to(dtype)


def test_denoiser_jacobian_is_the_energy_hessian_not_the_identity():
    model = _energy(dtype=torch.float64)
    x, sigma = torch.randn(1, 2, dtype=torch.float64), torch.full((1,), 0.7, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: model(v, sigma)[0], x)[:, 0]  # create_graph left default
    h = 1e-6  # central differences of the denoiser itself
    steps = torch.eye(2, dtype=torch.float64)
    fd = torch.stack([(model(x + h * e, sigma) - model(x - h * e, sigma))[0] / (2 * h) for e in steps], 1)
    torch.testing.assert_close(jac, fd, atol=1e-6, rtol=1e-5)
    assert (jac - torch.eye(2, dtype=torch.float64)).abs().max() > 1e-3  # was exactly the identity
    with pytest.raises(ValueError, match="create_graph=False makes the denoiser's Jacobian the identity"):
        model(x.requires_grad_(True), sigma, create_graph=False)
    with torch.no_grad():  # sampling: no graph, no error
        assert model(x, sigma).requires_grad is False


def test_samplers_refuse_energies_trained_on_another_schedule():
    fk = FeynmanKac([_energy(0.5), _energy(0.5)])
    assert smc_sample(fk, 4, (2,), steps=2).samples.shape == (4, 2)
    for cfg, name in [(dataclasses.replace(TOY_EDM, sigma_data=1.0), "sigma_data")]:
        with pytest.raises(ValueError, match=f"energy #0 was trained with {name}=0.5 but cfg.{name}=1.0"):
            smc_sample(fk, 4, (2,), steps=2, cfg=cfg)
        with pytest.raises(ValueError, match=name):
            reverse_diffusion(fk, 4, (2,), steps=2, cfg=cfg)
    other = _energy(0.5)
    other.hub_info = {"sigma_max": 80.0}  # what from_pretrained keeps of a run trained with --sigma-max 80
    with pytest.raises(ValueError, match=r"energy #1 was trained with sigma_max=80.0 but cfg.sigma_max=10.0"):
        smc_sample(FeynmanKac([_energy(0.5), other]), 4, (2,), steps=2)


def test_smc_summary_reports_log_z_only_for_the_exact_feynman_kac_model():
    res = SMCResult(torch.zeros(2, 1), torch.zeros(2), -1.25, ess=[0.5])
    assert "log Z estimate -1.250" in smc_summary(res)
    line = smc_summary(res, weight_min_sigma=0.05)
    assert "-1.25" not in line and "no log Z estimate" in line and "not Z" in line
