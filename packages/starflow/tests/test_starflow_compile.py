"""``sample --compile`` (labcore.compiling.maybe_compile on StarFlow.sampling_modules): same samples as eager."""

import torch

from labcore.testing import compiled_vs_eager
from starflow import StarFlow, StarFlowConfig


def test_compiled_sampler_matches_eager(compile_backend):
    torch.manual_seed(0)
    model = StarFlow(StarFlowConfig(channel_size=2, img_size=4, channels=32, head_dim=16, layers_per_block=[1, 1]))
    model.eval()
    noise = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    eager, compiled = compiled_vs_eager(lambda m: m.sample(noise), model, compile_backend,
                                        modules=model.sampling_modules())
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)  # float32 rounding of reordered kernels
