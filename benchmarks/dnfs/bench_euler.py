"""A trained sampler evaluated on finer Euler grids: the O(dt) bias of the left-Riemann weights, over seeds.

    OMP_NUM_THREADS=1 python benchmarks/dnfs/bench_euler.py --seeds 0 1 2

Trains the LE Transformer (2 blocks × 32) on a ``--side``² Ising lattice (σ=0.1, b=0.2; T=33, N=128, 50 steps
per epoch, lr 2e-3) for ``--epochs`` epochs, then draws ``--eval-samples`` weighted samples with each of
``--euler-steps`` (the model is continuous in t). Prints ESS, ``log Z`` (log-mean-exp) and the weighted
magnetisation per step count against the exact values (row transfer matrix): mean ± std over the seeds, then
each seed's values.
"""

from __future__ import annotations

import argparse
import time

import torch

from dnfs.exact import transfer_matrix_ising
from dnfs.io import lattice_rate_model
from dnfs.kolmogorov import GeometricPath
from dnfs.metrics import magnetisation
from dnfs.targets import LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig
from labcore.seeds import over_seeds, seed_table

METRICS = ["ESS", "log Z", "magnetisation"]


def one(seed: int, args) -> dict[str, float]:
    start = time.process_time()
    target = LatticeIsing(args.side, sigma=args.sigma, bias=args.bias)
    torch.manual_seed(seed)
    model = lattice_rate_model("transformer", target.dim, 2, 32, num_blocks=2)
    config = TrainConfig(num_times=33, num_trajectories=128, batch_size=128, steps_per_epoch=50, lr=2e-3)
    trainer = DNFSTrainer(model, GeometricPath(target), config, seed=seed)
    trainer.fit(args.epochs * config.steps_per_epoch, accelerator="cpu")
    out = {}
    for steps in args.euler_steps:
        ev = trainer.evaluate(args.eval_samples, steps)
        res = ev["result"]
        out[f"{steps} | ESS"] = ev["ess"]
        out[f"{steps} | log Z"] = ev["log_mean_exp"]
        out[f"{steps} | magnetisation"] = magnetisation(res.samples, res.log_weights)
    out["train+eval CPU s"] = time.process_time() - start
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=4)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--bias", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eval-samples", type=int, default=1024)
    ap.add_argument("--euler-steps", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    spreads = over_seeds(lambda seed: one(seed, args), args.seeds)
    exact = transfer_matrix_ising(args.sigma, args.bias, args.side)
    rows = {str(s): {m: spreads[f"{s} | {m}"] for m in METRICS} for s in args.euler_steps}
    print(
        f"# {args.side}x{args.side} Ising sigma {args.sigma} b {args.bias}, {args.epochs} epochs x 50 steps, "
        f"{args.eval_samples} eval samples, torch threads {torch.get_num_threads()}"
    )
    print(seed_table(rows, METRICS, args.seeds, label="Euler steps"))
    print(f"exact: log Z {exact['log_z']:.4f}, magnetisation {exact['magnetisation']:.4f}")
    for name, spread in spreads.items():
        print(f"{name} per seed: " + ", ".join(f"{v:.4f}" for v in spread.values))


if __name__ == "__main__":
    main()
