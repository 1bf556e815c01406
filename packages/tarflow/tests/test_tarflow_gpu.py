"""CUDA paths (fused affine kernels, flash attention, bf16 KV cache); skipped without a GPU."""

import pytest
import torch

from tarflow.baseline import baseline_inverse

pytestmark = pytest.mark.gpu


def test_cuda_roundtrip_with_fused_kernels(tiny_model):
    model = tiny_model.cuda()
    x = torch.randn(4, 2, 4, 4, device="cuda")
    y = torch.tensor([0, 1, 2, -1], device="cuda")
    z = model(x, y).z
    torch.testing.assert_close(model.inverse(z, y), x, atol=1e-4, rtol=1e-4)


def test_cuda_bf16_sampler_matches_reference_strategy(tiny_model):
    model = tiny_model.cuda()
    z = torch.randn(8, 16, 2, device="cuda")
    y = torch.arange(8, device="cuda") % 3
    kw = dict(guidance=1.0, annealed_guidance=True, attn_temp=0.9)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        ours = model.inverse(z, y, **kw)
        ref = baseline_inverse(model, z, y, **kw)
    torch.testing.assert_close(ours.float(), ref.float(), atol=5e-2, rtol=5e-2)
