"""Every flow layer: inverse∘forward = identity, log-det = log|det J| (autograd), causal structure."""

import pytest
import torch
from torch.autograd.functional import jacobian

from tarflow_lm.codebook import GaussianCodebook
from tarflow_lm.flows import LAYER_TYPES, channel_mix, householder_vectors


def make_layer(kind, dim, reverse, seed=0):
    torch.manual_seed(seed)
    extra = {"codebook": GaussianCodebook(4, dim).double()} if kind == "mixd_tied" else {}
    layer = LAYER_TYPES[kind](dim, 16, 1, 2, 8, reverse=reverse, num_mixtures=3, **extra).double()
    if extra:  # the codebook is a reference, not a submodule: perturb it too
        with torch.no_grad():
            extra["codebook"].log_sigmas.uniform_(-1.0, 0.0)
    with torch.no_grad():  # move away from the identity initialisation so the test can fail
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("kind", sorted(LAYER_TYPES))
@pytest.mark.parametrize("reverse", [False, True])
def test_inverse_and_logdet(kind, reverse):
    dim, n = 2, 3
    layer = make_layer(kind, dim, reverse)
    x = torch.randn(1, n, dim, dtype=torch.float64)
    u, logdet = layer(x)
    torch.testing.assert_close(layer.inverse(u), x, rtol=0, atol=1e-7)
    jac = jacobian(lambda v: layer(v.view(1, n, dim))[0].flatten(), x.flatten())
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac)[1], rtol=1e-6, atol=1e-6)
    # Autoregressive structure in the layer's direction: output i depends on inputs ≤ i only.
    order = torch.arange(n * dim).view(n, dim)
    order = (order.flip(0) if reverse else order).flatten()
    j = jac[order][:, order]
    assert torch.allclose(torch.triu(j, 1), torch.zeros_like(j), atol=1e-12)


def test_batch_inverse_matches_per_example():
    layer = make_layer("mix1", 4, False, seed=1)
    u = torch.randn(3, 4, 4, dtype=torch.float64)
    batch = layer.inverse(u)
    torch.testing.assert_close(batch[1:2], layer.inverse(u[1:2]), rtol=0, atol=1e-9)


def test_channel_mix_is_orthogonal_and_unmix_inverts():
    v = householder_vectors(6, 4, seed=3).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    y = channel_mix(x, v)
    torch.testing.assert_close(channel_mix(y, v, inverse=True), x, rtol=0, atol=1e-12)
    mat = channel_mix(torch.eye(6, dtype=torch.float64), v)
    torch.testing.assert_close(mat @ mat.T, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-12)
    assert not torch.allclose(mat.abs(), torch.eye(6, dtype=torch.float64))  # it does mix channels
