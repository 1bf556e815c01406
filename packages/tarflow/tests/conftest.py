import pytest
import torch

from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)
from tarflow import TarFlow, TarFlowConfig


def _randomize(model: TarFlow, scale: float = 0.5, seed: int = 0) -> TarFlow:
    """Random weights everywhere (also the zero-initialised output projections) so the flow is not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_((name.endswith("weight")) + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 2 and "embed" not in name:  # Linear weights: fan-in scaled
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))
            if "proj_out" in name:
                p.mul_(0.15)
    return model


@pytest.fixture
def tiny_config() -> TarFlowConfig:
    return TarFlowConfig(
        in_channels=2,
        img_size=4,
        patch_size=1,
        channels=32,
        num_blocks=3,
        layers_per_block=2,
        head_dim=16,
        num_classes=3,
    )


@pytest.fixture
def tiny_model(tiny_config, seeded) -> TarFlow:
    return _randomize(TarFlow(tiny_config)).eval()


@pytest.fixture
def randomize():
    """Function filling a model with random weights (``randomize(model, scale, seed)``)."""
    return _randomize
