import math
from itertools import combinations

import pytest
import torch

from labcore.metrics import bits_per_dim, mean_pass_at_k, pass_at_k


def test_bits_per_dim_hand_computed():
    # 3 dims, nll 3*ln2 nats -> exactly 1 bit per dim
    assert bits_per_dim(3 * math.log(2), 3).item() == pytest.approx(1.0)


def test_bits_per_dim_with_bin_width_is_8_bits_for_uniform_density():
    # Uniform density on [-1, 1]^D has log p = -D log 2; with 256 bins of width 2/256 every
    # bin has probability 1/256 -> exactly 8 bits per dimension.
    d = 12
    nll = d * math.log(2.0)
    assert bits_per_dim(nll, d, bin_width=2 / 256).item() == pytest.approx(8.0)


def test_bits_per_dim_vectorised_and_errors():
    out = bits_per_dim(torch.tensor([0.0, 2 * math.log(2)]), 2)
    assert torch.allclose(out, torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        bits_per_dim(1.0, 0)
    with pytest.raises(ValueError):
        bits_per_dim(1.0, 3, bin_width=0.0)


def _brute_pass_at_k(n, c, k):
    # probability that a random k-subset of n samples (c correct) contains a correct one
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 2), (6, 3, 4), (7, 7, 3), (8, 1, 8)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_1_is_fraction_correct_and_mean():
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    assert mean_pass_at_k([10, 10], [0, 10], 1) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
