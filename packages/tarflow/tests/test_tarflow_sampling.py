"""The fast samplers against slow, independent statements of the same inverse."""

import pytest
import torch

from tarflow import Guidance, TarFlow
from tarflow.baseline import baseline_inverse


def uncached_inverse(block, z, y, guidance: Guidance):
    """Step-by-step inverse recomputing the whole prefix each token; CFG as two separate calls."""
    x = block.permute(z).clone()
    length = x.shape[1]
    for i in range(length - 1):
        a, b = block.params(x, y)
        a, b = a[:, i + 1], b[:, i + 1]
        if guidance.active:
            none = torch.full((x.shape[0],), -1, dtype=torch.long)
            a_u, b_u = block.params(x, none, torch.full((x.shape[0],), guidance.attn_temp))
            a_u, b_u = a_u[:, i + 1], b_u[:, i + 1]
            w = (i + 1) / (length - 1) * guidance.weight if guidance.annealed else guidance.weight
            if "a" in guidance.guide_what:
                a = a + w * (a - a_u)
            if "b" in guidance.guide_what:
                b = b + w * (b - b_u)
        x[:, i + 1] = x[:, i + 1] * a.exp() + b
    return block.permute(x)


@torch.no_grad()
@pytest.mark.parametrize("flip", [False, True])
def test_cached_inverse_equals_uncached(tiny_model, flip):
    block = tiny_model.blocks[int(flip)]
    z = torch.randn(3, 16, 2)
    y = torch.tensor([0, 2, -1])
    torch.testing.assert_close(block.inverse(z, y), uncached_inverse(block, z, y, Guidance()), atol=1e-5, rtol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize(
    "guidance", [Guidance(1.5), Guidance(0.7, "b", attn_temp=0.5, annealed=True), Guidance(2.0, "a", attn_temp=1.5)]
)
def test_batched_cfg_equals_two_separate_calls(tiny_model, guidance):
    block = tiny_model.blocks[1]
    z = torch.randn(4, 16, 2)
    y = torch.tensor([0, 1, 2, 1])
    fast = block.inverse(z, y, guidance)
    slow = uncached_inverse(block, z, y, guidance)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert (fast - block.inverse(z, y)).abs().max() > 1e-3  # guidance changed the sample


@torch.no_grad()
def test_model_sampler_equals_reference_strategy(tiny_model):
    z = torch.randn(3, 16, 2)
    y = torch.tensor([2, 0, 1])
    kwargs = dict(guidance=1.2, guide_what="ab", attn_temp=0.8, annealed_guidance=True)
    torch.testing.assert_close(
        tiny_model.inverse(z, y, **kwargs), baseline_inverse(tiny_model, z, y, **kwargs), atol=1e-5, rtol=1e-5
    )
    # Unconditional guidance by attention temperature alone (y=None on a class-conditional model).
    torch.testing.assert_close(
        tiny_model.inverse(z, None, guidance=1.0, attn_temp=0.5),
        baseline_inverse(tiny_model, z, None, guidance=1.0, attn_temp=0.5),
        atol=1e-5,
        rtol=1e-5,
    )


@torch.no_grad()
def test_jacobi_sampler_matches_sequential(tiny_model):
    z = torch.randn(3, 16, 2)
    y = torch.tensor([0, 1, 2])
    g = Guidance(1.0, attn_temp=0.9, annealed=True)
    block = tiny_model.blocks[0]
    x_seq = block.inverse(z, y, g)
    x_jac, sweeps = block.inverse_jacobi(z, y, g, tol=1e-6)
    assert sweeps <= 15
    torch.testing.assert_close(x_jac, x_seq, atol=1e-4, rtol=1e-4)
    # Exact after T−1 sweeps even with tol=0; a single sweep is not enough.
    torch.testing.assert_close(block.inverse_jacobi(z, y, g, tol=0.0)[0], x_seq, atol=1e-4, rtol=1e-4)
    assert (block.inverse_jacobi(z, y, g, max_iters=1)[0] - x_seq).abs().max() > 1e-3
    torch.testing.assert_close(
        tiny_model.inverse(z, y, 1.0, jacobi_tol=1e-6), tiny_model.inverse(z, y, 1.0), atol=1e-4, rtol=1e-4
    )


def test_denoise_is_the_reference_gradient_step(tiny_model):
    """x + σ²∇log p(x) equals the reference's x − lr·∇loss with lr = B·D·σ² (loss is a mean)."""
    cfg = tiny_model.config
    x = torch.randn(3, 2, 4, 4)
    y = torch.tensor([0, 1, 2])
    ours = tiny_model.denoise(x, y, sigma=0.1)
    xr = x.clone().requires_grad_(True)
    out = tiny_model(xr, y)
    (grad,) = torch.autograd.grad(tiny_model.get_loss(out.z, out.logdet), xr)
    ref = x - 3 * cfg.num_dims * 0.1**2 * grad
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_sample_redraws_nan_samples(tiny_model, monkeypatch):
    calls = []
    real_inverse = TarFlow.inverse

    def flaky_inverse(self, z, y=None, *args, **kwargs):
        x = real_inverse(self, z, y, *args, **kwargs)
        if not calls:
            x[1] = float("nan")
        calls.append(len(z))
        return x

    monkeypatch.setattr(TarFlow, "inverse", flaky_inverse)
    y = torch.tensor([0, 1, 2, 0])
    out = tiny_model.sample(4, y, guidance=1.0, denoise=False)
    assert calls == [4, 1] and torch.isfinite(out).all()


def test_sample_shapes_and_generator_determinism(tiny_model):
    a = tiny_model.sample(2, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(3), denoise=True)
    b = tiny_model.sample(2, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(3), denoise=True)
    assert a.shape == (2, 2, 4, 4)
    torch.testing.assert_close(a, b)


@torch.no_grad()
@pytest.mark.parametrize("nvp", [True, False])
def test_unconditional_model_samplers_agree(tiny_config, randomize, nvp):
    model = randomize(TarFlow(tiny_config.replace(num_classes=0, nvp=nvp))).eval()
    z = torch.randn(3, 16, 2)
    for block in model.blocks[:2]:
        torch.testing.assert_close(block.inverse(z), uncached_inverse(block, z, None, Guidance()), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        model.inverse(z, guidance=1.0, attn_temp=0.7),
        baseline_inverse(model, z, guidance=1.0, attn_temp=0.7),
        atol=1e-5,
        rtol=1e-5,
    )
    x = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(model.inverse(model(x).z), x, atol=1e-4, rtol=1e-4)
