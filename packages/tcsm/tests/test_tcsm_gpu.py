"""CUDA smoke checks (run with LABCORE_GPU_TESTS=1 on a GPU machine; skipped on CPU)."""

import pytest
import torch

from tcsm import TCSMConfig, TCSMDenoiser, TCSMObjective, factorised, make_process, nelbo, sample
from tcsm.posttrain import frozen_copy, reward_target


@pytest.mark.gpu
@pytest.mark.parametrize("process_name", ["masked", "uniform"])
def test_cuda_objectives_likelihood_sampling_and_reward_target(process_name):
    torch.manual_seed(0)
    cfg = TCSMConfig(
        vocab_size=7,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
        process=process_name,
    )
    model, proc = TCSMDenoiser(cfg).cuda(), make_process(process_name, 7)
    x1 = torch.randint(0, 7, (8, 16), device="cuda")
    for family in ("distribution", "score"):
        loss = TCSMObjective(proc, family)(factorised(model, proc), x1)
        loss.backward()
        assert torch.isfinite(loss) and all(
            torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None
        )
    model.eval()
    target = reward_target(frozen_copy(model), proc, lambda x: (x == 0).sum(-1).float(), beta=1.0)
    tilted = TCSMObjective(proc, "distribution", "kl", weighting="constant")(factorised(model, proc), x1, target)
    assert torch.isfinite(tilted)
    bound = nelbo(model, proc, x1, 4)
    assert bound.shape == (8,) and torch.isfinite(bound).all() and (bound > 0).all()
    xs = sample(model, proc, 4, 16, steps=8, device="cuda")
    assert xs.device.type == "cuda" and int(xs.max()) < 7 and int(xs.min()) >= 0
