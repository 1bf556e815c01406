"""Composition with exact vs distilled energies: SMC against score-sum baselines, and sampler cost.

Usage: python benchmarks/energy_diffusion/bench_smc.py [--particles 2000] [--steps 100] [--seeds 0 1 ... 11]
                                                      [--train] [--train-seeds 0 1 2]
Part 1 uses the exact mixture energies (no learning error): it isolates what the samplers do.
Part 2 (``--train``) trains and distils the two toy targets first (a few minutes on CPU per seed).
Prints markdown tables of MMD² to exact samples of p_A·p_B and p_A², median [min, max] over the seeds (single
runs can collapse, so the median is the honest summary), with the seeds listed.
"""

from __future__ import annotations

import argparse

import torch

from energy_diffusion.experiment import compare, composition_tasks, learn, toy_pair
from energy_diffusion.metrics import mmd_rbf
from labcore.seeds import over_seeds, seed_table


def run(models: list, args, weight_min_sigma: float, seed: int) -> dict[str, float]:
    """MMD² of every sampler on every composition task for one seed (and the fresh-exact-sample noise floor)."""
    out = {}
    for task, fk, exact in composition_tasks(models):
        res, ref = compare(fk, exact, n=args.particles, steps=args.steps, seed=seed, weight_min_sigma=weight_min_sigma)
        out.update({f"{task} | {name}": r["mmd"] for name, r in res.items()})
        fresh = exact.sample(args.particles, torch.Generator().manual_seed(10_000 + seed))
        out[f"{task} | noise floor: fresh exact samples"] = mmd_rbf(fresh, ref)
    return out


def table(title: str, spreads: dict, seeds: list[int]) -> None:
    rows = {name: {"MMD² ↓": spread} for name, spread in spreads.items()}
    print(f"\n### {title}\n")
    print(seed_table(rows, ["MMD² ↓"], seeds, style="median", digits=4, label="task | sampler").replace(
        "|---|", "|---|---|", 1
    ))
    for task in dict.fromkeys(name.split(" | ")[0] for name in spreads):
        smc = spreads[f"{task} | SMC (Feynman-Kac)"].values
        others = [s.values for n, s in spreads.items() if n.startswith(f"{task} | reverse diffusion")]
        wins = sum(mine < min(theirs) for mine, *theirs in zip(smc, *others))
        print(f"{task}: SMC has the lowest MMD² of the three samplers in {wins} of {len(seeds)} seeds")

def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--particles", type=int, default=2000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    p.add_argument("--train", action="store_true", help="also run with distilled energies (slow)")
    p.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher-steps", type=int, default=1500)
    p.add_argument("--distill-steps", type=int, default=1000)
    args = p.parse_args()
    exact_models = list(toy_pair())
    spreads = over_seeds(lambda seed: run(exact_models, args, 0.0, seed), args.seeds)
    table("exact energies (exact Feynman-Kac weights at every level)", spreads, args.seeds)
    if args.train:

        def distilled(seed: int) -> dict[str, float]:
            learned = learn(list(toy_pair()), args.teacher_steps, args.distill_steps, seed=100 * seed)
            return run(learned.energies, args, 0.2, seed)

        spreads = over_seeds(distilled, args.train_seeds)
        table("distilled energies (weights switched off below σ = 0.2)", spreads, args.train_seeds)


if __name__ == "__main__":
    main()
