import pytest
import torch

from dnfs.kolmogorov import GeometricPath
from dnfs.targets import CallableTarget, LatticeIsing
from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)


@pytest.fixture
def ising3() -> LatticeIsing:
    """3×3 periodic Ising (512 states) with a field, σ = 0.2 (β = 0.4)."""
    return LatticeIsing(3, sigma=0.2, bias=0.1)


@pytest.fixture
def random_target() -> CallableTarget:
    """An arbitrary unnormalised log-density on {0,1,2}^3 given by a random table."""
    table = torch.randn(27, generator=torch.Generator().manual_seed(3)) * 1.5
    powers = torch.tensor([9, 3, 1])
    return CallableTarget(lambda x: table[(x * powers).sum(-1)], dim=3, num_states=3)


@pytest.fixture
def ising3_path(ising3) -> GeometricPath:
    return GeometricPath(ising3)
