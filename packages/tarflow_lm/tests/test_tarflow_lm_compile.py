"""``sample --compile`` (labcore.compiling.maybe_compile on TarFlowLMModel.sampling_modules): same text as eager."""

import torch

from labcore.testing import compiled_vs_eager
from tarflow_lm.configuration import TarFlowLMConfig
from tarflow_lm.modeling import TarFlowLMModel


def test_compiled_generation_matches_eager(compile_backend):
    torch.manual_seed(0)
    cfg = TarFlowLMConfig(vocab_size=5, latent_dim=4, max_seq_len=6, hidden_size=16, layers_per_block=1, num_heads=2)
    model = TarFlowLMModel(cfg).eval()
    run = lambda m: m.generate(3, 6, 1.0, torch.Generator().manual_seed(1))  # noqa: E731
    eager, compiled = compiled_vs_eager(run, model, compile_backend, modules=model.sampling_modules())
    assert torch.equal(eager, compiled)  # same tokens: latents within float rounding decode to the same ids
