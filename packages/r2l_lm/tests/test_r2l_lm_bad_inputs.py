"""Issue #23: reverse_ids is an involution with BOS/EOS anywhere; the scorer does not trust a swallowed
logits_to_keep; an empty MCQ set has no accuracy."""

import random

import pytest
import torch

from r2l_lm.__main__ import main as cli
from r2l_lm.reversal import pad_right, reverse_ids, reverse_padded
from r2l_lm.scoring import MCQScorer

QUESTIONS = ["the cat sat on the", "one two three"]
OPTIONS = [["mat", "dog", "sky"], ["four", "five"]]


@pytest.mark.parametrize("bos,eos", [(1, 2), (1, None), (None, 2), (1, 1)])
def test_reverse_ids_is_an_involution_with_bos_and_eos_anywhere(bos, eos):
    rng = random.Random(0)
    seqs = [[rng.choice([1, 2, 3, 4, 5]) for _ in range(rng.randrange(0, 9))] for _ in range(400)]
    seqs += [[3, 1], [2, 3], [3, 1, 1], [2, 2, 3]]  # a BOS last / an EOS first: were not involutive
    for ids in seqs:
        rev = reverse_ids(ids, bos, eos)
        assert reverse_ids(rev, bos, eos) == ids, ids
        assert sorted(rev) == sorted(ids)
        assert [t for t in rev if t not in (bos, eos)] == [t for t in ids if t not in (bos, eos)][::-1]
    nonempty = [s for s in seqs if s]
    out = reverse_padded(pad_right(nonempty, 0), torch.tensor([len(s) for s in nonempty]), bos, eos)
    assert [row[: len(s)].tolist() for row, s in zip(out, nonempty)] == [reverse_ids(s, bos, eos) for s in nonempty]


class SwallowingLM(torch.nn.Module):
    """A causal LM whose forward takes ``**kwargs`` and ignores them (Llama on transformers 4.46-4.48)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, **kwargs):
        return self.inner(input_ids=input_ids)


class TruncatingLM(SwallowingLM):
    def forward(self, input_ids, **kwargs):
        out = self.inner(input_ids=input_ids)
        out.logits = out.logits[:, :1]
        return out


def test_scorer_checks_the_logits_length_instead_of_trusting_logits_to_keep(bpe_model, bpe_tokenizer):
    fast = MCQScorer(bpe_model, bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)
    swallowed = MCQScorer(SwallowingLM(bpe_model), bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)
    torch.testing.assert_close(torch.cat(fast), torch.cat(swallowed), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="returned logits for 1 positions"):
        MCQScorer(TruncatingLM(bpe_model), bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)


def test_empty_question_set_has_no_accuracy(bpe_model, bpe_tokenizer, tmp_path):
    scorer = MCQScorer(bpe_model, bpe_tokenizer, "r2l")
    for call in (scorer.accuracy, scorer.evaluate):
        with pytest.raises(ValueError, match="no questions to score"):
            call([], [], [])
    empty = tmp_path / "mcq.jsonl"
    empty.write_text("\n")
    with pytest.raises(SystemExit, match="no questions"):
        cli(["score", "--model", str(tmp_path / "not-loaded"), "--mcq", str(empty)])
