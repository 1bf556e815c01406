"""Speed of the three similarities (pairs/s) vs text length; the vectorised Smith-Waterman vs a cell-by-cell DP.

Usage: python benchmarks/typescore/bench_similarity.py [--pairs 200] [--long 10000] [--repeats 3]

The last table times Smith-Waterman and the best-matching span on one pair of ``--long`` characters (median of
``--repeats`` runs; CPU seconds of this process and wall seconds: on a loaded machine CPU time is the fairer
reading of one core's speed) with the peak memory Python allocates meanwhile (tracemalloc: numpy arrays included).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import tracemalloc

from typescore import (
    best_matching_span,
    corrupt_text,
    ned_similarity,
    nlcs_similarity,
    smith_waterman_score,
    sw_similarity,
)


def cellwise_sw(a: str, b: str, match: float = 2.0, mismatch: float = -1.0, gap: float = 1.0) -> float:
    prev, best = [0.0] * (len(b) + 1), 0.0
    for ca in a:
        row = [0.0]
        for j, cb in enumerate(b, 1):
            row.append(max(0.0, prev[j - 1] + (match if ca == cb else mismatch), prev[j] - gap, row[j - 1] - gap))
        best, prev = max(best, max(row)), row
    return best


def rate(fn, pairs) -> float:
    tic = time.perf_counter()
    for a, b in pairs:
        fn(a, b)
    return len(pairs) / (time.perf_counter() - tic)


def long_pair(n: int, repeats: int) -> None:
    rng = random.Random(1)
    a = "".join(rng.choice("abcdefghij klmnop") for _ in range(n))
    b = corrupt_text(a, 0.1, rng)
    print(f"\n| {n:,} chars, one pair | CPU s (median of {repeats}) | wall s | peak MB |\n|---|---|---|---|")
    for name, fn in (("Smith-Waterman score", smith_waterman_score), ("best-matching span", best_matching_span)):
        cpu, wall, peak = [], [], 0
        for _ in range(repeats):
            tracemalloc.start()
            tic, tic_cpu = time.perf_counter(), time.process_time()
            fn(a, b)
            cpu.append(time.process_time() - tic_cpu)
            wall.append(time.perf_counter() - tic)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        print(f"| {name} | {statistics.median(cpu):.2f} | {statistics.median(wall):.2f} | {peak / 2**20:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--long", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = random.Random(0)
    print("| chars | NED pairs/s | NLCS pairs/s | SW (vectorised) pairs/s | SW (cell-by-cell Python) pairs/s |")
    print("|---|---|---|---|---|")
    for n in (12, 60, 240):
        refs = ["".join(rng.choice("abcdefghij klmnop") for _ in range(n)) for _ in range(a.pairs)]
        pairs = [(r, corrupt_text(r, 0.1, rng)) for r in refs]
        for x, y in pairs[:20]:
            assert smith_waterman_score(x, y) == cellwise_sw(x, y)
        slow = pairs[: max(5, a.pairs // (n // 12) ** 2)]
        print(
            f"| {n} | {rate(ned_similarity, pairs):,.0f} | {rate(nlcs_similarity, pairs):,.0f} | "
            f"{rate(sw_similarity, pairs):,.0f} | {rate(cellwise_sw, slow):,.0f} |"
        )
    long_pair(a.long, a.repeats)


if __name__ == "__main__":
    main()
