"""``sample --compile`` (maybe_compile on each energy's feature network): compiled SMC equals eager SMC."""

import torch

from energy_diffusion.energy import MLPEnergy
from energy_diffusion.smc import FeynmanKac, smc_sample
from labcore.testing import compiled_vs_eager


def test_compiled_smc_matches_eager(compile_backend):
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=8, depth=2)
    run = lambda e: smc_sample(FeynmanKac([e]), 8, (2,), steps=3, generator=torch.Generator().manual_seed(1)).samples  # noqa: E731
    eager, compiled = compiled_vs_eager(run, energy, compile_backend, modules=energy.sampling_modules())
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
