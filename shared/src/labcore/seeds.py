"""Results over several seeds: run a function per seed, summarise each metric, format the table with the seeds.

Every results table of the collection reports a spread over >= 3 seeds (mean ± std, or median and range) and
lists the seeds; :func:`over_seeds` and :func:`seed_table` are the one way to do it. Speed comparisons repeat
rounds instead of seeds: :func:`timed_rounds`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Summary of one metric over seeds."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (n − 1); 0 for a single value."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def format(self, style: str = "mean", digits: int = 3) -> str:
        """``"mean ± std"`` (``style="mean"``) or ``"median [min, max]"`` (``style="median"``)."""
        if style == "mean":
            return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        if style == "median":
            return f"{self.median:.{digits}f} [{min(self.values):.{digits}f}, {max(self.values):.{digits}f}]"
        raise ValueError(f"style must be 'mean' or 'median', got {style!r}")


def over_seeds(fn: Callable[[int], Mapping[str, float]], seeds: Iterable[int]) -> dict[str, Spread]:
    """Run ``fn(seed)`` (a mapping of metric -> number) for every seed; the spread of each metric.

    Refuses fewer than 3 seeds, repeated seeds, runs that return different metrics and non-finite numbers.
    """
    seeds = list(seeds)
    if len(seeds) < 3 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be at least 3 distinct integers, got {seeds}")
    runs = [dict(fn(seed)) for seed in seeds]
    keys = list(runs[0])
    for seed, run in zip(seeds, runs):
        if list(run) != keys:
            raise ValueError(f"seed {seed} returned metrics {list(run)}, the first seed {keys}")
        bad = [k for k, v in run.items() if not math.isfinite(float(v))]
        if bad:
            raise ValueError(f"seed {seed} returned non-finite {', '.join(bad)}")
    return {k: Spread(tuple(float(run[k]) for run in runs)) for k in keys}


def seed_table(
    rows: Mapping[str, Mapping[str, Spread]],
    metrics: Sequence[str],
    seeds: Sequence[int],
    style: str = "mean",
    digits: int = 3,
    label: str = "",
) -> str:
    """A Markdown table, one row per label (``rows[label][metric]``), closed by a line naming the seeds."""
    head = "mean ± std" if style == "mean" else "median [min, max]"
    lines = [f"| {label} | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, spreads in rows.items():
        lines.append(f"| {name} | " + " | ".join(spreads[m].format(style, digits) for m in metrics) + " |")
    lines.append(f"\n{head} over {len(seeds)} seeds ({', '.join(map(str, seeds))}).")
    return "\n".join(lines)


def timed_rounds(
    fns: Sequence[Callable[[], object]], repeats: int, *, warmup: int = 1
) -> tuple[list[list[float]], list]:
    """Wall seconds of each of ``fns`` in each of ``repeats`` rounds after ``warmup`` rounds, and each function's
    last output. Within a round the functions run back to back, so their ratios are measured side by side under
    the same load (report the per-round ratio's median and range with :class:`Spread`); CUDA is synchronised
    around every call when it is available."""
    import torch

    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times: list[list[float]] = [[] for _ in fns]
    outs: list = [None] * len(fns)
    for r in range(warmup + repeats):
        for i, fn in enumerate(fns):
            sync()
            start = time.perf_counter()
            outs[i] = fn()
            sync()
            if r >= warmup:
                times[i].append(time.perf_counter() - start)
    return times, outs
