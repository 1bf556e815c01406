"""The Kolmogorov residual, Stein identity, sampler and importance weights against exact enumeration."""

import math

import pytest
import torch

from dnfs.exact import ExactRates, enumerate_states, exact_log_prob_table, exact_log_z, exact_marginals, state_index
from dnfs.kolmogorov import GeometricPath, control_variate, kolmogorov_residual, stein_term, xi
from dnfs.metrics import effective_sample_size, log_partition, magnetisation, weighted_mean
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.sampler import default_times, euler_step_probs, simulate
from dnfs.targets import LatticeIsing


def exact_dt_log_z(path, t):
    """∂_t log Z_t = E_{p_t}[log ρ − log η] by enumeration."""
    a = exact_log_prob_table(path.target) - path.log_eta
    return float((torch.softmax(t * a, 0) * a).sum())


@pytest.mark.parametrize("which", ["ising3", "random_target"])
@pytest.mark.parametrize("t", [0.0, 0.37, 1.0])
def test_residual_vanishes_for_exact_rates(which, t, request):
    path = GeometricPath(request.getfixturevalue(which).double())
    rates = ExactRates(path)
    xs = enumerate_states(path.dim, path.num_states)
    tt = torch.full((xs.shape[0],), t, dtype=torch.float64)
    g = rates.table(t)
    delta = kolmogorov_residual(g, xs, tt, path, exact_dt_log_z(path, t))
    assert delta.abs().max() < 2e-6  # float32 target tables
    # ... and a wrong rate matrix (G scaled by 2) does not solve the equation
    assert kolmogorov_residual(2 * g, xs, tt, path, exact_dt_log_z(path, t)).abs().max() > 1e-2


def test_exact_rates_are_locally_equivariant(random_target):
    path = GeometricPath(random_target.double())
    g = ExactRates(path).table(0.6)
    xs = enumerate_states(3, 3)
    for i in range(3):
        for tau in range(3):
            y = xs.clone()
            y[:, i] = tau
            assert torch.allclose(g[:, i, tau], -g[state_index(y, 3), i, xs[:, i]], atol=1e-12)


def test_stein_identity_holds_for_any_locally_equivariant_rates(ising3_path):
    """E_{p_t}[Σ [G]_+ − r [−G]_+] = 0 exactly under p_t, for a random (untrained) LE network."""
    torch.manual_seed(0)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=16)).double()
    xs = enumerate_states(9, 2)
    logp = exact_log_prob_table(ising3_path.target)
    for t in (0.2, 0.9):
        tt = torch.full((512,), t, dtype=torch.float64)
        with torch.no_grad():
            s = stein_term(model(xs, tt), ising3_path.log_ratio(xs, tt).double(), xs)
        p = torch.softmax(t * logp, 0)
        assert s.abs().mean() > 1e-2  # not trivially zero pointwise
        assert abs(float((p * s).sum())) < 1e-5
        # hence c_t = E_{p_t}[ξ_t] equals ∂_t log Z_t
        with torch.no_grad():
            v = xi(model(xs, tt), xs, tt, ising3_path)
        assert float((p * v).sum()) == pytest.approx(exact_dt_log_z(ising3_path, t), abs=1e-4)


def test_control_variate_is_the_per_time_mean():
    vals = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0])
    idx = torch.tensor([0, 0, 0, 2, 2])
    c = control_variate(vals, idx, 3)
    assert torch.allclose(c, torch.tensor([2.0, 0.0, 15.0]))
    # c minimises the squared residual at each time index
    for shift in (-0.1, 0.1):
        assert ((vals - (c + shift)[idx]) ** 2).sum() > ((vals - c[idx]) ** 2).sum()


def test_euler_step_probabilities_are_valid_distributions():
    g = torch.tensor([[[0.0, 3.0, -1.0], [0.5, 0.0, 0.2]]])
    x = torch.tensor([[0, 1]])
    p = euler_step_probs(g, x, 0.1)
    assert torch.allclose(p.sum(-1), torch.ones(1, 2))
    assert torch.allclose(p[0, 0], torch.tensor([0.7, 0.3, 0.0]))
    assert torch.allclose(p[0, 1], torch.tensor([0.05, 0.93, 0.02]))
    big = euler_step_probs(g, x, 10.0)  # Σ rates·dt > 1: no negative stay-probability
    assert torch.all(big >= 0) and torch.allclose(big.sum(-1), torch.ones(1, 2))


def test_exact_rates_give_unit_ess_and_the_exact_log_z(ising3):
    path = GeometricPath(ising3)
    res = simulate(ExactRates(path), path, 2000, default_times(100), generator=torch.Generator().manual_seed(0))
    assert effective_sample_size(res.log_weights) > 0.9999
    # left Riemann sum of ∂_t log Z over 100 steps: O(dt) error
    assert log_partition(res.log_weights)["log_mean_exp"] == pytest.approx(exact_log_z(ising3), abs=0.05)


def test_sampler_with_exact_rates_reaches_the_target_distribution(random_target):
    path = GeometricPath(random_target)
    n = 20000
    res = simulate(ExactRates(path), path, n, default_times(200), generator=torch.Generator().manual_seed(1))
    emp = torch.bincount(state_index(res.samples, 3), minlength=27).double() / n
    exact = torch.softmax(exact_log_prob_table(random_target), 0)
    assert 0.5 * (emp - exact).abs().sum() < 0.04


def test_importance_weights_correct_an_untrained_sampler():
    """Random (poor) LE rates: the weighted log Z and magnetisation still match the exact values."""
    target = LatticeIsing(3, sigma=0.1, bias=0.1)
    torch.manual_seed(0)
    path = GeometricPath(target)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=16))
    with torch.no_grad():
        model.output_layer.ommega_embedder.embedding.mul_(0.3)
    res = simulate(model, path, 6000, default_times(60), generator=torch.Generator().manual_seed(2))
    ess = effective_sample_size(res.log_weights)
    assert 0.02 < ess < 0.9
    assert log_partition(res.log_weights)["log_mean_exp"] == pytest.approx(exact_log_z(target), abs=0.1)
    mag = weighted_mean(2.0 * res.samples.double() - 1, res.log_weights)
    exact_mag = 2 * exact_marginals(target)[:, 1] - 1
    assert torch.allclose(mag, exact_mag, atol=0.1)
    unweighted = (2.0 * res.samples.double() - 1).mean(0)
    assert (unweighted - exact_mag).abs().mean() > 2 * (mag - exact_mag).abs().mean()


def test_ess_and_log_z_by_hand():
    lw = torch.log(torch.tensor([1.0, 1.0, 2.0]))
    assert effective_sample_size(lw) == pytest.approx(16 / 18)
    est = log_partition(lw)
    assert est["log_mean_exp"] == pytest.approx(math.log(4 / 3))
    assert est["mean_log"] == pytest.approx(math.log(2) / 3)
    with pytest.raises(FloatingPointError):
        effective_sample_size(torch.tensor([0.0, float("nan")]))
    # weights 1/4, 3/4 on mean spins +1 (all up) and 0 (one up, one down): 1/4
    spins = torch.tensor([[1, 1], [0, 1]])
    assert magnetisation(spins, torch.log(torch.tensor([1.0, 3.0]))) == pytest.approx(0.25)
