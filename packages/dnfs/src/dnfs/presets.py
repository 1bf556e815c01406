"""Named rate networks for lattice targets: the authors' Ising setting on the paper's 10×10 lattice and the demo's
5×5 one (the graph Transformer needs its graph, so it has no preset: build it with its adjacency).

``PRESETS[name](**overrides)`` is a fresh config (:class:`~dnfs.LETransformerConfig` or :class:`~dnfs.LEMLPConfig`);
``create(name, **overrides)`` the randomly initialised network (labcore's preset convention, :mod:`labcore.presets`).
"""

from functools import partial

from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer
from labcore.presets import Presets

PRESETS = Presets(
    "dnfs",
    {LETransformerConfig: LocallyEquivariantTransformer, LEMLPConfig: LocallyEquivariantMLP},
    {
        # LETransformerConfig's defaults are the authors' Ising setting (width 64, heads of 16, 3 blocks)
        "ising-10x10": partial(LETransformerConfig, data_dim=100, vocab_size=2),
        "ising-10x10-mlp": partial(LEMLPConfig, data_dim=100, vocab_size=2),
        "ising-5x5-demo": partial(
            LETransformerConfig, data_dim=25, vocab_size=2, hidden_dim=32, head_dim=16, num_blocks=2
        ),
    },
)
create = PRESETS.create
