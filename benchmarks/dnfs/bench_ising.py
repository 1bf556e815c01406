"""ESS and free-energy error on a periodic Ising lattice at equal step budgets: DNFS vs LEAPS-style vs AIS-Gibbs.

    OMP_NUM_THREADS=1 python benchmarks/dnfs/bench_ising.py --side 10 --sigmas 0.1 --epochs 2 --ais-steps 1000 \
        --eval-samples 256 --seeds 0 1 2

DNFS and the LEAPS-style baseline (learned c_φ(t) instead of the sample-based control variate) train for
``--epochs`` × ``--steps-per-epoch`` optimiser steps, then draw ``--eval-samples`` weighted samples on their T−1
Euler steps; AIS with chromatic Gibbs sweeps on the same path takes ``--ais-steps`` annealing steps with as many
samples. Exact values: Ferdinand–Fisher (zero field). Prints one table per σ, mean ± std over the seeds (with each
method's CPU seconds, a loaded machine's), then each seed's values.
"""

from __future__ import annotations

import argparse
import time

import torch

from dnfs.baselines import ais_gibbs
from dnfs.exact import ferdinand_fisher
from dnfs.io import lattice_rate_model
from dnfs.kolmogorov import GeometricPath
from dnfs.metrics import effective_sample_size, ising_thermodynamics
from dnfs.sampler import default_times
from dnfs.targets import LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig
from labcore.seeds import over_seeds, seed_table

METRICS = ["ESS", "F/D", "abs err F/D", "abs err F/D (log-mean-exp)", "U/D", "S/D", "CPU s"]


def thermo(res, target, exact, seconds: float) -> dict[str, float]:
    log_rho = target.log_prob(res.samples)
    th = ising_thermodynamics(res.log_weights, log_rho, target.beta, target.dim)
    th_lme = ising_thermodynamics(res.log_weights, log_rho, target.beta, target.dim, estimator="log_mean_exp")
    return {
        "ESS": effective_sample_size(res.log_weights),
        "F/D": th["free_energy"],
        "abs err F/D": abs(th["free_energy"] - exact["free_energy"]),
        "abs err F/D (log-mean-exp)": abs(th_lme["free_energy"] - exact["free_energy"]),
        "U/D": th["internal_energy"],
        "S/D": th["entropy"],
        "CPU s": seconds,
    }


def run_dnfs(target, control: str, seed: int, args, device):
    torch.manual_seed(seed)
    model = lattice_rate_model(args.model, target.dim, 2, args.hidden, num_blocks=args.blocks).to(device)
    config = TrainConfig(
        num_times=args.num_times,
        num_trajectories=args.trajectories,
        batch_size=128,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        control=control,
        eval_samples=args.eval_samples,
    )
    trainer = DNFSTrainer(model, GeometricPath(target), config, seed=seed)
    start = time.process_time()
    trainer.fit(args.epochs * args.steps_per_epoch, accelerator=device.type)
    return trainer.evaluate()["result"], time.process_time() - start


def one(sigma: float, seed: int, args, device) -> dict[str, float]:
    target = LatticeIsing(args.side, sigma=sigma).to(device)
    exact = ferdinand_fisher(target.beta, args.side)
    out = {}
    for name, control in (("DNFS", "stein"), ("LEAPS-style", "learned")):
        res, sec = run_dnfs(target, control, seed, args, device)
        out.update({f"{name} | {k}": v for k, v in thermo(res, target, exact, sec).items()})
    start = time.process_time()
    gen = torch.Generator(device).manual_seed(seed)
    res = ais_gibbs(GeometricPath(target), args.eval_samples, default_times(args.ais_steps, device), generator=gen)
    out.update({f"AIS-Gibbs | {k}": v for k, v in thermo(res, target, exact, time.process_time() - start).items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=10)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.22305])
    ap.add_argument("--epochs", type=int, default=2, help="training epochs per learned method")
    ap.add_argument("--ais-steps", type=int, default=1000, help="AIS annealing steps (one Gibbs sweep each)")
    ap.add_argument("--model", choices=["transformer", "mlp"], default="transformer")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--num-times", type=int, default=33)
    ap.add_argument("--trajectories", type=int, default=128)
    ap.add_argument("--steps-per-epoch", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-samples", type=int, default=512)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(
        f"# {args.side}x{args.side} Ising, {args.model} hidden {args.hidden} x {args.blocks} blocks, "
        f"{args.epochs} epochs x {args.steps_per_epoch} steps (T={args.num_times}, N={args.trajectories}), "
        f"AIS {args.ais_steps} steps, {args.eval_samples} eval samples, device {device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    for sigma in args.sigmas:
        spreads = over_seeds(lambda seed, sigma=sigma: one(sigma, seed, args, device), args.seeds)
        exact = ferdinand_fisher(LatticeIsing(args.side, sigma=sigma).beta, args.side)
        methods = dict.fromkeys(name.split(" | ")[0] for name in spreads)
        rows = {m: {k: spreads[f"{m} | {k}"] for k in METRICS} for m in methods}
        print(
            f"\n## sigma {sigma}: exact F/D {exact['free_energy']:.4f}, U/D {exact['internal_energy']:.4f}, "
            f"S/D {exact['entropy']:.4f}\n"
        )
        print(seed_table(rows, METRICS, args.seeds, digits=4, label="method"))
        for name, spread in spreads.items():
            print(f"{name} per seed: " + ", ".join(f"{v:.4f}" for v in spread.values))


if __name__ == "__main__":
    main()
