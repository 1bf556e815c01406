"""TarFlowLM vs a same-budget autoregressive Transformer on text8-like characters, and generation speed.

    python benchmarks/tarflow_lm/bench.py --steps 300      # CPU, tiny: numbers are NOT paper-comparable

Prints markdown tables: validation bits/char (AR: exact NLL; TarFlowLM: ELBO and IW-K bounds), mean ± std over
``--seeds`` (:mod:`labcore.seeds`; the seed sets initialisation, batches and posterior samples; the data are
fixed), and generation tokens/s for patch sizes 1/2/4 (untrained weights: speed depends on shapes, not values).
"""

from __future__ import annotations

import argparse
import time

import torch

from labcore.rng import seed_everything
from labcore.seeds import over_seeds, seed_table
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
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lr", type=float, default=3e-3, help="learning rate of every model")
    ap.add_argument("--flow-only", action="store_true", help="train only the (non-progressive) TarFlowLM")
    ap.add_argument("--speed-only", action="store_true", help="skip the likelihood comparison")
    a = ap.parse_args()
    if not a.speed_only:
        likelihood_table(a)
    speed_table()
    print(f"\n(torch threads: {torch.get_num_threads()})")


def likelihood_table(a):
    tr, va = text8_like_splits(200_000)
    valid = contiguous_windows(va, a.seq_len, 64)
    cfg = PRESETS["tiny"](
        max_seq_len=a.seq_len,
        hidden_size=64,
        layers_per_block=1,
        layer_types=["mix1", "affine", "affine"],
        num_mixtures=[8, 0, 0],
    )
    params = {}

    def timed_train(model, seed, **kw):
        params[type(model).__name__] = n_params(model)
        t0 = time.time()
        train(
            model,
            tr,
            steps=a.steps,
            batch_size=a.batch_size,
            seq_len=a.seq_len,
            lr=a.lr,
            seed=seed,
            show_progress=False,
            **kw,
        )
        return time.time() - t0

    def one_seed(seed):
        seed_everything(seed)
        flow = TarFlowLMModel(cfg)
        flow_s = timed_train(flow, seed)
        fm = evaluate(flow, valid, num_samples=8, seed=seed)
        flow_row = {
            "TarFlowLM Mix-1 + 2×affine: ELBO, bits/char": fm["elbo_bpc"],
            "same, importance-weighted bound K = 8, bits/char": fm["iw8_bpc"],
            "TarFlowLM training (not progressive), s": flow_s,
        }
        if a.flow_only:
            return flow_row
        seed_everything(seed)
        ar = ARBaselineLM(27, 64, 3, 4, a.seq_len)  # 3 Transformer layers = 3 flow layers × 1
        ar_s = timed_train(ar, seed)
        seed_everything(seed)
        prog = TarFlowLMModel(cfg)
        timed_train(prog, seed, progressive=True)
        pm = evaluate(prog, valid, num_samples=8, seed=seed)
        return {
            "AR Transformer, 3 layers: exact NLL, bits/char": evaluate(ar, valid)["elbo_bpc"],
            **flow_row,
            "same, progressive training (one layer at a time): ELBO, bits/char": pm["elbo_bpc"],
            "same, progressive: IW-8, bits/char": pm["iw8_bpc"],
            "AR training, s": ar_s,
        }

    spread = over_seeds(one_seed, a.seeds)
    print(f"## Likelihood ({a.steps} steps × batch {a.batch_size} × {a.seq_len} chars, lr {a.lr:g}, CPU, loaded)\n")
    print("params: " + ", ".join(f"{name} {n:,}" for name, n in params.items()) + "\n")
    print(seed_table({k: {"value": v} for k, v in spread.items()}, ["value"], a.seeds, label="measure"))
    print("\npaper anchor, text8 (GPT-2-small budget): AR / TCSM / MD4 = 1.23 / ≤1.25 / ≤1.37")


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
