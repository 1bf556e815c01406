"""Speed and agreement of the extractor backends on rendered prompt-set texts.

Usage: python benchmarks/typescore/bench_backends.py [--n 24] [--rate 0.1] [--gpu]
Renders the shipped prompts' texts (half clean, half with character error rate ``--rate``), reads them with each
backend and prints a markdown table: load time, images/s, TypeScore (default normalisation and with whitespace
ignored), mean |difference| of per-sample scores to the oracle (the text actually rendered), and agreement between
backends (Pearson r and mean |difference| of per-sample scores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from typescore import Normalizer, RenderModel, TypeScore, builtin_prompts, get_extractor


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=24, help="images (prompts cycled)")
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--backends", nargs="+", default=["easyocr", "rapidocr"])
    p.add_argument("--gpu", action="store_true", help="EasyOCR on CUDA")
    a = p.parse_args()

    prompts = builtin_prompts()
    items = [prompts[i % len(prompts)] for i in range(a.n)]
    clean, noisy = (
        RenderModel(0.0, seed=0, width=384, height=128, font_size=28),
        RenderModel(a.rate, seed=1, width=384, height=128, font_size=28),
    )
    half = a.n // 2
    images = (
        clean(prompt=[it.prompt for it in items[:half]]).images
        + noisy(prompt=[it.prompt for it in items[half:]]).images
    )
    truth = clean.rendered + noisy.rendered
    texts = [it.text for it in items]
    oracle = np.array([s.ensemble for s in TypeScore().score_texts(texts, truth).samples])

    per_sample, rows = {}, []
    for name in a.backends:
        tic = time.perf_counter()
        ex = get_extractor(name, gpu=a.gpu) if name == "easyocr" else get_extractor(name)
        load = time.perf_counter() - tic
        ex.extract(images[0])  # warm-up
        tic = time.perf_counter()
        extracted = [ex.extract(im) for im in images]
        speed = len(images) / (time.perf_counter() - tic)
        res = TypeScore().score_texts(texts, extracted)
        res_ns = TypeScore(normalizer=Normalizer(drop_whitespace=True)).score_texts(texts, extracted)
        scores = np.array([s.ensemble for s in res.samples])
        per_sample[name] = scores
        rows.append((name, load, speed, res.score, res_ns.score, float(np.abs(scores - oracle).mean())))

    print(
        f"{a.n} images ({half} clean, {a.n - half} at character error rate {a.rate}); oracle TypeScore "
        f"{oracle.mean():.3f}\n"
    )
    print("| backend | load s | images/s | TypeScore | TypeScore (spaces ignored) | mean abs diff to oracle |")
    print("|---|---|---|---|---|---|")
    for name, load, speed, s, s_ns, d in rows:
        print(f"| {name} | {load:.1f} | {speed:.2f} | {s:.3f} | {s_ns:.3f} | {d:.3f} |")
    names = list(per_sample)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            x, y = per_sample[names[i]], per_sample[names[j]]
            r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
            print(
                f"\nagreement {names[i]} vs {names[j]}: Pearson r = {r:.3f}, mean |diff| = {np.abs(x - y).mean():.3f}"
            )


if __name__ == "__main__":
    main()
