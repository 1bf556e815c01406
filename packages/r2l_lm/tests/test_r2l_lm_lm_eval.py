import json

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

from r2l_lm.lm_eval_adapter import R2LHFLM  # noqa: E402
from r2l_lm.scoring import MCQScorer  # noqa: E402

QUESTIONS = ["Which animal is lazy?", "Where does water boil?", "Question: The capital of France is\nAnswer:"]
OPTIONS = [["the dog", "the quick brown fox", "a cat"], ["at one hundred degrees", "Paris"], ["Paris", "water", "dog"]]


def instances(questions, options, delimiter=" "):
    reqs = []
    for q, opts in zip(questions, options):
        for a in opts:
            reqs.append(Instance("loglikelihood", {}, (q, delimiter + a), idx=len(reqs)))
    return reqs


@pytest.fixture(scope="module")
def adapter_factory(bpe_model, bpe_tokenizer):
    def make(paradigm="r2l-3", batch_size=3):
        return R2LHFLM(bpe_model, tokenizer=bpe_tokenizer, paradigm=paradigm, device="cpu", batch_size=batch_size)

    return make


@pytest.mark.parametrize("paradigm", ["r2l-3", "r2l-2", "r2l-1"])
def test_adapter_scores_equal_the_direct_scorer(adapter_factory, bpe_model, bpe_tokenizer, paradigm):
    lm = adapter_factory(paradigm)
    got = torch.tensor([s for s, _ in lm.loglikelihood(instances(QUESTIONS, OPTIONS), disable_tqdm=True)])
    want = torch.cat(MCQScorer(bpe_model, bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS, paradigm=paradigm))
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=0)


def test_adapter_rolling_loglikelihood_is_reversed_text_logprob(adapter_factory, bpe_model, bpe_tokenizer):
    texts = ["The quick brown fox jumps over the lazy dog.", "Paris"]
    lm = adapter_factory()
    got = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (t,), idx=i) for i, t in enumerate(texts)])
    want = MCQScorer(bpe_model, bpe_tokenizer, "r2l").text_logprob(texts)
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want, atol=1e-4, rtol=0)
    with pytest.raises(NotImplementedError, match="right to left"):
        lm.generate_until([])
    with pytest.raises(ValueError, match="paradigm"):
        adapter_factory("l2r")


def test_simple_evaluate_on_a_local_multiple_choice_task(adapter_factory, bpe_model, bpe_tokenizer, tmp_path):
    """End to end through the harness: a json multiple_choice task like the official ``multiply.yaml``."""
    import lm_eval

    docs = [{"question": q, "choices": o, "label": i % len(o)} for i, (q, o) in enumerate(zip(QUESTIONS, OPTIONS))]
    path = tmp_path / "val.json"
    path.write_text("\n".join(json.dumps(d) for d in docs))
    task = {
        "task": "tiny_r2l_mcq",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": str(path)}},
        "validation_split": "validation",
        "output_type": "multiple_choice",
        "doc_to_text": "{{question}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}",
        "metric_list": [{"metric": "acc"}],
    }
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model=adapter_factory(), tasks=[task], task_manager=TaskManager(include_defaults=False), bootstrap_iters=0
    )
    scores = MCQScorer(bpe_model, bpe_tokenizer, "r2l").score(QUESTIONS, OPTIONS)
    want = sum(int(int(s.argmax()) == d["label"]) for s, d in zip(scores, docs)) / len(docs)
    assert out["results"]["tiny_r2l_mcq"]["acc,none"] == pytest.approx(want)


@pytest.mark.parametrize("fmt,variant", [("forward", "r2l-mn"), ("reverse", "r2l")])
def test_official_style_arithmetic_task_matches_direct_scoring(digit_model, digit_tokenizer, tmp_path, fmt, variant):
    """The simulation's MCQs exported like the official generate_json.py + multiply.yaml, scored by the harness
    through the adapter, give the accuracy of MCQScorer on the same items."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from r2l_lm.arithmetic import accuracy, make_mcqs, split_pairs, write_lm_eval_task

    items = make_mcqs(split_pairs(2, 2, 12, seed=7)[1], 2, 2, variant, fmt, seed=8)
    task = write_lm_eval_task(items, tmp_path / "test0.json", f"multiply_{fmt}")
    lm = R2LHFLM(digit_model, tokenizer=digit_tokenizer, device="cpu", batch_size=8)
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=TaskManager(include_defaults=False), bootstrap_iters=0
    )
    scorer = MCQScorer(digit_model, digit_tokenizer, "r2l")
    want = accuracy(scorer.predict([it.question for it in items], [it.options for it in items]), items)
    assert out["results"][f"multiply_{fmt}"]["acc,none"] == pytest.approx(want)
