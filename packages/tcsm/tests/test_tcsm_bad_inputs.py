"""Issue #23: a model meets only the process it was trained for; preference_loss refuses the uniform process."""

import pytest
import torch

from tcsm.config import TCSMConfig
from tcsm.likelihood import masked_nelbo, nelbo, uniform_nelbo
from tcsm.model import TCSMDenoiser
from tcsm.noise import MaskedProcess, UniformProcess
from tcsm.posttrain import preference_loss


def _denoiser(process):
    torch.manual_seed(0)
    config = TCSMConfig(vocab_size=7, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        max_position_embeddings=16, process=process)
    return TCSMDenoiser(config).eval()


def test_likelihood_bounds_refuse_a_model_trained_for_the_other_process():
    x1 = torch.randint(0, 7, (2, 8), generator=torch.Generator().manual_seed(0))
    masked_model, uniform_model = _denoiser("masked"), _denoiser("uniform")
    assert torch.isfinite(uniform_nelbo(uniform_model, UniformProcess(7), x1, steps=2)).all()
    with pytest.raises(ValueError, match="trained for the 'masked' process but a 'uniform' process"):
        uniform_nelbo(masked_model, UniformProcess(7), x1, steps=2)  # returned numbers
    with pytest.raises(ValueError, match="trained for the 'uniform' process but a 'masked' process"):
        masked_nelbo(uniform_model, MaskedProcess(7), x1, num_samples=2)
    with pytest.raises(ValueError, match="make_process"):
        nelbo(masked_model, UniformProcess(7), x1)


def test_preference_loss_needs_the_masked_process():
    chosen, rejected = torch.randint(0, 7, (2, 2, 8), generator=torch.Generator().manual_seed(1))
    model = _denoiser("masked")
    assert torch.isfinite(preference_loss(model, _denoiser("masked"), MaskedProcess(7), chosen, rejected, 0.1))
    with pytest.raises(TypeError, match="preference_loss needs a MaskedProcess.*got UniformProcess"):  # AttributeError
        preference_loss(_denoiser("uniform"), _denoiser("uniform"), UniformProcess(7), chosen, rejected, 0.1)
    with pytest.raises(ValueError, match="reference was trained for the 'uniform' process"):
        preference_loss(model, _denoiser("uniform"), MaskedProcess(7), chosen, rejected, 0.1)
