"""TarFlow in float64 and bfloat16 (``model.double()`` / ``.to(torch.bfloat16)``), forward, inverse and sampling."""

import pytest
import torch

from tarflow import TarFlow, TarFlowConfig


@pytest.mark.parametrize("noise", ["uniform", "gaussian"])
def test_float64_model_inverts_to_float64_precision(noise):
    torch.manual_seed(0)
    model = TarFlow(TarFlowConfig(1, 8, 4, 32, 2, 1, head_dim=16, num_classes=10, noise_type=noise)).double()
    x, y = torch.rand(3, 1, 8, 8, dtype=torch.float64) * 2 - 1, torch.tensor([1, 2, 3])
    z, logdet, _ = model(x, y)
    assert z.dtype == logdet.dtype == model.get_loss(z, logdet).dtype == torch.float64
    assert (model.inverse(z, y) - x).abs().max() < 1e-12  # float32 arithmetic anywhere would leave ~1e-7
    s = model.sample(2, torch.tensor([0, 1]), guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.float64 and torch.isfinite(s).all()


@pytest.mark.parametrize("noise", ["uniform", "gaussian"])
def test_bfloat16_model_runs_forward_and_samples(noise):
    torch.manual_seed(0)
    cfg = TarFlowConfig(1, 8, 4, 32, 2, 1, head_dim=16, num_classes=10, noise_type=noise)
    ref, model = TarFlow(cfg), TarFlow(cfg)
    model.load_state_dict(ref.state_dict())
    model.to(torch.bfloat16)
    x, y = torch.rand(3, 1, 8, 8) * 2 - 1, torch.tensor([1, 2, 3])
    z, logdet, _ = model(x.to(torch.bfloat16), y)
    assert z.dtype == torch.bfloat16 and logdet.dtype == torch.float32
    z32, logdet32, _ = ref(x, y)
    assert (logdet - logdet32).abs().max() < 0.05 * logdet32.abs().max() + 0.1  # bf16 rounding only
    s = model.sample(2, torch.tensor([0, 1]), guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(s).all()
