"""``--compile`` (labcore.compiling.maybe_compile): compiled sampling equals eager sampling."""

import torch

from labcore.testing import compiled_vs_eager
from tcsm import TCSMConfig, TCSMDenoiser, make_process
from tcsm.sampling import sample


def test_compiled_sampler_draws_the_same_tokens(compile_backend):
    torch.manual_seed(0)
    cfg = TCSMConfig(vocab_size=5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     max_position_embeddings=8)
    model, process = TCSMDenoiser(cfg).eval(), make_process("masked", 5)
    run = lambda m: sample(m, process, 4, 8, 6, generator=torch.Generator().manual_seed(1))  # noqa: E731
    eager, compiled = compiled_vs_eager(run, model, compile_backend)
    assert torch.equal(eager, compiled)  # same tokens (logits within float rounding, far from sampling ties)
