"""Bad-input conformance (labcore.conformance): TCSMDenoiser's save/load contract, forward and sampler inputs,
CLI paths."""

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
from tcsm.__main__ import main
from tcsm.config import TCSMConfig
from tcsm.model import TCSMDenoiser
from tcsm.noise import make_process
from tcsm.sampling import sample

TINY = dict(
    vocab_size=5,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=8,
    process="uniform",
)


def _model() -> TCSMDenoiser:
    torch.manual_seed(0)
    return TCSMDenoiser(TCSMConfig(**TINY)).eval()


def _sample_args() -> dict:
    model = _model()
    return {"model": model, "num": 2, "length": 4, "steps": 2}


OUT_OF_VOCAB = out_of_vocab(TINY["vocab_size"])

globals().update(
    conformance_tests(
        models=[ModelSpec(_model, {"hidden_size": 24}, {"hidden_size": 2**16}, name="TCSMDenoiser")],
        calls=[
            CallSpec(
                "forward",
                lambda input_ids, t: _model()(input_ids, t),
                lambda: {"input_ids": torch.randint(0, 5, (2, 4)), "t": torch.rand(2)},
                {"input_ids": (OUT_OF_VOCAB, AS_FLOAT, EXTRA_DIM), "t": (*NONFINITE, EXTRA_DIM)},
                names={"input_ids": ("input_ids", "token ids")},
            ),
            CallSpec(
                "sample",
                lambda model, num, length, steps: sample(
                    model, make_process("uniform", 5, model.config.schedule), num, length, steps
                ),
                _sample_args,
                {"num": COUNTS, "length": COUNTS, "steps": COUNTS},
            ),
        ],
        clis=[
            CliSpec(
                "tcsm",
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
