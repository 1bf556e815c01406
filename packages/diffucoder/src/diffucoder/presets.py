"""Named configurations: DiffuCoder-7B (the Dream-v0 7B layout it is trained from) and a tiny one for tests.

``PRESETS[name](**overrides)`` is a fresh :class:`~diffucoder.DreamConfig`; ``create(name, **overrides)`` the
randomly initialised :class:`~diffucoder.DreamModel` (labcore's preset convention, :mod:`labcore.presets`).
"""

from functools import partial

from diffucoder.config import DreamConfig
from diffucoder.modeling import DreamModel
from labcore.presets import Presets

PRESETS = Presets(
    "diffucoder",
    DreamModel,
    {
        # the config.json of apple/DiffuCoder-7B-Base/-Instruct: Qwen2.5-Coder-7B's shape (28 layers, width 3584,
        # 28 query / 4 key-value heads, SwiGLU 18944), Dream's mask token; "a 7B dLLM" (abstract)
        "diffucoder-7b": partial(
            DreamConfig,
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            max_position_embeddings=32768,
            rope_theta=1_000_000.0,
            rms_norm_eps=1e-6,
            max_window_layers=28,
            mask_token_id=151666,
            pad_token_id=151643,
            bos_token_id=151643,
            eos_token_id=151643,
        ),
        # 16 symbols, mask 15, pad 14, BOS/EOS 13: the test suite's and the sampler examples' model
        "tiny": partial(
            DreamConfig,
            vocab_size=16,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            mask_token_id=15,
            pad_token_id=14,
            bos_token_id=13,
            eos_token_id=13,
            rope_theta=10000.0,
        ),
    },
)
create = PRESETS.create
