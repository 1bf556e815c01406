"""The arithmetic simulation table (4 models, all variants) at a chosen size; use a GPU for m = n = 4.

Usage: python benchmarks/r2l_lm/bench_simulation.py --m 2 --n 2 --steps 2000 [--hidden 256 --layers 6]
"""

from __future__ import annotations

import argparse
import time

import torch

from r2l_lm.simulation import SimulationConfig, format_table, run_simulation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--num-test", type=int, default=1000)
    ap.add_argument("--num-train", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--precision", default="bf16-mixed" if torch.cuda.is_available() else None)
    ap.add_argument("--out", default="/tmp/r2l_bench_sim")
    a = ap.parse_args()
    cfg = SimulationConfig(
        m=a.m,
        n=a.n,
        num_test=a.num_test,
        num_train=a.num_train,
        hidden=a.hidden,
        layers=a.layers,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        precision=a.precision,
        devices=1,
    )
    t = time.perf_counter()
    results = run_simulation(cfg, a.out)
    print(format_table(results, cfg))
    print(f"\nwall time: {time.perf_counter() - t:.0f} s on {'cuda' if torch.cuda.is_available() else 'cpu'}")


if __name__ == "__main__":
    main()
