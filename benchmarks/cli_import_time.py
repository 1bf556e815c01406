"""How fast each package's ``python -m <package> --help`` answers: the total import time that
``python -X importtime`` reports (the sum of every module's own time) and the wall time of the whole process,
median [min, max] over ``--runs`` fresh interpreters, and whether torch was imported. Prints a Markdown table.

    python benchmarks/cli_import_time.py [--runs 5] [--packages tarflow tcsm]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "lightning", "diffusers", "trl", "scipy", "matplotlib")


def one_run(package: str) -> tuple[float, float, list[str]]:
    """(total import seconds, wall seconds, heavy top-level modules imported) of one ``--help``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", package, "--help"],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    total, heavy = 0, set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (field.strip() for field in line[len("import time:"):].split("|"))
        total += int(self_us)
        if name.split(".")[0] in HEAVY:
            heavy.add(name.split(".")[0])
    return total / 1e6, wall, sorted(heavy)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh interpreters per package (default 3)")
    ap.add_argument("--packages", nargs="*", help="default: every package under packages/")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    packages = args.packages or sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
    print(f"`python -X importtime -m <package> --help`, median [min, max] of {args.runs} runs\n")
    print("| package | import time, s | wall time, s | heavy modules imported |")
    print("|---|---|---|---|")
    for package in packages:
        runs = [one_run(package) for _ in range(args.runs)]
        heavy = sorted({m for _, _, h in runs for m in h})
        print(f"| {package} | {spread([r[0] for r in runs])} | {spread([r[1] for r in runs])} "
              f"| {', '.join(heavy) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
