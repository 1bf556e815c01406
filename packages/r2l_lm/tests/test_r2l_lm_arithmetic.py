import math
from collections import Counter

import numpy as np
import pytest

from r2l_lm.arithmetic import (
    VARIANTS,
    equation,
    make_digit_tokenizer,
    make_mcq,
    make_mcqs,
    parse_equation,
    split_pairs,
    theoretical_conditional_entropy,
)


def brute_entropy(m: int, n: int, scored, given) -> float:
    """H(scored | given) for (A, B) uniform, by counting joint and marginal outcomes in pure Python."""
    joint, marg = Counter(), Counter()
    for a in range(10**m):
        for b in range(10**n):
            joint[(scored(a, b), given(a, b))] += 1
            marg[given(a, b)] += 1
    total = 10 ** (m + n)
    return sum(c / total * math.log(marg[g] / c) for (_, g), c in joint.items())


def test_equation_format_matches_the_official_data():
    # official line: " 1 0 7 0 * 7 4 5 6 = 0 7 9 7 7 9 2 0" (factors padded to m digits, product to m + n)
    assert equation(1070, 7456, 4, 4) == "1 0 7 0 * 7 4 5 6 = 0 7 9 7 7 9 2 0"
    assert equation(760, 9459, 4, 4, "reverse") == "0 7 1 8 8 8 4 0 = 0 7 6 0 * 9 4 5 9"
    assert equation(3, 7, 2, 1) == "0 3 * 7 = 0 2 1"
    with pytest.raises(ValueError, match="does not fit"):
        equation(100, 1, 2, 1)
    with pytest.raises(ValueError, match="fmt"):
        equation(1, 1, 1, 1, "sideways")


@pytest.mark.parametrize("fmt", ["forward", "reverse"])
def test_generated_equations_are_correct_and_round_trip(fmt):
    train, test = split_pairs(2, 2, 300, seed=3)
    assert len(train) + len(test) == 10**4
    assert not set(map(tuple, train)) & set(map(tuple, test))
    tok = make_digit_tokenizer()
    for a, b in test:
        line = equation(int(a), int(b), 2, 2, fmt)
        pa, pb, pp = parse_equation(line, fmt)
        assert (pa, pb, pp) == (a, b, a * b)
        ids = tok(line, add_special_tokens=False)["input_ids"]
        assert len(ids) == 2 + 2 + 4 + 2 and tok.unk_token_id not in ids  # one token per digit / operator
        assert tok.decode(ids) == line


@pytest.mark.parametrize("fmt", ["forward", "reverse"])
def test_distractors_change_one_digit_and_are_distinct(fmt):
    for variant in VARIANTS[fmt]:
        items = make_mcqs(split_pairs(2, 2, 200, seed=4)[1], 2, 2, variant, fmt, seed=5)
        for it in items:
            assert len(set(it.options)) == len(it.options) == 4
            full = f"{it.question} {it.answer}"
            a, b, p = parse_equation(full, fmt)
            assert a * b == p  # the gold option completes a correct equation
            for opt in it.options:
                if opt == it.answer:
                    continue
                diff = [(x, y) for x, y in zip(opt, it.answer) if x != y]
                assert len(opt) == len(it.answer) and len(diff) == 1 and all(c.isdigit() for c in diff[0])
                if variant == "r2l-m":  # the product changes, "* B =" stays
                    assert opt.split("=")[0] == it.answer.split("=")[0]
        golds = Counter(it.gold for it in items)
        assert len(golds) == 4  # the gold position is shuffled


def test_mcq_rejects_impossible_requests():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="distinct one-digit distractors"):
        make_mcq(3, 4, 1, 1, "l2r-n", "reverse", rng, num_choices=11)  # B has 1 digit: at most 9 distractors
    with pytest.raises(ValueError, match="not defined"):
        make_mcq(3, 4, 1, 1, "l2r", "reverse", rng)
    with pytest.raises(ValueError, match="cannot draw"):
        split_pairs(1, 1, 60, num_train=50)


@pytest.mark.parametrize("m,n", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_theoretical_entropies_match_brute_force_enumeration(m, n):
    mn = brute_entropy(m, n, lambda a, b: (a, b), lambda a, b: a * b)
    assert theoretical_conditional_entropy(m, n, "r2l-mn") == pytest.approx(mn, abs=1e-12)
    assert theoretical_conditional_entropy(m, n, "l2r-mn") == pytest.approx(mn, abs=1e-12)
    h_a = brute_entropy(m, n, lambda a, b: a, lambda a, b: (b, a * b))
    assert theoretical_conditional_entropy(m, n, "r2l-m") == pytest.approx(h_a, abs=1e-12)
    h_b = brute_entropy(m, n, lambda a, b: b, lambda a, b: (a, a * b))
    assert theoretical_conditional_entropy(m, n, "l2r-n") == pytest.approx(h_b, abs=1e-12)
    assert theoretical_conditional_entropy(m, n, "l2r") == theoretical_conditional_entropy(m, n, "r2l") == 0.0


def test_theoretical_entropies_hand_computed():
    # H(A | B, P) > 0 only when B = 0 (then A is uniform over 10^m values): 10^-n * m ln 10
    assert theoretical_conditional_entropy(2, 2, "r2l-m") == pytest.approx(1e-2 * 2 * math.log(10))
    assert theoretical_conditional_entropy(2, 3, "l2r-n") == pytest.approx(1e-2 * 3 * math.log(10))
    # 1x1 digits: P = 0 has 19 factorisations; other products have 1 or 2 (a*b = b*a) or 3 (e.g. 4 = 1*4 = 2*2 = 4*1)
    counts = Counter(a * b for a in range(10) for b in range(10))
    hand = sum(c * math.log(c) for c in counts.values()) / 100
    assert counts[0] == 19 and counts[4] == 3 and counts[36] == 3
    assert theoretical_conditional_entropy(1, 1, "r2l-mn") == pytest.approx(hand)
    # uniform over a finite set of pairs: {(1,6), (2,3), (3,2), (6,1)} all give P = 6: log 4
    pairs = np.array([[1, 6], [2, 3], [3, 2], [6, 1]])
    assert theoretical_conditional_entropy(1, 1, "r2l-mn", pairs=pairs) == pytest.approx(math.log(4))
    assert theoretical_conditional_entropy(1, 1, "r2l-m", pairs=pairs) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown variant"):
        theoretical_conditional_entropy(1, 1, "r2l-x")
