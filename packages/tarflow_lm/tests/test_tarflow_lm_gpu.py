"""CUDA smoke checks (run with LABCORE_GPU_TESTS=1 on a GPU machine; skipped on CPU)."""

import pytest
import torch

from tarflow_lm import PRESETS, TarFlowLMModel


@pytest.mark.gpu
@pytest.mark.parametrize("layer_types", [["mix1", "affine"], ["mixd", "affine"]])
def test_cuda_forward_inverse_and_training_step(layer_types):
    torch.manual_seed(0)
    model = TarFlowLMModel(PRESETS["tiny"](patch_size=2, layer_types=layer_types, max_seq_len=16)).cuda()
    ids = torch.randint(0, 27, (4, 16), device="cuda")
    out = model(ids)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(
        torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None
    )
    z, _ = model.codebook.encode(ids)
    with torch.no_grad():
        back = model.prior_inverse(model.prior_forward(z)[-1])[-1]
    torch.testing.assert_close(back, z, rtol=0, atol=1e-3)
