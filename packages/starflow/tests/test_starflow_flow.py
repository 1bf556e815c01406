"""Flow properties on tiny random models: invertibility, log-det vs autograd, cached/Jacobi/guided sampling."""

import pytest
import torch

from starflow import JacobiOptions, StarFlow


def test_each_block_inverts(tiny_model):
    x = torch.randn(3, 16, 4)
    y = torch.randn(3, 3, 8)
    for i, block in enumerate(tiny_model.blocks):
        cond = y if block.txt_dim else None
        z, _ = block(x, cond)
        assert (z - x).abs().max() > 1e-2, "block is trivially the identity"
        torch.testing.assert_close(block.reverse(z, cond), x, atol=1e-5, rtol=1e-5, msg=f"block {i}")


def test_logdet_matches_autograd_jacobian_per_block(tiny_model):
    torch.manual_seed(1)
    x = torch.randn(1, 16, 4)
    y = torch.randn(1, 3, 8)
    for block in tiny_model.blocks:
        cond = y if block.txt_dim else None

        def f(v, block=block, cond=cond):
            return block(v.view(1, 16, 4), cond)[0].flatten()

        jac = torch.autograd.functional.jacobian(f, x.flatten())
        _, logdet = block(x, cond)
        torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac.double())[1].float(), atol=1e-4, rtol=1e-4)
        # autoregressive: in the block's own order, the Jacobian is lower triangular
        order = torch.arange(16).flip(0) if block.flip else torch.arange(16)
        idx = (order[:, None] * 4 + torch.arange(4)).flatten()
        jp = jac[idx][:, idx]
        tokens = torch.arange(64) // 4
        assert jp[tokens[:, None] < tokens[None, :]].abs().max() == 0


def test_model_log_prob_is_change_of_variables(tiny_model):
    x = torch.randn(2, 4, 4, 4)
    y = torch.randn(2, 3, 8)
    out = tiny_model(x, y)
    inputs = [tiny_model.tokens(x), *out.intermediates]
    logdet = sum(b(h, y if b.txt_dim else None)[1] for b, h in zip(tiny_model.blocks, inputs))
    torch.testing.assert_close(out.logdet, logdet)
    z = out.z.flatten(1)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + out.logdet
    torch.testing.assert_close(tiny_model.log_prob(x, y), expected)


def test_model_sample_inverts_forward(tiny_model):
    x = torch.randn(2, 4, 4, 4)
    y = torch.randn(2, 3, 8)
    z = tiny_model.image(tiny_model(x, y).z)
    torch.testing.assert_close(tiny_model.sample(z, y), x, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("guidance", [0.0, 2.5])
def test_cached_equals_uncached(tiny_model, guidance):
    torch.manual_seed(2)
    noise, y, y_null = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    cached = tiny_model.sample(noise, y, y_null, guidance)
    uncached = tiny_model.sample(noise, y, y_null, guidance, use_cache=False)  # two-call guidance, explicit mask
    tol = 1e-5 * (1 + guidance)  # guidance amplifies float32 round-off between fused and explicit-mask attention
    torch.testing.assert_close(cached, uncached, atol=tol, rtol=tol)


def test_batched_guidance_equals_per_example_calls(tiny_model):
    torch.manual_seed(3)
    noise, y, y_null = torch.randn(3, 4, 4, 4), torch.randn(3, 3, 8), torch.randn(1, 3, 8)
    batched = tiny_model.sample(noise, y, y_null, 1.5)
    single = torch.cat([tiny_model.sample(noise[i : i + 1], y[i : i + 1], y_null, 1.5) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_guidance_changes_samples_and_zero_weight_is_conditional(tiny_model):
    noise, y, y_null = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    plain = tiny_model.sample(noise, y)
    torch.testing.assert_close(tiny_model.sample(noise, y, y_null, 0.0), plain)
    assert (tiny_model.sample(noise, y, y_null, 3.0) - plain).abs().max() > 1e-3


def test_jacobi_agrees_with_sequential(tiny_model):
    torch.manual_seed(4)
    noise, y, y_null = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    seq = tiny_model.sample(noise, y, y_null, 1.0)
    # block size n with n iterations solves the triangular system exactly
    exact = tiny_model.sample(noise, y, y_null, 1.0, jacobi=JacobiOptions(block_size=5, max_iter=5, threshold=0.0))
    torch.testing.assert_close(exact, seq, atol=1e-5, rtol=1e-5)
    loose = tiny_model.sample(noise, y, y_null, 1.0, jacobi=JacobiOptions(block_size=8, max_iter=8, threshold=1e-6))
    rel = ((loose - seq).square().mean() / seq.square().mean()).item()
    assert rel < 1e-4


def test_bad_inputs_raise_clear_errors(tiny_model, tiny_config):
    with pytest.raises(ValueError, match="latents of shape"):
        tiny_model(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="conditional"):
        tiny_model(torch.randn(2, 4, 4, 4))
    with pytest.raises(ValueError, match="y_null"):
        tiny_model.sample(torch.randn(1, 4, 4, 4), torch.randn(1, 3, 8), guidance=1.0)
    with pytest.raises(ValueError, match="head_dim"):
        StarFlow(tiny_config.__class__(channels=48, head_dim=16, txt_size=3, txt_dim=8))
    with pytest.raises(ValueError):
        JacobiOptions(block_size=0)
    with pytest.raises(ValueError, match="float latents"):
        tiny_model(torch.zeros(2, 4, 4, 4, dtype=torch.uint8), torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"\(2, L, 8\) for a batch of 2"):
        tiny_model(torch.randn(2, 4, 4, 4), torch.randn(3, 3, 8))
    with pytest.raises(ValueError, match=r"\(2, L, 8\)"):
        tiny_model.sample(torch.randn(2, 4, 4, 4), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="y_null must have shape"):
        tiny_model.sample(torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 4, 8), guidance=1.0)
    with pytest.raises(ValueError, match="one-hot"):
        tiny_model(torch.randn(2, 4, 4, 4), torch.ones(2, 3, 8, dtype=torch.long))


def test_bfloat16_weights_keep_affine_maths_in_float32(tiny_model):
    x, y, y_null = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    ref = tiny_model.sample(x, y, y_null, 1.0)
    half = tiny_model.to(torch.bfloat16)
    out = half.sample(x, y, y_null, 1.0)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()
    assert torch.isfinite(half.log_prob(x.bfloat16(), y)).all()
