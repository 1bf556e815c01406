"""Golden scores of the official reversed evaluation (apple/ml-reversal-blessing's ``_EvalWrapperReversed``;
``golden/make_golden.py``, commit in the JSON) on a tiny random GPT-2 and an offline-trained BPE tokenizer.

Always runs: the R2L paradigm-3 score ``log p_R2L(question | option)`` of every option from
``MCQScorer`` (and from the lm-eval adapter, when lm-eval is installed) equals the official one to
``atol=1e-4`` on sums of ~10 float32 token log-probabilities of magnitude ~10 (``rtol=1e-6``).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from r2l_lm.scoring import MCQScorer

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = load_file(GOLDEN / "r2l_lm_golden.safetensors")
META = json.loads((GOLDEN / "r2l_lm_golden.json").read_text())


@pytest.fixture(scope="module")
def golden():
    model = GPT2LMHeadModel.from_pretrained(GOLDEN / "gpt2").float().eval()
    return model, PreTrainedTokenizerFast.from_pretrained(GOLDEN / "tokenizer")


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-4)


def test_official_commit_is_recorded():
    assert len(META["official_commit"]) == 40


GROUPS = [("", " "), ("_nodelim", "")]  # (key suffix, delimiter between question and option)


@pytest.mark.parametrize("key,delimiter", GROUPS)
def test_r2l_scores_match_the_official_reversed_evaluation(golden, key, delimiter):
    scorer = MCQScorer(*golden, "r2l", delimiter=delimiter)
    scores = scorer.score(META["questions" + key], META["options" + key], paradigm="r2l-3")
    close(torch.cat(scores), EXPECTED["r2l3_score" + key])


@pytest.mark.parametrize("key,delimiter", GROUPS)
def test_lm_eval_adapter_matches_the_official_reversed_evaluation(golden, key, delimiter):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance

    from r2l_lm.lm_eval_adapter import R2LHFLM

    model, tok = golden
    requests = [
        Instance("loglikelihood", {}, (q, delimiter + a), idx=i)
        for q, opts in zip(META["questions" + key], META["options" + key])
        for i, a in enumerate(opts)
    ]
    out = R2LHFLM(model, tokenizer=tok, device="cpu", batch_size=3).loglikelihood(requests, disable_tqdm=True)
    close(torch.tensor([s for s, _ in out], dtype=torch.float64), EXPECTED["r2l3_score" + key])
    assert [g for _, g in out] == EXPECTED["is_greedy" + key].tolist()
