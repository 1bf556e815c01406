"""Named configurations: a CPU-sized character model for tests and the demo, and the text8 / OpenWebText sizes.

``PRESETS[name](**overrides)`` is a fresh :class:`~tarflow_lm.TarFlowLMConfig`; ``create(name, **overrides)`` the
randomly initialised :class:`~tarflow_lm.TarFlowLMModel` (labcore's preset convention, :mod:`labcore.presets`).

``text8`` and ``openwebtext`` spend a GPT-2-small budget (12 Transformer layers, width 768, 12 heads) over 6 flow
layers (text8: 27 symbols, length 256; OpenWebText: the GPT-2 vocabulary, length 1024). The split and the latent
width are our choice: the paper's exact per-layer table was not available to us.
"""

from functools import partial

from labcore.presets import Presets
from tarflow_lm.configuration import TarFlowLMConfig
from tarflow_lm.modeling import TarFlowLMModel

GPT2_SMALL_BUDGET = dict(latent_dim=64, hidden_size=768, layers_per_block=2, num_heads=12)

PRESETS = Presets(
    "tarflow_lm",
    TarFlowLMModel,
    {
        "tiny": partial(
            TarFlowLMConfig,
            vocab_size=27,
            latent_dim=8,
            max_seq_len=32,
            layer_types=["mix1", "affine"],
            num_mixtures=8,
            hidden_size=48,
            layers_per_block=1,
            num_heads=4,
        ),
        "text8": partial(
            TarFlowLMConfig,
            **GPT2_SMALL_BUDGET,
            vocab_size=27,
            max_seq_len=256,
            layer_types=["mix1"] + ["affine"] * 5,
            num_mixtures=27,
        ),
        "openwebtext": partial(
            TarFlowLMConfig,
            **GPT2_SMALL_BUDGET,
            vocab_size=50257,
            max_seq_len=1024,
            layer_types=["mixd"] + ["affine"] * 5,
            num_mixtures=64,
        ),
    },
)
create = PRESETS.create
