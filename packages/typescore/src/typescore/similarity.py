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


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def smith_waterman_score(
    reference: str, extracted: str, match: float = 2.0, mismatch: float = -1.0, gap: float = 1.0
) -> float:
    """Best local-alignment score (linear gap penalty ``gap`` per skipped character), in linear memory.

    Row-vectorised DP over the shorter string, keeping two rows: with
    ``T_j = max(0, H_{i-1,j-1} + s(a_i, b_j), H_{i-1,j} − gap)`` the horizontal recursion
    ``H_{i,j} = max(T_j, H_{i,j-1} − gap)`` unrolls to ``max_{k≤j} (T_k − gap·(j − k))``, i.e. a cumulative
    maximum of ``T_k + gap·k`` minus ``gap·j``: one numpy pass per row and ``O(min + max)`` memory.
    """
    if gap < 0 or match <= 0:
        raise ValueError(f"need match > 0 and gap ≥ 0, got match={match}, gap={gap}")
    if not reference or not extracted:
        return 0.0
    a, b = _codes(reference), _codes(extracted)
    if len(a) > len(b):  # the score is symmetric: loop over the shorter string
        a, b = b, a
    n = len(b)
    symbols, which = np.unique(a, return_inverse=True)
    # the substitution row of each distinct symbol, built once when that stays small (else one row at a time)
    table = np.where(b[None, :] == symbols[:, None], match, mismatch) if len(symbols) * n <= 2**22 else None
    ramp = gap * np.arange(n + 1, dtype=np.float64)
    prev, t, best, diag = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1), np.empty(n)
    for k, code in zip(which, a):
        row = table[k] if table is not None else np.where(b == code, match, mismatch)
        np.add(prev[:-1], row, out=diag)
        np.subtract(prev[1:], gap, out=t[1:])
        np.maximum(t[1:], diag, out=t[1:])
        np.maximum(t, 0.0, out=t)
        t += ramp
        np.maximum.accumulate(t, out=prev)
        prev -= ramp
        np.maximum(best, prev, out=best)
    return float(best.max())


def best_matching_span(reference: str, extracted: str) -> tuple[int, int, int]:
    """``(start, end, edits)``: the substring ``extracted[start:end]`` closest to the whole ``reference`` in edit
    distance (approximate substring matching: the reference aligned in full, free skips before and after it in
    the extracted text), and that distance. Two rows of memory; ties go to the earliest end, then the shortest span.

    DP ``D_{i,j}`` = fewest edits turning ``reference[:i]`` into a substring of ``extracted`` ending at ``j``
    (``D_{0,j} = 0``). Each row is vectorised as in :func:`smith_waterman_score` (a cumulative minimum for the
    horizontal insertions), carrying each cell's span start along.
    """
    if not reference:
        return 0, 0, 0
    a, b = _codes(reference), _codes(extracted)
    n = len(b)
    idx = np.arange(n + 1)
    dist, start = np.zeros(n + 1, dtype=np.int64), idx.copy()
    t, t_start = np.empty(n + 1, dtype=np.int64), np.empty(n + 1, dtype=np.int64)
    for i, code in enumerate(a, 1):
        t[0], t_start[0] = i, 0
        diag = dist[:-1] + (b != code)
        up = dist[1:] + 1
        take_diag = diag <= up
        t[1:] = np.where(take_diag, diag, up)
        t_start[1:] = np.where(take_diag, start[:-1], start[1:])
        v = t - idx  # D_{i,j} = min_{k≤j} (T_k + (j − k)): the latest k reaching the running minimum
        running = np.minimum.accumulate(v)
        k = np.maximum.accumulate(np.where(v == running, idx, 0))
        dist, start = running + idx, t_start[k]
    end = int(np.argmin(dist))
    return int(start[end]), end, int(dist[end])


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
