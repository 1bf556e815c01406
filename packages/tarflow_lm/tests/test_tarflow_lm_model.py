"""Model-level properties: ELBO terms, Proposition 4's σ → 0 limit, normalisation, multi-pass decode."""

import math

import pytest
import torch
from transformers import AutoModel

from tarflow_lm import PRESETS, TarFlowLMModel


def test_codebook_terms_match_torch_distributions():
    torch.manual_seed(0)
    m = TarFlowLMModel(PRESETS["tiny"](latent_dim=3, vocab_size=5)).double()
    ids = torch.tensor([[0, 4, 2, 2]])
    z, log_q = m.codebook.encode(ids)
    mu, sig = m.codebook.means[ids], m.codebook.log_sigmas[ids].exp().unsqueeze(-1)
    ref_q = torch.distributions.Normal(mu, sig).log_prob(z).sum(-1)
    torch.testing.assert_close(log_q, ref_q)
    comp = torch.distributions.Normal(m.codebook.means, m.codebook.log_sigmas.exp()[:, None])
    dens = comp.log_prob(z[..., None, :]).sum(-1)  # (1, T, V)
    torch.testing.assert_close(m.codebook.decode_logits(z), dens - dens.logsumexp(-1, keepdim=True))


def test_proposition4_sigma_to_zero_recovers_discrete_ar_cross_entropy():
    """A codebook-tied Mix-d layer whose weights are a discrete bigram model's next-token distribution
    (read off the decoded previous latent) has an ELBO that tends to the bigram log-likelihood."""
    torch.manual_seed(1)
    v, d, t = 5, 3, 6
    model = TarFlowLMModel(
        PRESETS["tiny"](
            vocab_size=v, latent_dim=d, max_seq_len=16, layer_types=["mixd_tied"], hidden_size=v, num_heads=1
        )
    ).double()
    with torch.no_grad():
        model.codebook.means.copy_(torch.randn(v, d, dtype=torch.float64))
    bigram = torch.log_softmax(torch.randn(v, v, dtype=torch.float64), -1)
    start = torch.log_softmax(torch.randn(v, dtype=torch.float64), -1)
    layer = model.flows[0]
    with torch.no_grad():  # the weight head passes the AR logits through unchanged
        layer.head.weight.copy_(torch.eye(v, dtype=torch.float64))
        layer.head.bias.zero_()

    def ar_context(x):  # stands in for the Transformer: p_AR(· | x_{t−1}) with x_{t−1} decoded from z_{t−1}
        prev = model.codebook.decode_logits(x[:, :-1]).argmax(-1)
        return torch.cat([start.expand(x.shape[0], 1, -1), bigram[prev]], dim=1)

    layer.context = ar_context
    ids = torch.randint(0, v, (64, t))
    log_p_ar = start[ids[:, 0]] + bigram[ids[:, :-1], ids[:, 1:]].sum(-1)
    gaps = []
    for log_sigma in (0.0, -1.0, -2.0, -6.0):
        with torch.no_grad():
            model.codebook.log_sigmas.fill_(log_sigma)
            elbo = model(ids).elbo
        gaps.append((log_p_ar - elbo).abs().mean().item())
    assert gaps[0] > 1e-2  # at a large σ the latent model is genuinely different ...
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]  # ... and the gap shrinks monotonically ...
    assert gaps[3] < 1e-6  # ... to the discrete AR log-likelihood in the limit (Proposition 4)


def test_tied_mixd_layer_inverts_and_rejects_patches():
    torch.manual_seed(7)
    model = TarFlowLMModel(
        PRESETS["tiny"](
            vocab_size=6, latent_dim=3, max_seq_len=4, layer_types=["mixd_tied", "affine"], hidden_size=8, num_heads=2
        )
    ).double()
    with torch.no_grad():
        model.flows[0].head.weight.normal_()
    z, _ = model.codebook.encode(torch.randint(0, 6, (2, 4)))
    torch.testing.assert_close(model.prior_inverse(model.prior_forward(z)[-1])[-1], z, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="patch_size=1"):
        PRESETS["tiny"](layer_types=["mixd_tied"], patch_size=2)


@pytest.mark.parametrize("layer_types", [["affine", "mix1"], ["mixd", "affine"]])
def test_prior_density_integrates_to_one(layer_types):
    """Two 1-D latents: ∫∫ p(z) dz over a grid must be 1 if every log-det is right."""
    torch.manual_seed(2)
    model = TarFlowLMModel(
        PRESETS["tiny"](
            latent_dim=1, max_seq_len=2, layer_types=layer_types, num_mixtures=3, hidden_size=8, num_heads=2
        )
    ).double()
    with torch.no_grad():
        for p in model.flows.parameters():
            p.add_(0.15 * torch.randn_like(p))
    g = torch.linspace(-16, 16, 321, dtype=torch.float64)
    z = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).view(-1, 2, 1)
    with torch.no_grad():
        mass = model.prior_log_prob(z).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(mass.item() - 1.0) < 1e-3


@pytest.mark.parametrize("patch_size", [1, 2])
def test_sampling_inverts_the_prior_and_last_pass_is_the_output(patch_size):
    torch.manual_seed(3)
    model = (
        TarFlowLMModel(
            PRESETS["tiny"](
                patch_size=patch_size,
                latent_dim=4,
                layer_types=["mix1", "affine", "mixd"],
                num_mixtures=[4, 0, 4],
                max_seq_len=8,
            )
        )
        .double()
        .eval()
    )
    passes = model.generate(2, 8, generator=torch.Generator().manual_seed(0), return_passes=True)
    u = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    states = model.prior_inverse(u)  # the same noise generate() drew
    assert len(passes) == len(states) == 4
    for z, ids in zip(states, passes, strict=True):  # every pass is the tied-decoder readout of its state
        assert torch.equal(ids, model.codebook.decode_logits(z).argmax(-1))
    assert torch.equal(passes[-1], model.decode(states[-1]))  # the last pass is the model's output
    torch.testing.assert_close(model.prior_forward(states[-1])[-1], u, rtol=0, atol=1e-6)


def test_importance_weighted_bound_is_at_least_the_elbo_average():
    torch.manual_seed(4)
    model = TarFlowLMModel(PRESETS["tiny"](max_seq_len=8)).eval()
    ids = torch.randint(0, 27, (3, 8))
    torch.manual_seed(5)
    iw = model.importance_weighted_bound(ids, num_samples=8)
    torch.manual_seed(5)
    elbos = model(ids.repeat(8, 1)).elbo.view(8, 3)
    torch.testing.assert_close(iw, elbos.logsumexp(0) - math.log(8))
    torch.manual_seed(5)
    torch.testing.assert_close(model.importance_weighted_bound(ids, 8, samples_per_pass=8), iw)
    torch.manual_seed(6)
    chunked = model.importance_weighted_bound(ids, 8, samples_per_pass=3)  # 3 + 3 + 2 samples per pass
    torch.manual_seed(6)
    parts = torch.cat([model(ids.repeat(k, 1)).elbo.view(k, 3) for k in (3, 3, 2)])
    torch.testing.assert_close(chunked, parts.logsumexp(0) - math.log(8))
    assert (iw >= elbos.mean(0) - 1e-5).all()


def test_bad_inputs_raise_clear_errors():
    model = TarFlowLMModel(PRESETS["tiny"](patch_size=2, max_seq_len=8))
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(torch.tensor([[0, 27]]))
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        model.generate(1, 16)
    with pytest.raises(ValueError, match="temperature must be"):
        model.generate(1, 8, temperature=float("nan"))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(1, 8))
    with pytest.raises(ValueError, match="unknown layer types"):
        PRESETS["tiny"](layer_types=["spline"])


def test_save_pretrained_roundtrip(tmp_path):
    torch.manual_seed(6)
    model = TarFlowLMModel(PRESETS["tiny"](patch_size=2, max_seq_len=8)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()  # registered with the transformers Auto classes
    assert isinstance(loaded, TarFlowLMModel)
    ids = torch.randint(0, 27, (2, 8))
    noise = torch.randn(2, 8, 8)
    torch.testing.assert_close(loaded(ids, noise=noise).elbo, model(ids, noise=noise).elbo)
    assert (tmp_path / "model.safetensors").exists()


def test_progressive_stage_freezes_all_but_newest_layer():
    model = TarFlowLMModel(PRESETS["tiny"](layer_types=["mix1", "affine", "affine"], num_mixtures=4))
    model.set_progressive_stage(2)
    trainable = [any(p.requires_grad for p in layer.parameters()) for layer in model.flows]
    assert trainable == [False, True, False] and model.active_layers == 2
    assert not model.codebook.means.requires_grad


def test_patched_prior_with_channel_mixing_matches_the_full_jacobian():
    """Model level, P = 2 with channel mixing: log p(z) = log N(f(z)) + log|det ∂f/∂z| over the whole
    sequence (so the mixing really is volume-preserving), and the stacked inverse recovers z."""
    from torch.autograd.functional import jacobian

    torch.manual_seed(8)
    cfg = dict(
        patch_size=2,
        latent_dim=2,
        max_seq_len=4,
        layer_types=["mix1", "affine", "mixd"],
        num_mixtures=[3, 0, 3],
        hidden_size=8,
        num_heads=2,
    )
    model = TarFlowLMModel(PRESETS["tiny"](**cfg)).double()
    with torch.no_grad():
        for p in model.flows.parameters():
            p.add_(0.2 * torch.randn_like(p))
    z = torch.randn(1, 4, 2, dtype=torch.float64)
    u = model.prior_forward(z)[-1]
    jac = jacobian(lambda v: model.prior_forward(v.view(1, 4, 2))[-1].flatten(), z.flatten())
    expected = (-0.5 * u.pow(2) - 0.5 * math.log(2 * math.pi)).sum() + torch.linalg.slogdet(jac)[1]
    torch.testing.assert_close(model.prior_log_prob(z)[0], expected, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(model.prior_inverse(u)[-1], z, rtol=0, atol=1e-7)
    unmixed = TarFlowLMModel(PRESETS["tiny"](**cfg, channel_mixing=False)).double()
    unmixed.load_state_dict(model.state_dict())
    assert not torch.allclose(unmixed.prior_forward(z)[-1], u)  # the mixing is active in this configuration


def test_elbo_and_iw_bounds_target_the_exact_marginal_likelihood():
    """Tiny VAE (V = 3, T = 2, d = 1): log p(x) = log ∫ p(z) Π_t p(x_t|z_t) dz by quadrature. The ELBO lies
    below it, and the importance-weighted bound closes the gap as K grows (here to < 0.02 nats at K = 4096
    for a sequence whose posterior q covers well)."""
    torch.manual_seed(2)
    model = (
        TarFlowLMModel(
            PRESETS["tiny"](
                vocab_size=3,
                latent_dim=1,
                max_seq_len=2,
                layer_types=["affine", "mix1"],
                num_mixtures=3,
                hidden_size=8,
                num_heads=2,
            )
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        for p in model.flows.parameters():
            p.add_(0.15 * torch.randn_like(p))
        model.codebook.means.copy_(torch.tensor([[-1.0], [0.2], [1.5]]))
    g = torch.linspace(-10, 10, 401, dtype=torch.float64)
    z = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).view(-1, 2, 1)
    ids = torch.tensor([[1, 1], [0, 2]])
    with torch.no_grad():
        log_joint = model.prior_log_prob(z)[:, None] + model.codebook.decode_logits(z)[:, [0, 1], ids].sum(-1)
        log_px = torch.logsumexp(log_joint, 0) + 2 * math.log(g[1] - g[0])
        torch.manual_seed(0)
        elbo = model(ids.repeat(400, 1)).elbo.view(400, 2).mean(0)
        iw = model.importance_weighted_bound(ids, 4096)
    assert (elbo < log_px - 0.05).all()  # a strict gap: q(z|x) is not the exact posterior
    assert (elbo < iw).all() and (iw < log_px + 0.01).all()
    assert abs(iw[0] - log_px[0]) < 0.02
