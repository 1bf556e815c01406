"""A package's quick-start demo over seeds: the README's demo table as mean ± std with the seeds listed.

    OMP_NUM_THREADS=1 python benchmarks/demo_seeds.py tcsm --seeds 0 1 2

Calls ``<package>.demo.main(out_dir, seed=seed)`` per seed (in a temporary directory) and summarises every number
it returns (nested dicts flattened to ``a / b``; the claim row and strings skipped) with :mod:`labcore.seeds`, then
prints each seed's values.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path

from labcore.seeds import over_seeds, seed_table


def numbers(result: dict, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a demo's result, keyed by their path."""
    out = {}
    for key, value in result.items():
        if key == "claim":
            continue
        if isinstance(value, dict):
            out.update(numbers(value, f"{prefix}{key} / "))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("package", help="import name whose demo.main takes seed=")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--digits", type=int, default=3)
    args = ap.parse_args()
    demo = importlib.import_module(f"{args.package}.demo")

    def one(seed: int) -> dict[str, float]:
        with tempfile.TemporaryDirectory() as out:
            return numbers(demo.main(Path(out), seed=seed))

    spreads = over_seeds(one, args.seeds)
    rows = {name: {"mean ± std": s} for name, s in spreads.items()}
    print(seed_table(rows, ["mean ± std"], args.seeds, digits=args.digits, label=f"{args.package} demo"))
    for name, s in spreads.items():
        print(f"{name} per seed: " + ", ".join(f"{v:.{args.digits}f}" for v in s.values))


if __name__ == "__main__":
    main()
