"""Issue #23: evaluate's U is the exact one's quantity; exact refuses what it cannot compute; counts are validated."""

import json
import math

import pytest
import torch

import dnfs.__main__ as cli
from dnfs.exact import enumerate_states, exact_log_prob_table, transfer_matrix_ising
from dnfs.kolmogorov import GeometricPath
from dnfs.metrics import ising_thermodynamics
from dnfs.sampler import SampleResult, default_times, simulate
from dnfs.targets import LatticeIsing

SIGMA, BIAS, SIDE = 0.2, 0.3, 3


def _enumerated(target):
    """Every state with weight ∝ ρ: the weighted estimators become exact expectations."""
    return enumerate_states(target.dim, 2), exact_log_prob_table(target)


def test_thermodynamics_with_a_field_matches_the_transfer_matrix():
    target = LatticeIsing(SIDE, SIGMA, BIAS, dtype=torch.float64)
    x, lp = _enumerated(target)
    field = (2.0 * x.double() - 1) @ target.bias
    thermo = ising_thermodynamics(lp, lp, 2 * SIGMA, 9, estimator="log_mean_exp", field_log_rho=field)
    exact = transfer_matrix_ising(SIGMA, BIAS, SIDE)
    assert thermo["internal_energy"] == pytest.approx(exact["internal_energy"], abs=1e-9)
    # S = β(U_coupling + U_field − F): the entropy keeps the field energy
    free = -(exact["log_z"] - 9 * math.log(2)) / (2 * SIGMA) / 9
    u_field = -float((torch.softmax(lp, 0) * field).sum()) / (2 * SIGMA) / 9
    assert thermo["entropy"] == pytest.approx(2 * SIGMA * (exact["internal_energy"] + u_field - free), abs=1e-9)


def test_cli_evaluate_prints_the_estimated_and_exact_internal_energy_of_the_same_quantity(monkeypatch, capsys):
    target = LatticeIsing(SIDE, SIGMA, BIAS, dtype=torch.float64)
    x, lp = _enumerated(target)
    spec = {"target": "ising", "side": SIDE, "sigma": SIGMA, "bias": BIAS, "states": 2}
    monkeypatch.setattr(cli, "_weighted_run", lambda a: (SampleResult(x, lp), GeometricPath(target), spec))
    cli.main(["evaluate", "--model", "unused", "--device", "cpu"])
    out = json.loads(capsys.readouterr().out)
    assert out["internal_energy"] == pytest.approx(out["exact"]["internal_energy"], abs=1e-9)


def test_exact_refuses_potts_and_sizes_it_cannot_enumerate(capsys):
    with pytest.raises(SystemExit, match="--target ising only"):
        cli.main(["exact", "--target", "potts", "--side", "4"])
    with pytest.raises(SystemExit, match="--side <= 12.*--bias 0"):
        cli.main(["exact", "--side", "20", "--bias", "0.2"])
    assert capsys.readouterr().out == ""
    cli.main(["exact", "--side", "20", "--bias", "0"])  # Ferdinand-Fisher has no size limit
    assert set(json.loads(capsys.readouterr().out)) == {"ferdinand_fisher"}


@pytest.mark.parametrize("argv", [["evaluate", "--model", "m", "--steps", "0"], ["sample", "--model", "m", "--out",
                                  "s.pt", "--steps", "-1"], ["evaluate", "--model", "m", "--num", "0"]])
def test_cli_refuses_zero_or_negative_counts(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and f"argument {argv[-2]}: must be a positive integer" in capsys.readouterr().err


def test_simulate_refuses_a_grid_without_steps_and_zero_samples():
    path = GeometricPath(LatticeIsing(SIDE, SIGMA, BIAS))
    with pytest.raises(ValueError, match="num_steps"):
        default_times(0)
    with pytest.raises(ValueError, match="times must be a grid from 0 to 1"):
        simulate(None, path, 4, torch.zeros(1))
    with pytest.raises(ValueError, match="num_samples"):
        simulate(None, path, 0, default_times(4))
