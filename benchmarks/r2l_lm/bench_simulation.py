"""The arithmetic simulation table (4 models, all variants) at a chosen size, over seeds; use a GPU for m = n = 4.

Usage: python benchmarks/r2l_lm/bench_simulation.py --m 2 --n 2 --steps 2000 [--hidden 256 --layers 6]
       [--seeds 0 1 2]
Prints a markdown table, mean ± std over the seeds (:mod:`labcore.seeds`; the seed sets the train/test split,
initialisation, batches and distractors), then the gaps L2R − R2L(m,n) (forward) and R2L − L2R(m,n) (reverse)
per seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, replace

import torch

from labcore.seeds import over_seeds, seed_table
from r2l_lm.simulation import PAPER_ANCHORS, SimulationConfig, run_simulation

COLUMNS = ["test acc", "train acc", "test cond. ent.", "train cond. ent.", "theo. cond. ent.", "training loss"]


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
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="run directory (default: a fresh temporary one; an old one resumes)")
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
    out = a.out or tempfile.mkdtemp(prefix="r2l_bench_sim_")
    per_seed = {}

    def run(seed: int) -> dict[str, float]:
        res = run_simulation(replace(cfg, seed=seed), f"{out}/seed{seed}")
        per_seed[seed] = res
        # accuracies in %; the keys "variant|column" keep one metric per table cell
        return {f"{v}|{c}": (100 * row[c] if c.endswith("acc") else row[c]) for v, row in res.items() for c in COLUMNS}

    spreads = over_seeds(run, a.seeds)
    rows = {v: {c: spreads[f"{v}|{c}"] for c in COLUMNS} for v in per_seed[a.seeds[0]]}
    table = seed_table(rows, COLUMNS, a.seeds, digits=3, label="variant")
    print(table)
    print("\npaper test acc (4x4, %): " + ", ".join(f"{v} {PAPER_ANCHORS[v]:.2f}" for v in rows))
    for seed, res in per_seed.items():
        acc = {v: 100 * r["test acc"] for v, r in res.items()}
        loss = {v: r["training loss"] for v, r in res.items()}
        print(
            f"seed {seed}: forward L2R − R2L(m,n) {acc['forward/l2r'] - acc['forward/r2l-mn']:+.1f}, "
            f"reverse R2L − L2R(m,n) {acc['reverse/r2l'] - acc['reverse/l2r-mn']:+.1f} points; training loss "
            f"forward L2R {loss['forward/l2r']:.3f} vs R2L {loss['forward/r2l-mn']:.3f}, "
            f"reverse R2L {loss['reverse/r2l']:.3f} vs L2R {loss['reverse/l2r-mn']:.3f}"
        )
    print("\nconfig: " + ", ".join(f"{k}={v}" for k, v in asdict(cfg).items() if k != "seed"))
    print(f"wall time: {time.perf_counter() - t:.0f} s on {'cuda' if torch.cuda.is_available() else 'cpu'}")


if __name__ == "__main__":
    main()
