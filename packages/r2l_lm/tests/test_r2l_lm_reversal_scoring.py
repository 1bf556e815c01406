import random

import pytest
import torch

from r2l_lm import (
    MCQScorer,
    R2LDataCollator,
    R2LModel,
    ReversedTextDataset,
    conditional_entropy_proxy,
    continuation_logprobs,
    encode_pair,
    reverse_ids,
    reverse_padded,
)
from r2l_lm.model import DIRECTION_KEY
from r2l_lm.reversal import pad_right

QUESTIONS = ["Which animal is lazy?", "Where does water boil?", "The capital of France is"]
OPTIONS = [["the dog", "the quick brown fox", "a cat"], ["at one hundred degrees", "Paris"], ["Paris", "water", "dog"]]


@torch.no_grad()
def brute_logprob(model, ids: list[int], start: int) -> float:
    """Sum of log p(ids[k] | ids[:k]) for k >= start, one unpadded forward per prefix length."""
    total = 0.0
    for k in range(start, len(ids)):
        logits = model(input_ids=torch.tensor([ids[:k]])).logits[0, -1].double()
        total += float(logits.log_softmax(-1)[ids[k]])
    return total


@pytest.mark.parametrize("bos,eos", [(1, 2), (1, None), (None, 2), (None, None)])
def test_reverse_ids_is_an_involution_keeping_bos_and_eos(bos, eos):
    rng = random.Random(0)
    for _ in range(200):  # sequences as a tokenizer makes them: optional BOS, body, optional EOS
        body = [rng.randrange(3, 10) for _ in range(rng.randrange(0, 8))]
        ids = [1] * rng.randrange(2) + body + [2] * rng.randrange(2)
        rev = reverse_ids(ids, bos, eos)
        assert reverse_ids(rev, bos, eos) == ids
        assert sorted(rev) == sorted(ids)
        if ids and bos is not None and ids[0] == bos:
            assert rev[0] == bos
        if len(ids) > 1 and eos is not None and ids[-1] == eos:
            assert rev[-1] == eos
        if bos is not None and eos is not None:
            assert rev[int(ids[:1] == [1]) : len(ids) - int(ids[-1:] == [2])] == body[::-1]
    assert reverse_ids([1, 5, 6, 7, 2], 1, 2) == [1, 7, 6, 5, 2]


def test_reverse_padded_matches_reverse_ids():
    rng = random.Random(1)
    seqs = [
        [1] * rng.randrange(2) + [rng.randrange(3, 9) for _ in range(rng.randrange(0, 6))] + [2] * rng.randrange(2)
        for _ in range(64)
    ]
    seqs = [s for s in seqs if s]
    lengths = torch.tensor([len(s) for s in seqs])
    ids = pad_right(seqs, 0)
    assert ids.shape == (len(seqs), int(lengths.max()))
    assert [row[:n].tolist() for row, n in zip(ids, lengths)] == seqs
    assert pad_right([[5]], 7, length=3).tolist() == [[5, 7, 7]]
    out = reverse_padded(ids, lengths, 1, 2)
    for i, s in enumerate(seqs):
        assert out[i, : len(s)].tolist() == reverse_ids(s, 1, 2)
        assert (out[i, len(s) :] == 0).all()


def test_dataset_and_collator_agree(bpe_tokenizer):
    texts = ["The quick brown fox.", "Water boils at one hundred degrees.", "a"]
    l2r = ReversedTextDataset(texts, bpe_tokenizer, "l2r")
    r2l = ReversedTextDataset(texts, bpe_tokenizer, "r2l")
    bos = bpe_tokenizer.bos_token_id
    for i in range(len(texts)):
        assert l2r[i]["input_ids"][0] == r2l[i]["input_ids"][0] == bos
        assert r2l[i]["input_ids"][1:] == l2r[i]["input_ids"][1:][::-1]
    natural = R2LDataCollator(bpe_tokenizer, reverse=True)([l2r[i] for i in range(3)])
    direct = R2LDataCollator(bpe_tokenizer)([r2l[i] for i in range(3)])
    assert torch.equal(natural["input_ids"], direct["input_ids"])
    assert torch.equal(natural["labels"], direct["labels"])
    assert (direct["labels"][direct["attention_mask"] == 0] == -100).all()
    truncated = ReversedTextDataset(texts, bpe_tokenizer, "r2l", max_length=4)[1]["input_ids"]
    assert truncated == [bos, *l2r[1]["input_ids"][1:4][::-1]]  # the first tokens are kept, then reversed


def test_encode_pair_splits_the_joint_tokenization(bpe_tokenizer):
    for q, a in [("The capital of France is", " Paris"), ("Which answer is ", "correct?"), ("dog", "s")]:
        ctx, cont = encode_pair(bpe_tokenizer, q, a)
        assert ctx + cont == bpe_tokenizer(q + a, add_special_tokens=False)["input_ids"]
        assert ctx == bpe_tokenizer(q.rstrip(), add_special_tokens=False)["input_ids"]


def test_continuation_logprobs_equal_unbatched_brute_force(bpe_model):
    rng = random.Random(2)
    prefixes = [[1] + [rng.randrange(3, 300) for _ in range(rng.randrange(0, 5))] for _ in range(7)]
    conts = [[rng.randrange(3, 300) for _ in range(rng.randrange(1, 6))] for _ in range(7)]
    res = continuation_logprobs(bpe_model, prefixes, conts, batch_size=3)
    for p, c, lp, n in zip(prefixes, conts, res.logprob, res.num_tokens):
        assert int(n) == len(c)
        assert float(lp) == pytest.approx(brute_logprob(bpe_model, p + c, len(p)), abs=1e-4)


def test_models_without_logits_to_keep_give_the_same_scores(bpe_model, bpe_tokenizer):
    class PlainLM(torch.nn.Module):  # a causal LM whose forward takes input_ids only
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids)

    fast = MCQScorer(bpe_model, bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)
    plain = MCQScorer(PlainLM(bpe_model), bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)
    torch.testing.assert_close(torch.cat(fast), torch.cat(plain), atol=1e-5, rtol=0)


def test_r2l_paradigms_equal_hand_computed_log_probs(bpe_model, bpe_tokenizer):
    scorer = MCQScorer(bpe_model, bpe_tokenizer, "r2l", batch_size=4)
    bos = bpe_tokenizer.bos_token_id
    s3, s2, s1 = (scorer.score(QUESTIONS, OPTIONS, paradigm=p) for p in ("r2l-3", "r2l-2", "r2l-1"))
    for qi, (q, opts) in enumerate(zip(QUESTIONS, OPTIONS)):
        for ai, a in enumerate(opts):
            ctx, cont = encode_pair(bpe_tokenizer, q, " " + a)
            seq = [bos, *cont[::-1], *ctx[::-1]]  # what the R2L model reads: reversed answer, then question
            cond = brute_logprob(bpe_model, seq, 1 + len(cont))
            prior = brute_logprob(bpe_model, seq[: 1 + len(cont)], 1)
            assert float(s3[qi][ai]) == pytest.approx(cond, abs=1e-4)
            assert float(s2[qi][ai]) == pytest.approx(cond + prior, abs=1e-4)
            assert float(s1[qi][ai]) == pytest.approx(cond / len(ctx) + prior, abs=1e-4)


def test_l2r_score_is_length_normalised_log_prob(bpe_model, bpe_tokenizer):
    scorer = MCQScorer(bpe_model, bpe_tokenizer, "l2r")
    bos = bpe_tokenizer.bos_token_id
    tok, chars, raw = (scorer.score(QUESTIONS, OPTIONS, normalize=k) for k in ("tokens", "chars", "none"))
    for qi, (q, opts) in enumerate(zip(QUESTIONS, OPTIONS)):
        for ai, a in enumerate(opts):
            ctx, cont = encode_pair(bpe_tokenizer, q, " " + a)
            lp = brute_logprob(bpe_model, [bos, *ctx, *cont], 1 + len(ctx))
            assert float(raw[qi][ai]) == pytest.approx(lp, abs=1e-4)
            assert float(tok[qi][ai]) == pytest.approx(lp / len(cont), abs=1e-4)
            assert float(chars[qi][ai]) == pytest.approx(lp / len(" " + a), abs=1e-4)


def test_paradigm_3_is_bayes_posterior_under_uniform_prior(bpe_model, bpe_tokenizer):
    """Chain rule on the R2L model: paradigm 2 is log p_R2L(q, a), so paradigm 3 = log p(q, a) - log p(a), and
    the posterior p(a_i | q) with a uniform prior over the options is softmax of the paradigm-3 scores."""
    scorer = MCQScorer(bpe_model, bpe_tokenizer, "r2l")
    s3 = scorer.score(QUESTIONS, OPTIONS)  # default paradigm is r2l-3
    for qi, (q, opts) in enumerate(zip(QUESTIONS, OPTIONS)):
        joint = scorer.text_logprob([q + " " + a for a in opts])
        prior = scorer.text_logprob([" " + a for a in opts])
        torch.testing.assert_close(s3[qi], joint - prior, atol=1e-4, rtol=0)
        # Bayes with p(a_i) = 1/K: p(a_i | q) = p(q | a_i) / sum_j p(q | a_j)
        bayes = torch.exp(joint - prior) / torch.exp(joint - prior).sum()
        torch.testing.assert_close(s3[qi].softmax(0), bayes, atol=1e-6, rtol=0)


def test_gold_nll_and_entropy_proxy(bpe_model, bpe_tokenizer):
    l2r = MCQScorer(bpe_model, bpe_tokenizer, "l2r")
    r2l = MCQScorer(bpe_model, bpe_tokenizer, "r2l")
    gold = [o[0] for o in OPTIONS]
    nll_r2l = r2l.gold_nll(QUESTIONS, gold)
    s3 = r2l.score(QUESTIONS, [[g] for g in gold])
    torch.testing.assert_close(nll_r2l, -torch.cat(s3))
    raw = l2r.score(QUESTIONS, [[g] for g in gold], normalize="none")
    torch.testing.assert_close(l2r.gold_nll(QUESTIONS, gold), -torch.cat(raw))
    proxy = conditional_entropy_proxy(l2r, r2l, QUESTIONS, gold)
    assert proxy["H(Q|A) r2l"] == pytest.approx(float(nll_r2l.mean()))
    assert proxy["predicted winner"] == ("l2r" if proxy["H(A|Q) l2r"] <= proxy["H(Q|A) r2l"] else "r2l")
    with pytest.raises(ValueError, match="L2R scorer first"):
        conditional_entropy_proxy(r2l, l2r, QUESTIONS, gold)


@pytest.mark.parametrize("direction", ["l2r", "r2l"])
def test_evaluate_equals_accuracy_and_gold_nll(bpe_model, bpe_tokenizer, direction):
    """One scoring pass gives what ``accuracy`` and ``gold_nll`` compute with two."""
    scorer = MCQScorer(bpe_model, bpe_tokenizer, direction)
    gold = [1, 0, 2]
    res = scorer.evaluate(QUESTIONS, OPTIONS, gold)
    assert res["accuracy"] == scorer.accuracy(QUESTIONS, OPTIONS, gold)
    nll = scorer.gold_nll(QUESTIONS, [o[g] for o, g in zip(OPTIONS, gold)])
    assert res["gold_nll"] == pytest.approx(float(nll.mean()), rel=1e-6)
    with pytest.raises(ValueError, match="gold label must index"):
        scorer.evaluate(QUESTIONS, OPTIONS, [1, 2, 0])


def test_bad_input_gives_clear_errors(bpe_model, bpe_tokenizer):
    from transformers import PreTrainedTokenizerFast

    no_bos = PreTrainedTokenizerFast(tokenizer_object=bpe_tokenizer.backend_tokenizer, pad_token="<pad>")
    with pytest.raises(ValueError, match="no BOS"):
        MCQScorer(bpe_model, no_bos, "r2l")
    scorer = MCQScorer(bpe_model, no_bos, "r2l", bos_token_id=2)  # documented workaround: reuse another id
    assert len(scorer.score(["a question"], [["x", "y"]])[0]) == 2
    scorer = MCQScorer(bpe_model, bpe_tokenizer, "r2l")
    with pytest.raises(ValueError, match="empty option"):
        scorer.score(["Which?"], [["dog", " "]])
    with pytest.raises(ValueError, match="no options"):
        scorer.score(["Which?"], [[]])
    with pytest.raises(ValueError, match="empty question"):
        scorer.score([""], [["dog"]])
    with pytest.raises(ValueError, match="does not apply"):
        scorer.score(["Which?"], [["dog"]], paradigm="l2r")
    with pytest.raises(ValueError, match="direction"):
        MCQScorer(bpe_model, bpe_tokenizer, "backwards")


def test_r2l_model_generates_backwards_and_roundtrips(bpe_model, bpe_tokenizer, tmp_path):
    r2l = R2LModel(bpe_model, bpe_tokenizer)
    suffix = " is the answer."
    text = r2l.generate(suffix, max_new_tokens=5, do_sample=False)
    # manual greedy decoding on the reversed suffix, then flip back to natural order
    ids = [bpe_tokenizer.bos_token_id, *bpe_tokenizer(suffix, add_special_tokens=False)["input_ids"][::-1]]
    new = []
    for _ in range(5):
        nxt = int(bpe_model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
        new.append(nxt)
    assert text == bpe_tokenizer.decode(new[::-1], skip_special_tokens=True)
    # a batch of suffixes of different lengths (left-padded) gives each one's own greedy text
    suffixes = [suffix, " Paris.", " the lazy dog is the answer."]
    batched = r2l.generate(suffixes, max_new_tokens=5, do_sample=False)
    assert batched == [r2l.generate(s, max_new_tokens=5, do_sample=False) for s in suffixes] and batched[0] == text
    with pytest.raises(ValueError, match="non-empty list"):
        r2l.generate([])
    # log_prob(text | suffix) is paradigm 3 of the scorer
    s3 = r2l.mcq_scorer(delimiter="").score(["The capital"], [[" of France"]])[0]
    assert r2l.log_prob("The capital", " of France") == pytest.approx(float(s3[0]), abs=1e-6)
    r2l.save_pretrained(tmp_path / "m")
    loaded = R2LModel.from_pretrained(tmp_path / "m")
    assert getattr(loaded.model.config, DIRECTION_KEY) == "r2l"
    x = torch.tensor([[1, 5, 9, 30]])
    torch.testing.assert_close(loaded.model(input_ids=x).logits, bpe_model(input_ids=x).logits)
    setattr(loaded.model.config, DIRECTION_KEY, "l2r")
    with pytest.raises(ValueError, match="right-to-left"):
        R2LModel(loaded.model, bpe_tokenizer)


def test_cli_sample_seed_and_device_take_effect(bpe_model, bpe_tokenizer, tmp_path, capsys, stop_at_device):
    import copy

    from r2l_lm.__main__ import main

    flat = copy.deepcopy(bpe_model)
    with torch.no_grad():
        flat.lm_head.weight.div_(20)  # the fixture's logits are peaked: sampling would be near-greedy
    R2LModel(flat, bpe_tokenizer).save_pretrained(tmp_path)
    args = ["sample", "--model", str(tmp_path), "--suffix", " is the answer.", "--num", "4", "--do-sample"]

    def draw(seed: int) -> str:
        main([*args, "--max-new-tokens", "8", "--seed", str(seed)])
        return capsys.readouterr().out

    assert draw(0) == draw(0) != draw(1)
    with pytest.raises(stop_at_device, match="meta"):
        main([*args, "--device", "meta"])
