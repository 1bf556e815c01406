"""The quick-start demo (``dnfs demo``: 5×5 Ising, σ=0.1, b=0.2) over several seeds, as the README's table.

    OMP_NUM_THREADS=1 python benchmarks/dnfs/bench_demo.py --seeds 0 1 2

Prints ESS before/after training, ``log Z`` (log-mean-exp and the authors' mean-log) against the exact value
(row transfer matrix), the weighted magnetisation against the exact one and the process's CPU seconds: mean ± std
over the seeds, then each seed's values.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from dnfs.demo import run
from labcore.seeds import over_seeds, seed_table

METRICS = ["ESS untrained", "ESS", "log Z", "log Z (mean log w)", "magnetisation", "train+eval CPU s"]


def one(seed: int) -> dict[str, float]:
    start = time.process_time()
    with tempfile.TemporaryDirectory() as out:
        r = run(out, seed=seed)
    return {
        "ESS untrained": r["ess_untrained"],
        "ESS": r["ess"],
        "log Z": r["log_z"],
        "log Z (mean log w)": r["log_z_mean_log_w"],
        "magnetisation": r["magnetisation"],
        "train+eval CPU s": time.process_time() - start,
        "exact log Z": r["log_z_exact"],
        "exact magnetisation": r["magnetisation_exact"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    spreads = over_seeds(one, args.seeds)
    print(f"# dnfs demo, torch threads {torch.get_num_threads()}")
    print(seed_table({"DNFS (demo)": spreads}, METRICS, args.seeds, label="run"))
    for metric in METRICS:
        print(f"{metric} per seed: " + ", ".join(f"{v:.4f}" for v in spreads[metric].values))
    print(f"exact: log Z {spreads['exact log Z'].mean:.4f}, magnetisation {spreads['exact magnetisation'].mean:.4f}")


if __name__ == "__main__":
    main()
