"""The three string similarities of TypeScore's ensemble, each in [0, 1] (1 = identical).

TypeScore compares the instructed text ``reference`` with the text ``extracted`` from the image through an
ensemble of normalised edit distance (NED), Smith-Waterman local alignment (SW) and normalised longest common
subsequence (NLCS) (paper Sec. 3). Empty-string rules, shared by all three: two empty strings are identical
(1.0); exactly one empty string shares nothing (0.0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rapidfuzz.distance import LCSseq, Levenshtein


def _empty_rule(reference: str, extracted: str) -> float | None:
    if not reference and not extracted:
        return 1.0
    if not reference or not extracted:
        return 0.0
    return None


def ned_similarity(reference: str, extracted: str) -> float:
    """``1 − Levenshtein(reference, extracted) / max(|reference|, |extracted|)`` (unit costs)."""
    if (rule := _empty_rule(reference, extracted)) is not None:
        return rule
    return 1.0 - Levenshtein.distance(reference, extracted) / max(len(reference), len(extracted))


def nlcs_similarity(reference: str, extracted: str) -> float:
    """``|LCS(reference, extracted)| / max(|reference|, |extracted|)`` (character subsequence)."""
    if (rule := _empty_rule(reference, extracted)) is not None:
        return rule
    return LCSseq.similarity(reference, extracted) / max(len(reference), len(extracted))


def smith_waterman_score(
    reference: str, extracted: str, match: float = 2.0, mismatch: float = -1.0, gap: float = 1.0
) -> float:
    """Best local-alignment score (linear gap penalty ``gap`` per skipped character).

    Row-vectorised DP: with ``T_j = max(0, H_{i-1,j-1} + s(a_i, b_j), H_{i-1,j} − gap)`` the horizontal
    recursion ``H_{i,j} = max(T_j, H_{i,j-1} − gap)`` unrolls to ``max_{k≤j} (T_k − gap·(j − k))``, i.e. a
    cumulative maximum of ``T_k + gap·k`` minus ``gap·j``: one numpy pass per row instead of a Python loop
    over cells.
    """
    if gap < 0 or match <= 0:
        raise ValueError(f"need match > 0 and gap ≥ 0, got match={match}, gap={gap}")
    if not reference or not extracted:
        return 0.0
    a = np.frombuffer(reference.encode("utf-32-le"), dtype=np.uint32)
    b = np.frombuffer(extracted.encode("utf-32-le"), dtype=np.uint32)
    if len(a) > len(b):  # the score is symmetric: loop over the shorter string
        a, b = b, a
    subst = np.where(a[:, None] == b[None, :], match, mismatch)  # all substitution scores at once
    ramp = gap * np.arange(len(b) + 1, dtype=np.float64)
    prev, t, best = np.zeros(len(b) + 1), np.zeros(len(b) + 1), np.zeros(len(b) + 1)
    for row in subst:
        np.maximum(prev[:-1] + row, prev[1:] - gap, out=t[1:])
        np.maximum(t, 0.0, out=t)
        t += ramp
        np.maximum.accumulate(t, out=prev)
        prev -= ramp
        np.maximum(best, prev, out=best)
    return float(best.max())


def sw_similarity(
    reference: str, extracted: str, match: float = 2.0, mismatch: float = -1.0, gap: float = 1.0
) -> float:
    """Smith-Waterman score over its maximum, ``match · |reference|`` (the instructed text aligned in full).

    Normalising by the instructed length makes SW the ensemble's *presence* term: extra text the extractor
    reads around the instructed text does not lower it, missing or wrong characters do.
    """
    if (rule := _empty_rule(reference, extracted)) is not None:
        return rule
    return smith_waterman_score(reference, extracted, match, mismatch, gap) / (match * len(reference))


SIMILARITIES: dict[str, Callable[[str, str], float]] = {
    "ned": ned_similarity,
    "sw": sw_similarity,
    "nlcs": nlcs_similarity,
}


def similarities(reference: str, extracted: str) -> dict[str, float]:
    """All three similarities plus their ensemble (the unweighted mean, paper Sec. 3)."""
    out = {name: fn(reference, extracted) for name, fn in SIMILARITIES.items()}
    out["ensemble"] = sum(out.values()) / len(SIMILARITIES)
    return out


def ensemble_similarity(reference: str, extracted: str) -> float:
    """Mean of NED, SW and NLCS similarities: the per-sample TypeScore."""
    return similarities(reference, extracted)["ensemble"]
