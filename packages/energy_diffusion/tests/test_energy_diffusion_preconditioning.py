"""EDM Table 1 preconditioning at hand-computed points (a c_noise mutant passed the other tests)."""

import math

import torch

from energy_diffusion.edm import preconditioning


def test_edm_preconditioning_hand_values():
    """σ_data = ½; σ = 1: c_skip = ¼/(5/4) = 0.2, c_out = ½/√(5/4), c_in = 1/√(5/4), c_noise = ¼·ln 1 = 0;
    σ = e²: c_noise = ¼·2 = ½."""
    sigma = torch.tensor([1.0, math.exp(2.0)], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = preconditioning(sigma, 0.5)
    torch.testing.assert_close(c_skip[0].item(), 0.2)
    torch.testing.assert_close(c_out[0].item(), 0.5 / math.sqrt(1.25))
    torch.testing.assert_close(c_in[0].item(), 1 / math.sqrt(1.25))
    torch.testing.assert_close(c_noise, torch.tensor([0.0, 0.5], dtype=torch.float64))
