"""Bad-input conformance (labcore.conformance): DreamModel's save/load contract (a foreign folder fails fast, no
default-sized model is built), forward and sampler inputs, CLI paths."""

from __future__ import annotations

import torch

from diffucoder import PRESETS, DreamModel
from diffucoder.__main__ import main
from diffucoder.generation import diffusion_generate
from labcore.conformance import (
    AS_FLOAT,
    COUNTS,
    EXTRA_DIM,
    NONFINITE,
    CallSpec,
    CliSpec,
    ModelSpec,
    conformance_tests,
    out_of_vocab,
)

TINY = dict(num_hidden_layers=1, max_position_embeddings=32)  # overrides of the "tiny" preset


def _model() -> DreamModel:
    torch.manual_seed(0)
    return DreamModel(PRESETS["tiny"](**TINY)).eval()


OUT_OF_VOCAB = out_of_vocab(PRESETS["tiny"]().vocab_size)

globals().update(
    conformance_tests(
        models=[ModelSpec(_model, {"hidden_size": 32}, {"hidden_size": 2**17}, name="DreamModel")],
        calls=[
            CallSpec(
                "forward",
                lambda input_ids: _model()(input_ids),
                lambda: {"input_ids": torch.randint(0, 13, (2, 5))},
                {"input_ids": (OUT_OF_VOCAB, AS_FLOAT, EXTRA_DIM)},
            ),
            CallSpec(
                "diffusion_generate",
                lambda inputs, steps, max_new_tokens, temperature: diffusion_generate(
                    _model(), inputs, steps=steps, max_new_tokens=max_new_tokens, temperature=temperature
                ),
                lambda: {"inputs": torch.randint(0, 13, (1, 3)), "steps": 2, "max_new_tokens": 2, "temperature": 0.5},
                {"steps": COUNTS, "max_new_tokens": COUNTS, "temperature": (*NONFINITE, -1.0)},
                names={"max_new_tokens": ("max_new_tokens", "max_length")},
            ),
        ],
        clis=[
            CliSpec(
                "diffucoder",
                main,
                [
                    (["sample", "--model", "{missing}", "--prompt", "x"], "{missing}"),
                    (["sample", "--model", "{corrupt}", "--prompt", "x"], "config.json"),
                ],
            )
        ],
    )
)
