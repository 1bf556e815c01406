"""Local equivariance, hollowness and checkpoint layout of the rate networks."""

import pytest
import torch

from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.io import load_rate_model, save_rate_model
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer, load_official_state_dict

D, S = 6, 3


def random_graph(n, seed=0):
    a = (torch.rand(n, n, generator=torch.Generator().manual_seed(seed)) > 0.5).float().triu(1)
    return a + a.T


def make(kind):
    torch.manual_seed(0)
    if kind == "transformer":
        return LocallyEquivariantTransformer(LETransformerConfig(D, S, hidden_dim=32, head_dim=8, num_blocks=2))
    if kind == "mlp":
        return LocallyEquivariantMLP(LEMLPConfig(D, S, hidden_dim=32))
    return LocallyEquivariantGraphTransformer(LEGraphConfig(D, S, hidden_dim=32, head_dim=8), random_graph(D))


KINDS = ["transformer", "mlp", "graph"]


@pytest.mark.parametrize("kind", KINDS)
def test_local_equivariance(kind):
    """G(τ, i | x) = −G(x_i, i | swap(x, i, τ)) for every i, τ."""
    model = make(kind).eval()
    x = torch.randint(0, S, (5, D), generator=torch.Generator().manual_seed(1))
    t = torch.rand(5)
    with torch.no_grad():
        g = model(x, t)
        assert g.abs().mean() > 1e-3
        assert torch.all(g.gather(-1, x[..., None]) == 0)
        for i in range(D):
            for tau in range(S):
                y = x.clone()
                y[:, i] = tau
                back = model(y, t)[torch.arange(5), i, x[:, i]]
                assert torch.allclose(g[:, i, tau], -back, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_hollow_but_sees_every_other_coordinate(kind):
    """h_i (hence G(·, i | x) + its value at x_i) ignores x_i; output i changes when x_j (j ≠ i) changes."""
    model = make(kind).eval()
    x = torch.randint(0, S, (1, D), generator=torch.Generator().manual_seed(2))
    t = torch.rand(1)
    with torch.no_grad():
        g = model(x, t)
        for j in range(D):
            y = x.clone()
            y[0, j] = (x[0, j] + 1) % S
            gy = model(y, t)
            # ω-differences: G(τ,i|x) − G(τ',i|x) = h_i·(ω_τ − ω_τ'), unchanged at i = j
            assert torch.allclose(g[0, j] - g[0, j, 0], gy[0, j] - gy[0, j, 0], atol=1e-5)
            others = [i for i in range(D) if i != j]
            assert (g[0, others] - gy[0, others]).abs().max() > 1e-6


def test_transformer_parameter_names_follow_the_authors_layout():
    keys = set(make("transformer").state_dict())
    for k in [
        "vocab_embedder.embedding",
        "time_embedder.mlp.0.weight",
        "fwd_blocks.0.pos_embed",
        "fwd_blocks.0.causal_attn_mask",
        "fwd_blocks.1.fwd_blocks.0.attention.qkv.weight",
        "bwd_blocks.0.fwd_blocks.0.mlp.main.2.bias",
        "readout.attn_q.weight",
        "readout.pos_embed",
        "readout.norm2.weight",
        "output_layer.ommega_embedder.embedding",
        "output_layer.norm_final.bias",
    ]:
        assert k in keys


def test_official_state_dict_round_trip_and_mismatch_errors():
    from labcore.checkpoint import CheckpointError

    src = make("transformer")
    dst = LocallyEquivariantTransformer(src.config)
    state = {"module." + k: v for k, v in src.state_dict().items()}  # DDP-prefixed keys are accepted
    load_official_state_dict(dst, state)
    x, t = torch.randint(0, S, (3, D)), torch.rand(3)
    assert torch.allclose(src(x, t), dst(x, t))
    wrong = LocallyEquivariantTransformer(LETransformerConfig(D + 1, S, 32, 8, src.config.num_blocks))
    with pytest.raises(CheckpointError, match="shape"):
        load_official_state_dict(wrong, src.state_dict())


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load(kind, tmp_path):
    model = make(kind)
    save_rate_model(model, tmp_path / kind)
    adj = random_graph(D) if kind == "graph" else None
    loaded = load_rate_model(tmp_path / kind, adjacency=adj)
    x, t = torch.randint(0, S, (3, D)), torch.rand(3)
    assert torch.allclose(model(x, t), loaded(x, t))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dnfs train"):
        load_rate_model(tmp_path)
    save_rate_model(make("mlp"), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_rate_model(tmp_path)


def test_bad_inputs_to_models():
    model = make("transformer")
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(2, D), torch.rand(2))
    with pytest.raises(ValueError, match="range"):
        model(torch.full((2, D), S), torch.rand(2))
    with pytest.raises(ValueError, match="t must"):
        model(torch.zeros(2, D, dtype=torch.long), torch.rand(3))
    with pytest.raises(ValueError, match="self-loops"):
        LocallyEquivariantGraphTransformer(LEGraphConfig(3), torch.eye(3))


def test_set_graph_gives_the_model_built_on_that_graph():
    model = make("graph")
    other = random_graph(D, seed=5)
    fresh = LocallyEquivariantGraphTransformer(model.config, other)
    fresh.load_state_dict(model.state_dict())
    x = torch.randint(0, S, (4, D), generator=torch.Generator().manual_seed(1))
    t = torch.rand(4, generator=torch.Generator().manual_seed(2))
    before = model(x, t)
    model.set_graph(other)
    torch.testing.assert_close(model(x, t), fresh(x, t), rtol=0, atol=0)
    assert (model(x, t) - before).abs().max() > 1e-4  # the graph (degrees, masks) really changed the rates
    model.to("meta").set_graph(random_graph(D, seed=6))  # a new graph lands on the model's device
    assert {b.device.type for b in model.buffers()} == {"meta"}
