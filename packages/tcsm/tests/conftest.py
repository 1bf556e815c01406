import pytest
import torch

from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)
from tcsm.exact import ExactJoint


@pytest.fixture
def tiny_joint() -> ExactJoint:
    """A random joint over 3 positions × 4 symbols with correlations (Dirichlet(0.5) weights)."""
    g = torch.Generator().manual_seed(0)
    probs = torch._standard_gamma(torch.full((64,), 0.7, dtype=torch.float64), generator=g) + 1e-3
    return ExactJoint(probs, vocab_size=4, length=3)


class TabularJoint(torch.nn.Module):
    """A fully flexible ``p_θ(x_1 | x_t)``: one softmax over the ``V^L`` clean states per noisy state."""

    def __init__(self, exact: ExactJoint, input_vocab: int):
        super().__init__()
        self.exact, self.input_vocab = exact, input_vocab
        self.logits = torch.nn.Parameter(torch.zeros(input_vocab**exact.length, exact.vocab_size**exact.length))
        self.in_powers = input_vocab ** torch.arange(exact.length - 1, -1, -1)

    def forward(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        rows = self.logits.log_softmax(-1)[(xt * self.in_powers).sum(-1)]
        return rows.gather(1, self.exact.index(x1)[:, None])[:, 0]


@pytest.fixture
def tabular_cls():
    return TabularJoint
