"""Named configurations of the Llama models trained left-to-right or right-to-left: the official simulation model
(``llama3-2b``) and a tiny one for CPU runs and tests.

``PRESETS[name](**overrides)`` is a fresh ``transformers.LlamaConfig``; ``create(name, **overrides)`` the randomly
initialised ``LlamaForCausalLM`` (labcore's preset convention, :mod:`labcore.presets`); train it on reversed text
(:mod:`r2l_lm.training`) and wrap it in :class:`~r2l_lm.R2LModel`.
"""

from functools import partial

from transformers import LlamaConfig, LlamaForCausalLM

from labcore.presets import Presets
from r2l_lm.official import llama3_2b_config

PRESETS = Presets(
    "r2l_lm",
    LlamaForCausalLM,
    {
        "llama3-2b": llama3_2b_config,
        "tiny": partial(
            LlamaConfig,
            vocab_size=64,
            hidden_size=64,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
            tie_word_embeddings=True,
        ),
    },
)
create = PRESETS.create
