"""``score --compile`` (labcore.compiling.maybe_compile): compiled MCQ scores equal eager ones."""

import torch

from labcore.testing import compiled_vs_eager
from r2l_lm.arithmetic import make_digit_tokenizer
from r2l_lm.scoring import MCQScorer
from r2l_lm.training import tiny_llama


def test_compiled_scoring_matches_eager(compile_backend):
    torch.manual_seed(0)
    tok = make_digit_tokenizer()
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    model = tiny_llama(len(tok), 16, 1, 2, 16, tok.bos_token_id, tok.eos_token_id, pad).eval()
    qs, opts, gold = ["1+2=", "3+4="], [["3", "4"], ["7", "8"]], [0, 0]
    run = lambda m: torch.tensor(MCQScorer(m, tok, "r2l").evaluate(qs, opts, gold)["gold_nll"])  # noqa: E731
    eager, compiled = compiled_vs_eager(run, model, compile_backend)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
