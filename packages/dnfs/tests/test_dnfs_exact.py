"""Ferdinand–Fisher closed form against the paper's numbers and against brute-force enumeration."""

import math

import pytest
import torch

from dnfs.exact import (
    enumerate_states,
    exact_log_prob_table,
    exact_log_z,
    exact_marginals,
    ferdinand_fisher,
    transfer_matrix_ising,
)
from dnfs.metrics import ising_thermodynamics
from dnfs.targets import LatticeIsing


def test_ferdinand_fisher_reproduces_the_reference_10x10_values():
    ff = ferdinand_fisher(2 * 0.1, 10)
    assert ff["free_energy"] == pytest.approx(-3.6727, abs=1e-4)
    assert ff["internal_energy"] == pytest.approx(-0.4282, abs=1e-4)
    assert ff["entropy"] == pytest.approx(0.6489, abs=1e-4)


@pytest.mark.parametrize("sigma", [0.1, 0.22305, 0.4])
def test_ferdinand_fisher_equals_enumeration_on_4x4(sigma):
    target = LatticeIsing(4, sigma=sigma, dtype=torch.float64)
    ff = ferdinand_fisher(2 * sigma, 4)
    assert ff["log_z"] == pytest.approx(exact_log_z(target), abs=1e-9)
    # internal energy and entropy from exact weights w ∝ ρ through the same estimator the sampler uses
    lp = exact_log_prob_table(target)
    thermo = ising_thermodynamics(lp, lp, 2 * sigma, 16, estimator="log_mean_exp")
    log_z_shift = 16 * math.log(2)  # log_mean_exp over the 2^16 enumerated states = log Z − log 2^16
    assert thermo["internal_energy"] == pytest.approx(ff["internal_energy"], abs=1e-9)
    assert thermo["free_energy"] == pytest.approx(-(ff["log_z"] - log_z_shift) / (2 * sigma) / 16, abs=1e-9)


def test_enumeration_order_and_size():
    xs = enumerate_states(3, 2)
    assert xs.shape == (8, 3) and xs[5].tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="too many"):
        enumerate_states(40, 2)


@pytest.mark.parametrize(("sigma", "bias"), [(0.15, 0.2), (0.3, -0.1)])
def test_transfer_matrix_equals_enumeration_with_a_field(sigma, bias):
    target = LatticeIsing(4, sigma=sigma, bias=bias, dtype=torch.float64)
    tm = transfer_matrix_ising(sigma, bias, 4)
    assert tm["log_z"] == pytest.approx(exact_log_z(target), abs=1e-9)
    assert tm["magnetisation"] == pytest.approx(float((2 * exact_marginals(target)[:, 1] - 1).mean()), abs=1e-9)


def test_transfer_matrix_equals_ferdinand_fisher_at_zero_field():
    tm, ff = transfer_matrix_ising(0.22305, 0.0, 10), ferdinand_fisher(0.4461, 10)
    assert tm["log_z"] == pytest.approx(ff["log_z"], abs=1e-8)
    assert tm["internal_energy"] == pytest.approx(ff["internal_energy"], abs=1e-8)
