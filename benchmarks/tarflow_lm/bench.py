"""TarFlowLM vs a same-budget autoregressive Transformer on text8-like characters, and generation speed.

    python benchmarks/tarflow_lm/bench.py --steps 300      # CPU, tiny: numbers are NOT paper-comparable

Prints a markdown table: validation bits/char (AR: exact NLL; TarFlowLM: ELBO and IW-K bounds) and
generation tokens/s for patch sizes 1/2/4 (untrained weights: speed depends on shapes, not values).
"""

from __future__ import annotations

import argparse
import time

import torch

from labcore.rng import seed_everything
from tarflow_lm import PRESETS, TarFlowLMModel
from tarflow_lm.baseline import ARBaselineLM
from tarflow_lm.data import contiguous_windows, text8_like_splits
from tarflow_lm.training import evaluate, train


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--speed-only", action="store_true", help="skip the likelihood comparison")
    a = ap.parse_args()
    if not a.speed_only:
        likelihood_table(a)
    speed_table()
    print(f"\n(torch threads: {torch.get_num_threads()})")


def likelihood_table(a):
    seed_everything(0)
    tr, va = text8_like_splits(200_000)
    valid = contiguous_windows(va, a.seq_len, 64)
    cfg = PRESETS["tiny"](
        max_seq_len=a.seq_len,
        hidden_size=64,
        layers_per_block=1,
        layer_types=["mix1", "affine", "affine"],
        num_mixtures=[8, 0, 0],
    )
    flow = TarFlowLMModel(cfg)
    t0 = time.time()
    train(flow, tr, steps=a.steps, batch_size=a.batch_size, lr=3e-3, show_progress=False)
    flow_time = time.time() - t0
    fm = evaluate(flow, valid, num_samples=8)
    seed_everything(0)
    prog = TarFlowLMModel(cfg)
    train(prog, tr, steps=a.steps, batch_size=a.batch_size, lr=3e-3, progressive=True, show_progress=False)
    pm = evaluate(prog, valid, num_samples=8)

    seed_everything(0)
    ar = ARBaselineLM(27, 64, 3, 4, a.seq_len)  # 3 Transformer layers = 3 flow layers × 1
    t0 = time.time()
    train(ar, tr, steps=a.steps, batch_size=a.batch_size, lr=3e-3, show_progress=False)
    ar_time = time.time() - t0
    ar_bpc = evaluate(ar, valid)["elbo_bpc"]  # exact NLL

    print(f"## Likelihood ({a.steps} steps × batch {a.batch_size} × {a.seq_len} chars, CPU, contended)\n")
    print("| model | params | valid bits/char | train s |\n|---|---|---|---|")
    print(f"| AR Transformer (exact NLL) | {n_params(ar):,} | {ar_bpc:.3f} | {ar_time:.0f} |")
    print(f"| TarFlowLM mix1+2×affine, ELBO | {n_params(flow):,} | {fm['elbo_bpc']:.3f} | {flow_time:.0f} |")
    print(f"| TarFlowLM mix1+2×affine, IW-8 bound | | {fm['iw8_bpc']:.3f} | |")
    print(
        f"| same, progressive (1 layer at a time, equal step shares), ELBO / IW-8 | | "
        f"{pm['elbo_bpc']:.3f} / {pm['iw8_bpc']:.3f} | |"
    )
    print("| paper anchor, text8 (GPT-2-small budget): AR / TCSM / MD4 | | 1.23 / ≤1.25 / ≤1.37 | |")


def speed_table():
    print("\n## Generation speed (batch 8, 64 tokens, untrained weights, CPU)\n")
    print("| layers | patch size | tokens/s |\n|---|---|---|")
    for kinds, mixtures in ((["mix1", "affine", "affine"], [8, 0, 0]), (["affine"] * 3, 0)):
        for p in (1, 2, 4):
            torch.manual_seed(0)
            m = TarFlowLMModel(
                PRESETS["tiny"](
                    max_seq_len=64,
                    hidden_size=64,
                    layers_per_block=1,
                    patch_size=p,
                    layer_types=kinds,
                    num_mixtures=mixtures,
                )
            ).eval()
            t0 = time.time()
            m.generate(8, 64, generator=torch.Generator().manual_seed(0))
            print(f"| {'+'.join(kinds)} | {p} | {8 * 64 / (time.time() - t0):.0f} |")


if __name__ == "__main__":
    main()
