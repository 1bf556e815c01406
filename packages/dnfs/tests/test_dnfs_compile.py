"""``sample/evaluate --compile`` (labcore.compiling.maybe_compile): compiled simulation equals eager."""

import torch

from dnfs.sampler import default_times, simulate
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer
from labcore.testing import compiled_vs_eager


def test_compiled_simulation_matches_eager(compile_backend, ising3_path):
    torch.manual_seed(0)
    model = LocallyEquivariantTransformer(LETransformerConfig(9, 2, hidden_dim=16, head_dim=8, num_blocks=1)).eval()

    def run(m):
        res = simulate(m, ising3_path, 8, default_times(4), generator=torch.Generator().manual_seed(1))
        return torch.cat([res.samples.flatten().float(), res.log_weights])

    eager, compiled = compiled_vs_eager(run, model, compile_backend)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)  # same jumps; weights to float rounding
