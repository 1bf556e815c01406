"""Speed of the three similarities (pairs/s) vs text length; the vectorised Smith-Waterman vs a cell-by-cell DP.

Usage: python benchmarks/typescore/bench_similarity.py [--pairs 200] [--long 10000] [--repeats 3]

The pairs/s table gives median [min, max] over ``--repeats`` rounds; in each round every similarity is timed back to
back, and the last column is the per-round ratio of the vectorised to the cell-by-cell Smith-Waterman.

The last table times Smith-Waterman and the best-matching span on one pair of ``--long`` characters (median and
range of ``--repeats`` runs; CPU seconds of this process and wall seconds: on a loaded machine CPU time is the fairer
reading of one core's speed) with the peak memory Python allocates meanwhile (tracemalloc: numpy arrays included).
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from labcore.seeds import Spread
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
    print(f"\n| {n:,} chars, one pair | CPU s, median [min, max] of {repeats} | wall s | peak MB |\n|---|---|---|---|")
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
        cpu_s, wall_s = Spread(tuple(cpu)).format("median", 2), Spread(tuple(wall)).format("median", 2)
        print(f"| {name} | {cpu_s} | {wall_s} | {peak / 2**20:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--long", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = random.Random(0)
    print(
        "| chars | NED pairs/s | NLCS pairs/s | SW (vectorised) pairs/s | SW (cell-by-cell Python) pairs/s "
        "| vectorised / cell-by-cell |"
    )
    print("|---|---|---|---|---|---|")
    for n in (12, 60, 240):
        refs = ["".join(rng.choice("abcdefghij klmnop") for _ in range(n)) for _ in range(a.pairs)]
        pairs = [(r, corrupt_text(r, 0.1, rng)) for r in refs]
        for x, y in pairs[:20]:
            assert smith_waterman_score(x, y) == cellwise_sw(x, y)
        slow = pairs[: max(5, a.pairs // (n // 12) ** 2)]
        rounds = [
            (
                rate(ned_similarity, pairs),
                rate(nlcs_similarity, pairs),
                rate(sw_similarity, pairs),
                rate(cellwise_sw, slow),
            )
            for _ in range(a.repeats)
        ]
        ned, nlcs, sw, cell = (list(col) for col in zip(*rounds))
        spread = lambda v, digits=0: Spread(tuple(v)).format("median", digits)  # noqa: E731
        ratio = [v / c for v, c in zip(sw, cell)]
        print(f"| {n} | {spread(ned)} | {spread(nlcs)} | {spread(sw)} | {spread(cell)} | {spread(ratio, 2)} |")
    long_pair(a.long, a.repeats)


if __name__ == "__main__":
    main()
