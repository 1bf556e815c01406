import pytest
import torch

from dnfs.kolmogorov import GeometricPath
from dnfs.targets import CallableTarget, DiscreteTarget, LatticeIsing, LatticePotts, lattice_adjacency


def brute_force_ratio(target, x):
    return DiscreteTarget.neighbour_log_ratio(target, x)


def test_lattice_adjacency_is_a_periodic_4_regular_graph():
    a = lattice_adjacency(4)
    assert torch.equal(a, a.T) and a.diagonal().abs().sum() == 0
    assert torch.all(a.sum(1) == 4)
    assert a[0, 1] == 1 and a[0, 3] == 1 and a[0, 4] == 1 and a[0, 12] == 1 and a[0, 5] == 0
    with pytest.raises(ValueError, match="side >= 3"):
        lattice_adjacency(2)


def test_ising_log_prob_matches_hand_computation():
    t = LatticeIsing(3, sigma=0.1, bias=0.2)
    ones = torch.ones(1, 9, dtype=torch.long)  # all spins +1: 18 edges, counted twice
    assert torch.allclose(t.log_prob(ones), torch.tensor([0.1 * 36 + 0.2 * 9]))
    assert t.beta == pytest.approx(0.2)


@pytest.mark.parametrize(
    "target", [LatticeIsing(3, 0.3, -0.2), LatticePotts(3, 4, 0.25, torch.tensor([0.3, 0, -0.1, 0.2]))]
)
def test_closed_form_neighbour_ratios_match_brute_force(target):
    x = torch.randint(0, target.num_states, (6, target.dim), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(target.neighbour_log_ratio(x), brute_force_ratio(target, x), atol=1e-5)
    assert torch.all(target.neighbour_log_ratio(x).gather(-1, x[..., None]) == 0)


def test_potts_with_two_states_is_an_ising_model_up_to_a_constant():
    potts, ising = LatticePotts(3, 2, sigma=0.4), LatticeIsing(3, sigma=0.2)
    x = torch.randint(0, 2, (10, 9), generator=torch.Generator().manual_seed(1))
    diff = potts.log_prob(x) - ising.log_prob(x)
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-5)


def test_callable_target_and_path_log_ratio(random_target):
    x = torch.randint(0, 3, (4, 3))
    path = GeometricPath(random_target)
    t = torch.tensor([0.0, 0.5, 1.0, 0.25])
    lr = path.log_ratio(x, t)
    assert torch.allclose(lr, t[:, None, None] * random_target.neighbour_log_ratio(x))
    assert torch.all(lr[0] == 0)


def test_bad_states_and_nan_targets_raise_clear_errors():
    t = LatticeIsing(3)
    with pytest.raises(TypeError, match="integer"):
        t.log_prob(torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        t.log_prob(torch.full((2, 9), 2))
    with pytest.raises(ValueError, match="coordinates"):
        t.log_prob(torch.zeros(2, 8, dtype=torch.long))
    nan = CallableTarget(lambda x: torch.full((x.shape[0],), float("nan")), dim=2, num_states=2)
    with pytest.raises(FloatingPointError, match="NaN"):
        nan.log_prob(torch.zeros(1, 2, dtype=torch.long))
    posinf = CallableTarget(lambda x: torch.where(x[:, 0] == 1, float("inf"), 0.0), dim=2, num_states=2)
    with pytest.raises(FloatingPointError, match=r"\+inf"):
        posinf.neighbour_log_ratio(torch.zeros(1, 2, dtype=torch.long))  # the neighbour x_0 = 1 is +inf
    forbidden = CallableTarget(lambda x: torch.where(x[:, 0] == 1, float("-inf"), 0.0), dim=2, num_states=2)
    assert torch.isneginf(forbidden.neighbour_log_ratio(torch.zeros(1, 2, dtype=torch.long))[0, 0, 1])
    wrong = CallableTarget(lambda x: x.float(), dim=2, num_states=2)
    with pytest.raises(ValueError, match="shape"):
        wrong.log_prob(torch.zeros(3, 2, dtype=torch.long))
