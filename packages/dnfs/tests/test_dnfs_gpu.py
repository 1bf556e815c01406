"""CUDA smoke test (marker ``gpu``: skipped without CUDA)."""

import pytest
import torch

from dnfs.kolmogorov import GeometricPath
from dnfs.targets import LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer


@pytest.mark.gpu
def test_training_and_sampling_on_cuda():
    device = torch.device("cuda")
    target = LatticeIsing(4, sigma=0.1, bias=0.1).to(device)
    model = LocallyEquivariantTransformer(LETransformerConfig(16, 2, hidden_dim=32, head_dim=16, num_blocks=1)).to(
        device
    )
    trainer = DNFSTrainer(
        model,
        GeometricPath(target),
        TrainConfig(num_times=9, num_trajectories=32, batch_size=32, steps_per_epoch=3, eval_samples=64),
    )
    trainer.fit(3, accelerator="gpu", devices=1)
    ev = trainer.evaluate()
    assert ev["result"].samples.device.type == "cuda" and 0 < ev["ess"] <= 1
