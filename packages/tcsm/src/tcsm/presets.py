"""Named configurations: the paper's GPT-2-small-sized denoisers (text8, OpenWebText) and the CPU demo's.

``PRESETS[name](**overrides)`` is a fresh :class:`~tcsm.TCSMConfig`; ``create(name, **overrides)`` the randomly
initialised :class:`~tcsm.TCSMDenoiser` (labcore's preset convention, :mod:`labcore.presets`). The paper's
denoiser is a DiT of that size (12 layers, width 768, 12 heads); ours is the plain bidirectional Transformer of
:mod:`tcsm.model`, so parameter counts are not the paper's.
"""

from functools import partial

from labcore.presets import Presets
from tcsm.config import TCSMConfig
from tcsm.model import TCSMDenoiser

GPT2_SMALL = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12)

PRESETS = Presets(
    "tcsm",
    TCSMDenoiser,
    {
        "text8": partial(TCSMConfig, **GPT2_SMALL, vocab_size=27, max_position_embeddings=256),
        "openwebtext": partial(TCSMConfig, **GPT2_SMALL, vocab_size=50257, max_position_embeddings=1024),
        # the quick start's model: 27 characters, 2 layers of width 64, 32 positions
        "tiny": partial(
            TCSMConfig,
            vocab_size=27,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=32,
        ),
    },
)
create = PRESETS.create
