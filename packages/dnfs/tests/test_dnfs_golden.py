"""Golden outputs of the authors' DNFS code (``golden/make_golden.py``; commit in the JSON).

Always runs: the authors' rate-network weights go through ``load_official_state_dict`` and every value is
compared in float32 on CPU: rates, target values and step probabilities with ``atol=rtol=1e-5``; the
importance-weight increment, the loss and the control variate (sums over D·S Stein terms times ρ-ratios
up to e^5) with ``rtol=1e-5, atol=1e-4``.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dnfs.kolmogorov import GeometricPath, control_variate, stein_term, xi
from dnfs.sampler import euler_step_probs
from dnfs.targets import LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer, load_official_state_dict

GOLDEN = Path(__file__).parent / "golden"
EX = load_file(GOLDEN / "dnfs_golden.safetensors")
META = json.loads((GOLDEN / "dnfs_golden.json").read_text())


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol)


def authors_model(name):
    model = LocallyEquivariantTransformer(LETransformerConfig(**META["models"][name]))
    state = {k: v.float() for k, v in load_file(GOLDEN / f"{name}.safetensors").items()}
    return load_official_state_dict(model, state).eval()


@pytest.fixture(scope="module")
def path():
    ising = META["ising"]
    return GeometricPath(LatticeIsing(ising["dim"], sigma=ising["init_sigma"], bias=ising["init_bias"]))


def test_official_commit_is_recorded():
    assert len(META["official_commit"]) == 40


@torch.no_grad()
@pytest.mark.parametrize("name", list(META["models"]))
def test_rate_matrix_matches_the_authors(name):
    close(authors_model(name)(EX[f"{name}/x"], EX[f"{name}/t"]), EX[f"{name}/G"])


def test_ising_target_matches_the_authors(path):
    x, t = EX["target/x"], EX["target/t"]
    close(path.target.adjacency, EX["target/adjacency"])
    close(path.target.log_prob(x), EX["target/log_prob"])
    close(path.log_ratio(x, t), EX["target/log_ratio"])


@torch.no_grad()
def test_step_probabilities_and_weight_increments_match_the_authors(path):
    model, x, w0 = authors_model("ising"), EX["target/x"], EX["step/w0"]
    for i, (t0, t1) in enumerate(META["steps"]):
        t = torch.full((len(x),), t0)
        g = model(x, t)
        probs = EX[f"step/{i}/probs"]
        close(euler_step_probs(g, x, t1 - t0), probs / probs.sum(-1, keepdim=True))  # Categorical normalises
        increment = (t1 - t0) * (path.dt_log_unnormalised(x) + stein_term(g, path.log_ratio(x, t), x))
        close(w0 + increment, EX[f"step/{i}/weights"], atol=1e-4)


def test_loss_matches_the_authors(path):
    trainer = DNFSTrainer(authors_model("ising"), path, TrainConfig(num_times=META["num_times"]))
    trainer.c_t = EX["loss/c_t"]
    k = EX["loss/k"]
    with torch.no_grad():
        close(trainer.loss(EX["target/x"], trainer.times[k], k), EX["loss/value"][0], atol=1e-4)


@torch.no_grad()
def test_control_variate_matches_the_authors(path):
    x, t, k = EX["cv/x"], EX["cv/t"], EX["cv/k"]
    values = xi(authors_model("ising")(x, t), x, t, path, clamp_log_ratio=TrainConfig().clamp_log_ratio)
    close(control_variate(values, k, META["num_times"]), EX["cv/dt_log_Zt"], atol=1e-4)
