"""Hand-computed values for the schedule, the unmasking probability and the three divergences
(mutants of each passed the other tests)."""

import math

import pytest
import torch

from tcsm.losses import distribution_tcsm
from tcsm.noise import MaskedProcess, Schedule


def test_cosine_schedule_value_derivative_and_elbo_weight():
    """κ_t = 1 − cos(πt/2): at t = ½, κ = 1 − √½ = 0.29289, κ' = (π/2)·sin(π/4) = 1.11072, κ'/(1 − κ) = π/2."""
    s, t = Schedule("cosine"), torch.tensor([0.5])
    torch.testing.assert_close(s.kappa(t), torch.tensor([0.2928932]))
    torch.testing.assert_close(s.dkappa(t), torch.tensor([1.1107207]))
    torch.testing.assert_close(s.elbo_weight(t), torch.tensor([1.5707963]))
    torch.testing.assert_close(Schedule("linear").elbo_weight(t), torch.tensor([2.0]))  # 1 / (1 − ½)


def test_unmasking_probability_is_kappa_increment_over_masked_mass():
    """Step t = ½ → s = ¾ (linear): each masked token is revealed w.p. (¾ − ½)/(1 − ½) = ½."""
    proc = MaskedProcess(vocab_size=3)
    xt = torch.full((4, 5000), proc.mask_id)
    logp = torch.full((4, 5000, 3), -math.log(3))
    out = proc.reverse_step(xt, logp, torch.full((4,), 0.5), torch.full((4,), 0.75), torch.Generator().manual_seed(0))
    revealed = (out != proc.mask_id).float().mean().item()
    assert revealed == pytest.approx(0.5, abs=0.01)  # 20000 draws: std 0.0035


@pytest.mark.parametrize(
    "divergence,expected",
    [
        ("kl", 0.5108256),  # KL(target ‖ model) = ½ln(½/0.9) + ½ln(½/0.1)
        ("rkl", 0.3680642),  # KL(model ‖ target) = 0.9 ln(0.9/½) + 0.1 ln(0.1/½)
        ("js", 0.1017492),  # ½KL(target ‖ m) + ½KL(model ‖ m), m = (0.7, 0.3)
    ],
)
def test_divergences_on_hand_computed_distributions(divergence, expected):
    target = torch.tensor([0.5, 0.5]).log().view(1, 1, 2)
    model = torch.tensor([0.9, 0.1]).log().view(1, 1, 2)
    positions = torch.tensor([[True]])
    got = distribution_tcsm(model, torch.zeros(1, 1, dtype=torch.long), positions, divergence, target)
    torch.testing.assert_close(got, torch.tensor([expected]))
