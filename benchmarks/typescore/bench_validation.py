"""Each extractor's error against the oracle on the validation scenes (typescore.validation), over seeds.

For every condition (clean, distractor text, perspective, blur, texture, all at once) and seed, ``--n`` shipped
prompts are rendered with 10 % character errors; the oracle score is that of the text actually drawn. Reported:
mean |TypeScore_extractor − oracle| per image, as mean ± std over the seeds, for the paper's whole-text score and
our best-matching-span score, and the oracle's own mean (how far from 1 the rendering errors and distractors put it).

Usage: python benchmarks/typescore/bench_validation.py [--seeds 0 1 2] [--n 8] [--backends easyocr rapidocr]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from labcore.seeds import over_seeds, seed_table
from typescore import TypeScore, get_extractor
from typescore.normalize import Normalizer
from typescore.validation import CONDITIONS, validation_set


def errors_vs_oracle(metric: TypeScore, oracle: TypeScore, condition: str, seed: int, n: int, rate: float) -> dict:
    """Oracle score and the extractor's mean |score − oracle| on one seed's scenes, in both modes."""
    scenes = validation_set(condition, seed, n, rate)
    got = metric([s.image for s in scenes], [s.item for s in scenes])
    truth = oracle.score_texts([s.item.text for s in scenes], [s.drawn for s in scenes])
    out = {}
    for mode in ("whole", "span"):
        exact = np.array(truth.per_sample(mode))
        out[f"oracle ({mode})"] = exact.mean()
        out[f"error ({mode})"] = np.abs(np.array(got.per_sample(mode)) - exact).mean()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--backends", nargs="+", default=["easyocr", "rapidocr"])
    a = p.parse_args()
    rows = {}
    for backend in a.backends:
        tic = time.perf_counter()
        # RapidOCR's English model drops word spaces: compare without spaces, as the CLI does by default for it
        norm = Normalizer(drop_whitespace=backend == "rapidocr")
        metric, oracle = TypeScore(get_extractor(backend), norm), TypeScore(normalizer=norm)
        for condition in CONDITIONS:
            run = functools.partial(errors_vs_oracle, metric, oracle, condition, n=a.n, rate=a.rate)
            rows[f"{backend} | {condition}"] = over_seeds(run, a.seeds)
            print(f"{backend} {condition} done ({time.perf_counter() - tic:.0f} s)", flush=True)
    print(f"\n{a.n} scenes per seed and condition, {a.rate:.0%} character errors\n")
    metrics = ["oracle (whole)", "error (whole)", "oracle (span)", "error (span)"]
    print(seed_table(rows, metrics, a.seeds, label="backend | condition").replace("|---|", "|---|---|", 1))


if __name__ == "__main__":
    main()
