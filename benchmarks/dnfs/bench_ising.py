"""ESS and free-energy error on a periodic Ising lattice at equal wall-clock: DNFS vs LEAPS-style vs AIS-Gibbs.

    OMP_NUM_THREADS=1 python benchmarks/dnfs/bench_ising.py --side 10 --budget 90

DNFS and the LEAPS-style baseline (learned c_φ(t) instead of the sample-based control variate) train for
``--budget`` seconds, then draw ``--eval-samples`` weighted samples. AIS with Gibbs sweeps on the same path gets the
same total wall-clock (its number of annealing steps is calibrated). Exact values: Ferdinand–Fisher (zero field).
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


def thermo_row(name, sigma, seconds, res, target, exact, epochs="-"):
    log_rho = target.log_prob(res.samples)
    th = ising_thermodynamics(res.log_weights, log_rho, target.beta, target.dim)
    th_lme = ising_thermodynamics(res.log_weights, log_rho, target.beta, target.dim, estimator="log_mean_exp")
    return {
        "method": name,
        "sigma": sigma,
        "epochs": epochs,
        "seconds": seconds,
        "ess": effective_sample_size(res.log_weights),
        "F/D": th["free_energy"],
        "|dF/D|": abs(th["free_energy"] - exact["free_energy"]),
        "|dF/D| logmeanexp": abs(th_lme["free_energy"] - exact["free_energy"]),
        "U/D": th["internal_energy"],
        "S/D": th["entropy"],
    }


def run_dnfs(target, control, args, device):
    torch.manual_seed(args.seed)
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
    trainer = DNFSTrainer(model, GeometricPath(target), config, seed=args.seed)
    start = time.time()

    def stop_after_budget(epoch: int, info: dict) -> None:
        if time.time() - start >= args.budget:
            trainer.trainer.should_stop = True  # Lightning ends the run after this step

    history = trainer.fit(10**9, callback=stop_after_budget, accelerator=device.type)
    ev = trainer.evaluate()
    return ev["result"], time.time() - start, len(history.loss) // args.steps_per_epoch


def run_ais(target, seconds, args, device):
    path = GeometricPath(target)
    gen = torch.Generator(device).manual_seed(0)
    t0 = time.time()
    ais_gibbs(path, args.eval_samples, default_times(2, device), generator=gen)
    per_step = (time.time() - t0) / 2
    steps = max(2, int(seconds / per_step))
    t0 = time.time()
    res = ais_gibbs(path, args.eval_samples, default_times(steps, device), generator=gen)
    return res, time.time() - t0, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=10)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.22305])
    ap.add_argument("--budget", type=float, default=90.0, help="training seconds per learned method")
    ap.add_argument("--model", choices=["transformer", "mlp"], default="transformer")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--num-times", type=int, default=33)
    ap.add_argument("--trajectories", type=int, default=128)
    ap.add_argument("--steps-per-epoch", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-samples", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    for sigma in args.sigmas:
        target = LatticeIsing(args.side, sigma=sigma).to(device)
        exact = ferdinand_fisher(target.beta, args.side)
        rows.append(
            {
                "method": "exact (Ferdinand-Fisher)",
                "sigma": sigma,
                "epochs": "-",
                "seconds": 0.0,
                "ess": 1.0,
                "F/D": exact["free_energy"],
                "|dF/D|": 0.0,
                "|dF/D| logmeanexp": 0.0,
                "U/D": exact["internal_energy"],
                "S/D": exact["entropy"],
            }
        )
        spent = []
        for name, control in (("DNFS", "stein"), ("LEAPS-style", "learned")):
            res, sec, epochs = run_dnfs(target, control, args, device)
            spent.append(sec)
            rows.append(thermo_row(name, sigma, sec, res, target, exact, epochs))
        res, sec, steps = run_ais(target, max(spent), args, device)
        rows.append(thermo_row(f"AIS-Gibbs ({steps} steps)", sigma, sec, res, target, exact))
    cols = ["method", "sigma", "epochs", "seconds", "ess", "F/D", "|dF/D|", "|dF/D| logmeanexp", "U/D", "S/D"]
    print(
        f"# {args.side}x{args.side} Ising, {args.model} hidden {args.hidden}, budget {args.budget:.0f}s, "
        f"{args.eval_samples} eval samples, device {device}, torch threads {torch.get_num_threads()}"
    )
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
