"""Mathematical properties of the flow: invertibility, exact log-determinant, density conventions."""

import math

import pytest
import torch

from tarflow import TarFlow, TarFlowConfig
from tarflow.baseline import baseline_forward


def test_forward_then_inverse_is_identity(tiny_model):
    x = torch.randn(5, 2, 4, 4)
    y = torch.tensor([0, 1, 2, -1, 1])
    z = tiny_model(x, y).z
    assert (z - tiny_model.patchify(x)).abs().max() > 0.1  # the flow is not the identity
    x_rec = tiny_model.inverse(z, y)
    torch.testing.assert_close(x_rec, x, atol=1e-4, rtol=1e-4)


def test_volume_preserving_variant_inverts_with_learned_prior_variance(tiny_config, seeded, randomize):
    model = randomize(TarFlow(tiny_config.replace(nvp=False))).eval()
    x = torch.randn(4, 2, 4, 4)
    out = model(x)
    assert torch.all(out.logdet == 0)  # shift-only blocks
    for _ in range(3):
        model.update_prior(out.z)
    assert not torch.allclose(model.var, torch.ones_like(model.var))
    x_rec = model.inverse(out.z / model.var.sqrt())
    torch.testing.assert_close(x_rec, x, atol=1e-4, rtol=1e-4)


def test_update_prior_is_the_reference_ema(tiny_model):
    z = torch.randn(8, 16, 2)
    before = tiny_model.var.clone()
    tiny_model.update_prior(z)
    torch.testing.assert_close(tiny_model.var, 0.9 * before + 0.1 * z.pow(2).mean(0))


def test_logdet_equals_autograd_jacobian(tiny_model):
    x = torch.randn(1, 2, 4, 4, dtype=torch.float32)
    y = torch.tensor([2])

    def flow(v):
        return tiny_model(v.view(1, 2, 4, 4), y).z.flatten()

    jac = torch.autograd.functional.jacobian(flow, x.flatten())
    sign, logabsdet = torch.linalg.slogdet(jac.double())
    assert sign != 0
    torch.testing.assert_close(tiny_model(x, y).logdet.double(), logabsdet.view(1), atol=2e-4, rtol=1e-4)


def test_single_block_is_autoregressive_triangular(tiny_model):
    """Token i of a block's output depends only on input tokens ≤ i (in the block's order)."""
    for block in tiny_model.blocks[:2]:
        x = torch.randn(1, 16, 2)
        jac = (
            torch.autograd.functional.jacobian(lambda v, block=block: block(v.view(1, 16, 2))[0].flatten(), x.flatten())
            .view(16, 2, 16, 2)
            .abs()
            .sum((1, 3))
        )
        if block.flip:
            jac = jac.flip(0, 1)
        assert torch.all(jac.triu(1) == 0) and torch.all(jac.diagonal() > 0)


def test_fast_forward_matches_reference_strategy(tiny_model):
    x = torch.randn(3, 2, 4, 4)
    y = torch.tensor([0, -1, 2])
    out = tiny_model(x, y)
    z_ref, logdet_ref = baseline_forward(tiny_model, x, y)
    torch.testing.assert_close(out.z, z_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logdet, logdet_ref, atol=1e-4, rtol=1e-5)


def test_loss_is_reference_nats_per_dim(tiny_model):
    x = torch.randn(3, 2, 4, 4)
    out = tiny_model(x)
    d = 2 * 4 * 4
    nll = tiny_model.nll(x)
    # loss + ½·log 2π is the mean NLL per dimension in nats.
    torch.testing.assert_close(tiny_model.get_loss(out.z, out.logdet) + 0.5 * math.log(2 * math.pi), nll.mean() / d)


def test_bits_per_dim_of_a_known_gaussian_is_closed_form(seeded):
    """One block whose output is a constant (a, b): tokens 1.. are N(b, e^{2a}), token 0 is N(0, 1)."""
    cfg = TarFlowConfig(
        in_channels=1, img_size=4, patch_size=2, channels=16, num_blocks=1, layers_per_block=1, head_dim=16
    )
    model = TarFlow(cfg)
    log_sigma = torch.tensor([0.3, -0.5, 0.0, 0.7])
    mu = torch.tensor([0.1, -0.2, 0.3, 0.0])
    with torch.no_grad():
        model.blocks[0].proj_out.bias.copy_(torch.cat([log_sigma, mu]))
    n = 4000
    tokens = torch.randn(n, 4, 4)
    tokens[:, 1:] = tokens[:, 1:] * log_sigma.exp() + mu
    x = model.unpatchify(tokens)
    # Exact per-example value.
    var = torch.ones(4, 4)
    var[1:] = (2 * log_sigma).exp()
    mean = torch.zeros(4, 4)
    mean[1:] = mu
    nll_exact = (0.5 * (tokens - mean) ** 2 / var + 0.5 * var.log() + 0.5 * math.log(2 * math.pi)).sum((1, 2))
    torch.testing.assert_close(model.nll(x), nll_exact, atol=1e-4, rtol=1e-5)
    # In expectation: the differential entropy, bpd = (H/D − log(2/256)) / ln 2.
    entropy = (0.5 * torch.log(2 * math.pi * math.e * var)).sum()
    expected_bpd = (entropy / 16 - math.log(2 / 256)) / math.log(2)
    bpd = model.bits_per_dim(x).mean()
    assert abs(bpd - expected_bpd) < 4 * model.bits_per_dim(x).std() / math.sqrt(n)


@pytest.mark.parametrize("flip", [False, True])
def test_first_token_passes_unchanged(tiny_model, flip):
    block = tiny_model.blocks[int(flip)]
    x = torch.randn(2, 16, 2)
    z, _ = block(x)
    idx = -1 if block.flip else 0
    torch.testing.assert_close(z[:, idx], x[:, idx])
