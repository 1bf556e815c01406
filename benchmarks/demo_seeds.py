"""A package's quick-start demo over seeds: the README's demo table as mean ± std with the seeds listed.

    OMP_NUM_THREADS=1 python benchmarks/demo_seeds.py tcsm --seeds 0 1 2

Calls ``<package>.demo.main(out_dir, seed=seed)`` per seed (in a temporary directory) and summarises every number
it returns (nested dicts flattened to ``a / b``; the claim row and strings skipped) with :mod:`labcore.seeds`, then
prints each seed's values; true/false results are counted ("true in k of n seeds").
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path

from labcore.seeds import over_seeds, seed_table


def leaves(result: dict, prefix: str = "") -> dict[str, float | bool]:
    """The numeric and true/false leaves of a demo's result, keyed by their path (``a / b``)."""
    out = {}
    for key, value in result.items():
        if key == "claim":
            continue
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key} / "))
        elif isinstance(value, bool):
            out[f"{prefix}{key}"] = value
        elif isinstance(value, (int, float)):
            out[f"{prefix}{key}"] = float(value)
    return out


def tallies(per_seed: list[dict[str, float | bool]]) -> dict[str, int]:
    """For each true/false leaf, the number of seeds in which it is true."""
    flags = [k for k, v in per_seed[0].items() if isinstance(v, bool)]
    for run in per_seed:
        if [k for k, v in run.items() if isinstance(v, bool)] != flags:
            raise ValueError(f"the seeds' demos returned different true/false results: {flags} vs {list(run)}")
    return {k: sum(run[k] for run in per_seed) for k in flags}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("package", help="import name whose demo.main takes seed=")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--digits", type=int, default=3)
    args = ap.parse_args()
    demo = importlib.import_module(f"{args.package}.demo")

    runs = []

    def one(seed: int) -> dict[str, float]:
        with tempfile.TemporaryDirectory() as out:
            runs.append(leaves(demo.main(Path(out), seed=seed)))
        return {k: v for k, v in runs[-1].items() if not isinstance(v, bool)}

    spreads = over_seeds(one, args.seeds)
    rows = {name: {"mean ± std": s} for name, s in spreads.items()}
    print(seed_table(rows, ["mean ± std"], args.seeds, digits=args.digits, label=f"{args.package} demo"))
    for name, s in spreads.items():
        print(f"{name} per seed: " + ", ".join(f"{v:.{args.digits}f}" for v in s.values))
    for name, k in tallies(runs).items():
        print(f"{name}: true in {k} of {len(runs)} seeds")


if __name__ == "__main__":
    main()
