"""Print the CI matrix's package list (JSON) for the files changed between two commits.

A change under shared/ (labcore) or to the CI set-up fans out to every package.
Usage: changed_packages.py BASE HEAD
"""

import json
import subprocess
import sys
from pathlib import Path

FAN_OUT = ("shared/", ".github/", "scripts/", "tox.ini", "pytest.ini", "ruff.toml")


def main(base: str, head: str) -> None:
    all_pkgs = sorted(p.parent.name for p in Path("packages").glob("*/pyproject.toml"))
    try:
        out = subprocess.run(["git", "diff", "--name-only", base, head], check=True, capture_output=True, text=True)
        changed = out.stdout.split()
    except subprocess.CalledProcessError:
        changed = list(FAN_OUT)  # unknown base (new branch, force push): test everything
    if any(f.startswith(FAN_OUT) for f in changed):
        pkgs = ["labcore", *all_pkgs]
    else:
        touched = (f.split("/")[1] for f in changed if f.startswith(("packages/", "benchmarks/")) and f.count("/") > 1)
        pkgs = sorted(set(touched))
        pkgs = [p for p in pkgs if p in all_pkgs]
    print(json.dumps(pkgs))


if __name__ == "__main__":
    main(*sys.argv[1:3])
