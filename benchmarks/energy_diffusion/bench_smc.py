"""Composition with exact vs distilled energies: SMC against score-sum baselines, and sampler cost.

Usage: python benchmarks/energy_diffusion/bench_smc.py [--particles 2000] [--steps 100] [--train]
Part 1 uses the exact mixture energies (no learning error): it isolates what the samplers do.
Part 2 (``--train``) trains and distils the two toy targets first (a few minutes on CPU).
Prints markdown tables: MMD² / sliced Wasserstein to exact samples of p_A·p_B and p_A², and ms per run.
"""

from __future__ import annotations

import argparse

import torch

from energy_diffusion.experiment import compare, composition_tasks, learn, toy_pair
from energy_diffusion.metrics import mmd_rbf, sliced_wasserstein


def table(title: str, rows: list[tuple[str, str, dict]]) -> None:
    print(f"\n### {title}\n\n| task | sampler | MMD² ↓ | sliced W ↓ | seconds |\n|---|---|---|---|---|")
    for task, name, r in rows:
        print(f"| {task} | {name} | {r['mmd']:.4f} | {r['sw']:.3f} | {r['seconds']:.2f} |")


def run(models: list, args, weight_min_sigma: float) -> list[tuple[str, str, dict]]:
    rows = []
    for task, fk, exact in composition_tasks(models):
        res, ref = compare(fk, exact, n=args.particles, steps=args.steps, weight_min_sigma=weight_min_sigma)
        rows += [(task, name, r) for name, r in res.items()]
        fresh = exact.sample(args.particles, torch.Generator().manual_seed(99))
        floor = {"mmd": mmd_rbf(fresh, ref), "sw": sliced_wasserstein(fresh, ref), "seconds": 0.0}
        rows.append((task, "noise floor: fresh exact samples", floor))
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--particles", type=int, default=2000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--train", action="store_true", help="also run with distilled energies (slow)")
    p.add_argument("--teacher-steps", type=int, default=1500)
    p.add_argument("--distill-steps", type=int, default=1000)
    args = p.parse_args()
    torch.manual_seed(0)
    table("exact energies (exact Feynman-Kac weights at every level)", run(list(toy_pair()), args, 0.0))
    if args.train:
        learned = learn(list(toy_pair()), args.teacher_steps, args.distill_steps)
        print(f"\ndistillation ε-MSE: A {learned.parity[0]:.4f}, B {learned.parity[1]:.4f}")
        table("distilled energies (weights switched off below σ = 0.2)", run(learned.energies, args, 0.2))


if __name__ == "__main__":
    main()
