"""Numerical agreement with the authors' first commit (m-crabb/DNFS), when a copy is available.

The reference is not vendored: set ``DNFS_REFERENCE`` to a directory holding the authors' ``model.py``,
``kolmo_utils.py`` and ``main.py`` (they need ``einops``) to run these tests (skipped otherwise, e.g. in CI).
"""

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dnfs.kolmogorov import stein_term
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.sampler import euler_step_probs
from dnfs.train import DNFSTrainer, TrainConfig
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer, load_official_state_dict

REFERENCE = os.environ.get("DNFS_REFERENCE")
pytestmark = pytest.mark.skipif(
    not REFERENCE, reason="set DNFS_REFERENCE to a checkout of m-crabb/DNFS to compare with the authors' model"
)


def reference_file(name: str):
    pytest.importorskip("einops", reason="the authors' code imports einops")
    path = Path(REFERENCE) / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path} not found")
    spec = importlib.util.spec_from_file_location(f"dnfs_reference_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
@pytest.mark.parametrize("dim,states,blocks,layers", [(9, 2, 3, 1), (7, 3, 2, 2)])
def test_authors_model_and_ours_give_the_same_rates(dim, states, blocks, layers):
    torch.manual_seed(0)
    kw = dict(data_dim=dim, vocab_size=states, hidden_dim=32, head_dim=8, num_blocks=blocks, layers_per_block=layers)
    ref = reference_file("model").LEquiTFRtModel(**kw).eval()
    ours = load_official_state_dict(LocallyEquivariantTransformer(LETransformerConfig(**kw)), ref.state_dict()).eval()
    x = torch.randint(0, states, (16, dim))
    t = torch.rand(16)
    expected = ref(x, t)
    assert expected.abs().mean() > 1e-3
    torch.testing.assert_close(ours(x, t), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_euler_step_and_weight_increment_match_the_authors(ising3_path):
    """``kolmo_utils.make_forward_step_probs_with_weight_updating``: same jump probabilities and ``dt·ξ_t``."""

    kolmo = reference_file("kolmo_utils")
    path = ising3_path
    torch.manual_seed(0)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=16)).eval()
    with torch.no_grad():
        model.output_layer.ommega_embedder.embedding.mul_(5)  # rates large enough that some dt·R exceed 1
    target = SimpleNamespace(get_diff_log_prob=lambda x, t: path.log_ratio(x, t))
    args = SimpleNamespace(device="cpu", vocab_size=2)
    x = path.sample_initial(64, generator=torch.Generator().manual_seed(1))
    w0 = torch.randn(64)
    for t0, t1 in ((0.0, 0.25), (0.5, 0.6)):
        probs, w = kolmo.make_forward_step_probs_with_weight_updating(
            w0.clone(), t0, t1, x, model, lambda y, t: path.dt_log_unnormalised(y), target, args
        )
        tt = torch.full((64,), t0)
        g = model(x, tt)
        ours = euler_step_probs(g, x, t1 - t0)
        torch.testing.assert_close(ours, probs / probs.sum(-1, keepdim=True), atol=1e-6, rtol=0)  # Categorical norm.
        increment = (t1 - t0) * (path.dt_log_unnormalised(x) + stein_term(g, path.log_ratio(x, tt), x))
        torch.testing.assert_close(w0 + increment, w, atol=1e-4, rtol=1e-6)


def test_training_loss_matches_the_authors_compute_loss(ising3_path, monkeypatch):
    """``main.compute_loss`` (clamped log-ratio, nan_to_num, squared residual) equals ``DNFSTrainer.loss``."""

    # main.py imports wandb and igraph-based ising_models, unused by compute_loss: stand-ins for this test only
    monkeypatch.setitem(sys.modules, "wandb", SimpleNamespace())
    monkeypatch.setitem(sys.modules, "ising_models", SimpleNamespace(load_ising_models=None))
    monkeypatch.setitem(sys.modules, "model", reference_file("model"))
    monkeypatch.setitem(sys.modules, "kolmo_utils", reference_file("kolmo_utils"))
    main = reference_file("main")
    path = ising3_path
    torch.manual_seed(0)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=16))
    trainer = DNFSTrainer(model, path, TrainConfig(num_times=9))
    trainer.c_t = torch.randn(9)
    x = path.sample_initial(32, generator=torch.Generator().manual_seed(2))
    k = torch.randint(0, 9, (32,))
    t = trainer.times[k]
    target = SimpleNamespace(get_diff_log_prob=lambda y, tt: path.log_ratio(y, tt))
    ref = main.compute_loss(model, x, t, trainer.c_t[k], lambda y, tt: path.dt_log_unnormalised(y), target)
    torch.testing.assert_close(trainer.loss(x, t, k), ref, atol=1e-4, rtol=1e-5)
