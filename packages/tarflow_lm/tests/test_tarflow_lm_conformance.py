"""Bad-input conformance (labcore.conformance): TarFlowLMModel's save/load contract, inputs, CLI paths."""

from __future__ import annotations

import torch

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
from tarflow_lm.__main__ import main
from tarflow_lm.configuration import TarFlowLMConfig
from tarflow_lm.modeling import TarFlowLMModel

TINY = dict(vocab_size=5, latent_dim=4, max_seq_len=6, hidden_size=16, layers_per_block=1, num_heads=2)


def _model() -> TarFlowLMModel:
    torch.manual_seed(0)
    return TarFlowLMModel(TarFlowLMConfig(**TINY)).eval()


OUT_OF_VOCAB = out_of_vocab(TINY["vocab_size"])

globals().update(
    conformance_tests(
        models=[ModelSpec(_model, {"hidden_size": 24}, {"hidden_size": 2**16}, name="TarFlowLMModel")],
        calls=[
            CallSpec(
                "forward",
                lambda input_ids: _model()(input_ids),
                lambda: {"input_ids": torch.randint(0, 5, (2, 6))},
                {"input_ids": (OUT_OF_VOCAB, AS_FLOAT, EXTRA_DIM)},
                names={"input_ids": ("input_ids", "token ids")},
            ),
            CallSpec(
                "generate",
                lambda batch_size, seq_len, temperature: _model().generate(batch_size, seq_len, temperature),
                lambda: {"batch_size": 2, "seq_len": 4, "temperature": 1.0},
                {"batch_size": COUNTS, "seq_len": COUNTS, "temperature": (*NONFINITE, 0.0)},
            ),
        ],
        clis=[
            CliSpec(
                "tarflow_lm",
                main,
                [
                    (["sample", "--model", "{missing}"], "{missing}"),
                    (["sample", "--model", "{empty_dir}"], "{empty_dir}"),
                    (["evaluate", "--model", "{corrupt}"], "config.json"),
                ],
            )
        ],
    )
)
