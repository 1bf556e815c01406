"""Bad-input conformance (labcore.conformance): R2LModel's save/load contract (on AutoModelForCausalLM through
labcore.hub.load_pretrained), generate's counts, CLI model paths."""

from __future__ import annotations

import torch

from labcore.conformance import COUNTS, CallSpec, CliSpec, ModelSpec, conformance_tests
from r2l_lm.__main__ import main
from r2l_lm.arithmetic import make_digit_tokenizer
from r2l_lm.model import R2LModel
from r2l_lm.training import tiny_llama


def _model() -> R2LModel:
    torch.manual_seed(0)
    tok = make_digit_tokenizer()
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    return R2LModel(tiny_llama(len(tok), 16, 1, 2, 16, tok.bos_token_id, tok.eos_token_id, pad), tok).eval()


globals().update(
    conformance_tests(
        models=[
            ModelSpec(_model, {"hidden_size": 24}, {"hidden_size": 2**18, "intermediate_size": 2**18}, name="R2LModel")
        ],
        calls=[
            CallSpec(
                "generate",
                lambda suffix, max_new_tokens: _model().generate(suffix, max_new_tokens=max_new_tokens),
                lambda: {"suffix": "1 2", "max_new_tokens": 2},
                {"max_new_tokens": COUNTS},
            ),
        ],
        clis=[
            CliSpec(
                "r2l_lm",
                main,
                [
                    (["sample", "--model", "{missing}", "--suffix", "1"], "{missing}"),
                    (["sample", "--model", "{corrupt}", "--suffix", "1"], "config.json"),
                ],
            )
        ],
    )
)
