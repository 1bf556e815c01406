import random

import pytest

from typescore import (
    RAW,
    Normalizer,
    ensemble_similarity,
    ned_similarity,
    nlcs_similarity,
    similarities,
    smith_waterman_score,
    sw_similarity,
)
from typescore.similarity import best_matching_span


def brute_levenshtein(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def brute_lcs(a: str, b: str) -> int:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, ca in enumerate(a, 1):
        for j, cb in enumerate(b, 1):
            t[i][j] = t[i - 1][j - 1] + 1 if ca == cb else max(t[i - 1][j], t[i][j - 1])
    return t[-1][-1]


def brute_smith_waterman(a: str, b: str, match: float, mismatch: float, gap: float) -> float:
    h = [[0.0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            s = match if a[i - 1] == b[j - 1] else mismatch
            h[i][j] = max(0.0, h[i - 1][j - 1] + s, h[i - 1][j] - gap, h[i][j - 1] - gap)
    return max(max(row) for row in h)


def random_pairs(n=40, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        alphabet = "abcé ü"[: rng.randint(2, 6)]
        yield (
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))),
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))),
        )


def test_hand_computed_kitten_sitting():
    # Levenshtein 3 (k→s, e→i, +g), max length 7; LCS "ittn" = 4; best local alignment itten/ittin = 4·2 − 1 = 7.
    assert ned_similarity("kitten", "sitting") == pytest.approx(4 / 7)
    assert nlcs_similarity("kitten", "sitting") == pytest.approx(4 / 7)
    assert smith_waterman_score("kitten", "sitting") == 7
    assert sw_similarity("kitten", "sitting") == pytest.approx(7 / 12)
    assert ensemble_similarity("kitten", "sitting") == pytest.approx((4 / 7 + 4 / 7 + 7 / 12) / 3)


def test_smith_waterman_textbook_example():
    # The classic ACACACTA / AGCACACA example (+2 match, −1 mismatch, −1 gap) scores 12.
    assert smith_waterman_score("ACACACTA", "AGCACACA", match=2, mismatch=-1, gap=1) == 12


@pytest.mark.parametrize("params", [(2, -1, 1), (1, -1, 1), (3, -3, 2), (1, -0.5, 0.25)])
def test_vectorised_smith_waterman_matches_cellwise_dp(params):
    for a, b in random_pairs(seed=hash(params) % 1000):
        assert smith_waterman_score(a, b, *params) == pytest.approx(brute_smith_waterman(a, b, *params))
        assert smith_waterman_score(b, a, *params) == pytest.approx(brute_smith_waterman(a, b, *params))


def test_ned_and_nlcs_match_brute_force_and_are_symmetric():
    for a, b in random_pairs():
        m = max(len(a), len(b))
        assert ned_similarity(a, b) == pytest.approx(1 - brute_levenshtein(a, b) / m)
        assert nlcs_similarity(a, b) == pytest.approx(brute_lcs(a, b) / m)
        assert ned_similarity(a, b) == pytest.approx(ned_similarity(b, a))
        assert nlcs_similarity(a, b) == pytest.approx(nlcs_similarity(b, a))
        for v in similarities(a, b).values():
            assert 0.0 <= v <= 1.0


def test_empty_string_rules():
    for fn in (ned_similarity, sw_similarity, nlcs_similarity, ensemble_similarity):
        assert fn("", "") == 1.0
        assert fn("abc", "") == 0.0
        assert fn("", "abc") == 0.0


def test_unicode_code_points():
    # NFC "é" is one code point: one substitution out of 4.
    assert ned_similarity("café", "cafe") == pytest.approx(0.75)
    # Decomposed "e + U+0301" is two code points: substitute e→é and delete the accent, out of 5.
    decomposed = "cafe\u0301"
    assert ned_similarity(RAW(decomposed), "café") == pytest.approx(1 - 2 / 5)
    norm = Normalizer()
    assert ned_similarity(norm(decomposed), norm("café")) == 1.0
    assert similarities("東京タワー", "東京タワー")["ensemble"] == 1.0


def test_sw_is_the_presence_term():
    # Extra text around a perfect rendering keeps SW at 1; NED and NLCS pay for the extra characters.
    s = similarities("open", "we are open now")
    assert s["sw"] == 1.0
    assert s["ned"] == pytest.approx(4 / 15) and s["nlcs"] == pytest.approx(4 / 15)
    # A missing word lowers SW: "fresh bread" (11) found in "fresh bread daily" (17): 11·2 / 34.
    assert sw_similarity("fresh bread daily", "fresh bread") == pytest.approx(22 / 34)


def test_ensemble_orders_correct_typo_unrelated():
    ref = "fresh bread daily"
    correct, typo, unrelated = (ensemble_similarity(ref, x) for x in (ref, "fresh breed daily", "closed on monday"))
    assert correct == 1.0 > typo > unrelated


def test_bad_parameters():
    with pytest.raises(ValueError):
        smith_waterman_score("a", "a", match=0)
    with pytest.raises(ValueError):
        smith_waterman_score("a", "a", gap=-1)


def test_smith_waterman_memory_is_linear():
    import tracemalloc

    rng = random.Random(0)
    a = "".join(rng.choice("abcdefgh ") for _ in range(3000))
    b = a[:1500] + "XYZ" + a[1500:]
    tracemalloc.start()
    score = smith_waterman_score(a, b)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert score == 2 * 3000 - 3  # the whole of a aligned, one 3-character gap in b
    assert peak < 2_000_000  # a full 3000 x 3003 matrix of float64 would take 72 MB


def test_best_matching_span_equals_brute_force():
    from rapidfuzz.distance import Levenshtein

    rng = random.Random(1)
    for _ in range(300):
        ref = "".join(rng.choice("ab c") for _ in range(rng.randint(1, 6)))
        ext = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 10)))
        start, end, edits = best_matching_span(ref, ext)
        assert 0 <= start <= end <= len(ext) and Levenshtein.distance(ref, ext[start:end]) == edits
        spans = [(i, j) for i in range(len(ext) + 1) for j in range(i, len(ext) + 1)]
        assert edits == min(Levenshtein.distance(ref, ext[i:j]) for i, j in spans)
    assert best_matching_span("hello world", "grand opening hello wxrld today") == (14, 25, 1)
    assert best_matching_span("abc", "") == (0, 0, 3)
