"""``sample --compile`` (labcore.compiling.maybe_compile): the compiled Dream model samples the same tokens."""

import torch

from diffucoder import DreamConfig, DreamModel
from diffucoder.generation import diffusion_generate
from labcore.testing import compiled_vs_eager

TINY = dict(vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=32, mask_token_id=15, pad_token_id=14, bos_token_id=13,
            eos_token_id=13)


def test_compiled_sampler_draws_the_same_tokens(compile_backend):
    torch.manual_seed(0)
    model = DreamModel(DreamConfig(**TINY)).eval()
    ids = torch.randint(0, 13, (2, 3), generator=torch.Generator().manual_seed(1))
    run = lambda m: diffusion_generate(m, ids, max_new_tokens=4, steps=4, generator=torch.Generator().manual_seed(2))  # noqa: E731
    eager, compiled = compiled_vs_eager(run, model, compile_backend)
    assert torch.equal(eager, compiled)
