"""The k3 KL term of the coupled-GRPO loss at a hand-computed point (a direction mutant passed the suite)."""

import math

import pytest
import torch

from diffucoder.coupled_grpo import coupled_grpo_loss


def test_k3_estimates_kl_of_policy_from_reference():
    """π(o) = 1, π_ref(o) = ½: k3 = r − ln r − 1 with r = π_ref/π = ½ → ½ + ln 2 − 1 = 0.19315 (the other
    direction, r = 2, would give 1 − ln 2 = 0.30685). Zero advantage and ratio 1 leave only β·k3."""
    logp = torch.zeros(1, 2)
    ref = torch.full((1, 2), math.log(0.5))
    loss, stats = coupled_grpo_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), ref, beta=1.0)
    assert loss.item() == pytest.approx(0.5 + math.log(2) - 1, abs=1e-6)
    assert stats["kl"] == pytest.approx(0.5 + math.log(2) - 1, abs=1e-6)


def test_clipped_surrogate_hand_values():
    """ε = ½ both sides. Row 0: ratio 2, A = +1 → min(2, 1.5) = 1.5; row 1: ratio ¼, A = −1 → min(−¼, −½) = −½.
    Loss = mean of −min(...) = (−1.5 + 0.5)/2 = −0.5; both rows are in the clipped region."""
    old = torch.zeros(2, 1)
    logp = torch.tensor([[math.log(2.0)], [math.log(0.25)]])
    loss, stats = coupled_grpo_loss(logp, old, torch.tensor([1.0, -1.0]), torch.ones(2, 1), beta=0.0)
    assert loss.item() == pytest.approx(-0.5, abs=1e-6)
    assert stats["clip_ratio"] == 1.0
