"""Speed and agreement of the extractor backends on rendered prompt-set texts.

Usage: python benchmarks/typescore/bench_backends.py [--n 24] [--rate 0.1] [--seeds 0 1 2] [--gpu]
Per seed, renders the shipped prompts' texts (half clean, half with character error rate ``--rate``; the seed sets
both renderers' noise), reads them with each backend (loaded once) and prints markdown tables over the seeds
(:mod:`labcore.seeds`): images/s as median [min, max]; TypeScore (default normalisation and with whitespace ignored),
mean |difference| of per-sample scores to the oracle (the text actually rendered), and agreement between backends
(Pearson r and mean |difference| of per-sample scores) as mean ± std; and each backend's load time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from labcore.seeds import Spread, over_seeds, seed_table
from typescore import Normalizer, RenderModel, TypeScore, builtin_prompts, get_extractor


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=24, help="images (prompts cycled)")
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--backends", nargs="+", default=["easyocr", "rapidocr"])
    p.add_argument("--gpu", action="store_true", help="EasyOCR on CUDA")
    a = p.parse_args()

    prompts = builtin_prompts()
    items = [prompts[i % len(prompts)] for i in range(a.n)]
    texts = [it.text for it in items]
    half = a.n // 2
    extractors, load = {}, {}
    for name in a.backends:
        tic = time.perf_counter()
        extractors[name] = get_extractor(name, gpu=a.gpu) if name == "easyocr" else get_extractor(name)
        load[name] = time.perf_counter() - tic

    def one_seed(seed: int) -> dict[str, float]:
        clean, noisy = (
            RenderModel(0.0, seed=2 * seed, width=384, height=128, font_size=28),
            RenderModel(a.rate, seed=2 * seed + 1, width=384, height=128, font_size=28),
        )
        images = (
            clean(prompt=[it.prompt for it in items[:half]]).images
            + noisy(prompt=[it.prompt for it in items[half:]]).images
        )
        oracle = np.array([s.ensemble for s in TypeScore().score_texts(texts, clean.rendered + noisy.rendered).samples])
        out, per_sample = {"oracle / TypeScore": float(oracle.mean())}, {}
        for name, ex in extractors.items():
            ex.extract(images[0])  # warm-up
            tic = time.perf_counter()
            extracted = [ex.extract(im) for im in images]
            out[f"{name} / images/s"] = len(images) / (time.perf_counter() - tic)
            res = TypeScore().score_texts(texts, extracted)
            res_ns = TypeScore(normalizer=Normalizer(drop_whitespace=True)).score_texts(texts, extracted)
            per_sample[name] = np.array([s.ensemble for s in res.samples])
            out[f"{name} / TypeScore"] = res.score
            out[f"{name} / TypeScore (spaces ignored)"] = res_ns.score
            out[f"{name} / mean abs diff to oracle"] = float(np.abs(per_sample[name] - oracle).mean())
        names = list(per_sample)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                x, y = per_sample[names[i]], per_sample[names[j]]
                pair = f"{names[i]} vs {names[j]}"
                out[f"{pair} / Pearson r"] = float(np.corrcoef(x, y)[0, 1])  # NaN (refused) if one is constant
                out[f"{pair} / mean abs diff"] = float(np.abs(x - y).mean())
        return out

    spread = over_seeds(one_seed, a.seeds)
    rows: dict[str, dict[str, Spread]] = {}
    for key, value in spread.items():
        row, metric = key.split(" / ")
        rows.setdefault(row, {})[metric] = value
    print(f"{a.n} images ({half} clean, {a.n - half} at character error rate {a.rate}) per seed\n")
    score_cols = ["TypeScore", "TypeScore (spaces ignored)", "mean abs diff to oracle"]
    backends = {name: rows[name] for name in a.backends}
    print(seed_table(backends, score_cols, a.seeds, label="backend") + "\n")
    print(seed_table(backends, ["images/s"], a.seeds, style="median", digits=2, label="backend") + "\n")
    print(f"oracle TypeScore {rows['oracle']['TypeScore'].format()}")
    print("load s: " + ", ".join(f"{name} {t:.1f}" for name, t in load.items()))
    for pair, metrics in rows.items():
        if " vs " in pair:
            print(f"agreement {pair}: " + ", ".join(f"{m} {v.format()}" for m, v in metrics.items()))


if __name__ == "__main__":
    main()
