"""The controlled arithmetic simulation (Sec. 4 of the paper): m-digit x n-digit multiplication.

Formats, as in the official data files (digits space-separated, factors zero-padded to m and n digits,
the product to m + n digits):

* ``forward`` ("Forward X"):  ``1 2 * 3 4 = 0 4 0 8``   question ``1 2 * 3 4 =``, answer ``0 4 0 8``
* ``reverse`` ("Reverse X"):  ``0 4 0 8 = 1 2 * 3 4``   question ``0 4 0 8 =``, answer ``1 2 * 3 4``

MCQ distractors change exactly one digit of the answer (the official ``randomly_change_numbers(x, 1)``);
here they are also kept distinct from each other (the official sampler may repeat one).

Variants (the six columns of the paper's simulation table) say which part is scored given which:

====================  =========  ====================================================
variant               model      score
====================  =========  ====================================================
forward / ``l2r``     L2R        ``log p(P | A, B)``    question ``A * B =``, options ``P_i``
forward / ``r2l-mn``  R2L        ``log p(A, B | P)``    same items, paradigm 3
forward / ``r2l-m``   R2L        ``log p(A | B, P)``    question ``A``, options ``* B = P_i``
reverse / ``r2l``     R2L        ``log p(P | A, B)``    question ``P =``, options ``A * B`` (one digit changed)
reverse / ``l2r-mn``  L2R        ``log p(A, B | P)``    same items
reverse / ``l2r-n``   L2R        ``log p(B | P, A)``    question ``P = A *``, options ``B_i``
====================  =========  ====================================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("forward", "reverse")
VARIANTS: dict[str, dict[str, str]] = {  # format -> variant -> direction of the model that scores it
    "forward": {"l2r": "l2r", "r2l-mn": "r2l", "r2l-m": "r2l"},
    "reverse": {"r2l": "r2l", "l2r-mn": "l2r", "l2r-n": "l2r"},
}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    return fmt


def digits(x: int, width: int) -> str:
    """``x`` zero-padded to ``width`` digits, space-separated."""
    if x < 0 or x >= 10**width:
        raise ValueError(f"{x} does not fit in {width} digits")
    return " ".join(str(x).zfill(width))


def equation(a: int, b: int, m: int, n: int, fmt: str = "forward") -> str:
    """One training line: ``A * B = P`` (forward) or ``P = A * B`` (reverse)."""
    p = digits(a * b, m + n)
    if check_format(fmt) == "forward":
        return f"{digits(a, m)} * {digits(b, n)} = {p}"
    return f"{p} = {digits(a, m)} * {digits(b, n)}"


def parse_equation(text: str, fmt: str = "forward") -> tuple[int, int, int]:
    """``(a, b, p)`` of an equation line (the inverse of :func:`equation`)."""
    left, right = (s.strip() for s in text.split("="))
    prod, factors = (right, left) if check_format(fmt) == "forward" else (left, right)
    a, b = (int(s.replace(" ", "")) for s in factors.split("*"))
    return a, b, int(prod.replace(" ", ""))


def split_pairs(
    m: int, n: int, num_test: int, seed: int = 0, num_train: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train/test ``(a, b)`` arrays drawn without replacement from all ``10^m x 10^n`` pairs."""
    total = 10 ** (m + n)
    num_train = total - num_test if num_train is None else num_train
    if num_test < 0 or num_train < 0 or num_test + num_train > total:
        raise ValueError(f"cannot draw {num_train} train + {num_test} test pairs from the {total} {m}x{n}-digit pairs")
    flat = np.random.default_rng(seed).choice(total, size=num_test + num_train, replace=False)
    pairs = np.stack([flat // 10**n, flat % 10**n], axis=1)
    return pairs[num_test:], pairs[:num_test]


def perturb_one_digit(answer: str, rng: np.random.Generator) -> str:
    """Change exactly one digit of a spaced answer to another digit (operators untouched)."""
    toks = answer.split(" ")
    pos = [i for i, t in enumerate(toks) if t.isdigit()]
    if not pos:
        raise ValueError(f"{answer!r} has no digit to change")
    i = int(rng.choice(pos))
    toks[i] = str(rng.choice([d for d in range(10) if str(d) != toks[i]]))
    return " ".join(toks)


@dataclass
class MCQ:
    question: str
    options: list[str]
    gold: int

    @property
    def answer(self) -> str:
        return self.options[self.gold]


def make_mcq(
    a: int, b: int, m: int, n: int, variant: str, fmt: str, rng: np.random.Generator, num_choices: int = 4
) -> MCQ:
    """A multiple-choice item for ``(a, b)``: the gold answer plus one-digit-changed distinct distractors."""
    if variant not in VARIANTS[check_format(fmt)]:
        raise ValueError(f"variant {variant!r} is not defined for format {fmt!r}; choose from {VARIANTS[fmt]}")
    A, B, P = digits(a, m), digits(b, n), digits(a * b, m + n)
    if fmt == "forward":
        question, head, tail = (A, f"* {B} = ", P) if variant == "r2l-m" else (f"{A} * {B} =", "", P)
    else:
        question, head, tail = (f"{P} = {A} *", "", B) if variant == "l2r-n" else (f"{P} =", "", f"{A} * {B}")
    n_digits = sum(c.isdigit() for c in tail)  # the perturbed part; ``head`` stays intact
    if not 1 <= num_choices <= 1 + 9 * n_digits:
        raise ValueError(f"cannot make {num_choices - 1} distinct one-digit distractors of {tail!r}")
    gold = head + tail
    options = {gold}
    while len(options) < num_choices:
        options.add(head + perturb_one_digit(tail, rng))
    opts = sorted(options)
    opts = [opts[i] for i in rng.permutation(len(opts))]
    return MCQ(question, opts, opts.index(gold))


def make_mcqs(
    pairs: np.ndarray, m: int, n: int, variant: str, fmt: str, seed: int = 0, num_choices: int = 4
) -> list[MCQ]:
    rng = np.random.default_rng(seed)
    return [make_mcq(int(a), int(b), m, n, variant, fmt, rng, num_choices) for a, b in pairs]


def _mean_log_count(sorted_keys: np.ndarray) -> float:
    """``E[log c(Y)]`` over uniform samples whose keys ``Y`` are given sorted, ``c(y)`` the count of ``y``."""
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    counts = np.diff(np.concatenate([[0], bounds, [sorted_keys.size]])).astype(np.float64)
    return float((counts * np.log(counts)).sum() / sorted_keys.size)


def theoretical_conditional_entropy(m: int, n: int, variant: str, pairs: np.ndarray | None = None) -> float:
    """Exact conditional entropy in nats of the scored part given the conditioning part, for ``(A, B)``
    uniform over all ``10^m x 10^n`` pairs (the "Theo. Cond. Ent." row of the simulation table), or
    uniform over the rows of ``pairs`` (e.g. a finite training set).

    Scored and conditioning parts together determine ``(A, B)`` and vice versa, so with ``Y`` the
    conditioning part ``H(X | Y) = H(A, B | Y) = E[log |{(a, b) -> Y}|]``, computed by enumeration.
    """
    if m < 1 or n < 1 or m + n > 8:
        raise ValueError("exact enumeration needs 1 <= m, n and m + n <= 8 digits")
    known = {v for d in VARIANTS.values() for v in d}
    if variant not in known:
        raise ValueError(f"unknown variant {variant!r}; choose from {sorted(known)}")
    if variant in ("l2r", "r2l"):  # P given (A, B) is deterministic
        return 0.0
    scale = 10 ** (m + n)  # products are < scale, so (factor, product) keys are factor * scale + product
    if pairs is not None:
        a, b = np.asarray(pairs, dtype=np.int64).T
        if a.size == 0 or a.min() < 0 or b.min() < 0 or a.max() >= 10**m or b.max() >= 10**n:
            raise ValueError(f"pairs must be a non-empty (N, 2) array of {m}- and {n}-digit factors")
        p = a * b
        keys = {"r2l-mn": p, "l2r-mn": p, "r2l-m": b * scale + p, "l2r-n": a * scale + p}[variant]
        return _mean_log_count(np.sort(keys))
    a = np.arange(10**m, dtype=np.int64)
    b = np.arange(10**n, dtype=np.int64)
    if variant in ("r2l-mn", "l2r-mn"):  # H(A, B | P): sort all products (uint32 holds 10^8)
        prods = (a[:, None] * b[None, :]).astype(np.uint32).ravel()
        prods.sort()
        return _mean_log_count(prods)
    fixed, free = (b, a) if variant == "r2l-m" else (a, b)  # H(A | B, P) or H(B | A, P): group by the fixed factor
    return sum(_mean_log_count(np.sort(free * x)) for x in fixed) / fixed.size


DIGIT_VOCAB = ("<pad>", "<s>", "</s>", "<unk>", *map(str, range(10)), "*", "=")


def make_digit_tokenizer():
    """A word-level tokenizer over digits, ``*`` and ``=`` (one token per spaced symbol), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(DIGIT_VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with single spaces
    bos = DIGIT_VOCAB.index("<s>")  # like Llama tokenizers, add BOS unless add_special_tokens=False
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def accuracy(pred: Sequence[int], items: Sequence[MCQ]) -> float:
    if len(pred) != len(items):
        raise ValueError(f"{len(pred)} predictions for {len(items)} items")
    return sum(int(p == it.gold) for p, it in zip(pred, items)) / max(len(items), 1)


def write_lm_eval_task(items: Sequence[MCQ], path: str | os.PathLike, task_name: str = "multiply") -> dict:
    """Write MCQs as the official lm-eval data (``question`` ending in ``"= "``, ``choices.text``/``label``,
    ``answerKey``) and return the matching task config (the official ``multiply.yaml``, as a dict for
    ``lm_eval.simple_evaluate(tasks=[config])``)."""
    labels = [chr(ord("A") + i) for i in range(max(len(it.options) for it in items))]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for it in items:
        lab = labels[: len(it.options)]
        rows.append(
            {"question": it.question + " ", "choices": {"text": it.options, "label": lab}, "answerKey": lab[it.gold]}
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": str(path)}},
        "validation_split": "validation",
        "output_type": "multiple_choice",
        "doc_to_text": "question",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "doc_to_choice": "{{choices.text}}",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }
