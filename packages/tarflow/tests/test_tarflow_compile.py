"""``sample --compile`` (labcore.compiling.maybe_compile on TarFlow.sampling_modules): same samples as eager."""

import torch

from labcore.testing import compiled_vs_eager
from tarflow import TarFlow, TarFlowConfig


def test_compiled_sampler_matches_eager(compile_backend):
    torch.manual_seed(0)
    cfg = TarFlowConfig(in_channels=1, img_size=4, patch_size=2, channels=16, num_blocks=2, layers_per_block=1,
                        head_dim=8, num_classes=3)
    model = TarFlow(cfg).eval()
    run = lambda m: m.sample(3, torch.arange(3), guidance=1.0, generator=torch.Generator().manual_seed(1))  # noqa: E731
    eager, compiled = compiled_vs_eager(run, model, compile_backend, modules=model.sampling_modules())
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)  # float32 rounding of reordered kernels
