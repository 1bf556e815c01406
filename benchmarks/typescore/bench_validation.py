"""Each extractor's error against the oracle on the validation scenes (typescore.validation), over seeds.

For every condition (clean, distractor text, perspective, blur, texture, all at once) and seed, ``--n`` shipped
prompts are rendered with 10 % character errors; the oracle score is that of the text actually drawn. Reported:
mean |TypeScore_extractor − oracle| per image, as mean ± std over the seeds, for the paper's whole-text score and
our best-matching-span score, and the oracle's own mean (how far from 1 the rendering errors and distractors put it).

Usage: python benchmarks/typescore/bench_validation.py [--seeds 0 1 2] [--n 8] [--backends easyocr rapidocr]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from typescore import TypeScore, get_extractor
from typescore.normalize import Normalizer
from typescore.validation import CONDITIONS, validation_set


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--backends", nargs="+", default=["easyocr", "rapidocr"])
    a = p.parse_args()
    rows = []
    for backend in a.backends:
        tic = time.perf_counter()
        # RapidOCR's English model drops word spaces: compare without spaces, as the CLI does by default for it
        norm = Normalizer(drop_whitespace=backend == "rapidocr")
        metric, oracle = TypeScore(get_extractor(backend), norm), TypeScore(normalizer=norm)
        for condition in CONDITIONS:
            err = {"whole": [], "span": []}
            oracle_mean = {"whole": [], "span": []}
            for seed in a.seeds:
                scenes = validation_set(condition, seed, a.n, a.rate)
                got = metric([s.image for s in scenes], [s.item for s in scenes])
                truth = oracle.score_texts([s.item.text for s in scenes], [s.drawn for s in scenes])
                for mode in err:
                    diff = np.abs(np.array(got.per_sample(mode)) - np.array(truth.per_sample(mode)))
                    err[mode].append(diff.mean())
                    oracle_mean[mode].append(np.mean(truth.per_sample(mode)))
            rows.append((backend, condition, err, oracle_mean))
            print(f"{backend} {condition} done ({time.perf_counter() - tic:.0f} s)", flush=True)
    seeds = ", ".join(map(str, a.seeds))
    print(f"\n{len(a.seeds)} seeds ({seeds}), {a.n} scenes each, {a.rate:.0%} character errors")
    print("| backend | condition | oracle (whole) | error (whole) | oracle (span) | error (span) |")
    print("|---|---|---|---|---|---|")
    for backend, condition, err, om in rows:
        cells = [f"{np.mean(om['whole']):.3f}", f"{np.mean(err['whole']):.3f} ± {np.std(err['whole']):.3f}"]
        cells += [f"{np.mean(om['span']):.3f}", f"{np.mean(err['span']):.3f} ± {np.std(err['span']):.3f}"]
        print(f"| {backend} | {condition} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
