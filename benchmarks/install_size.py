"""What each package's core (and ``[demo]``) adds over torch, from the installed copies of the exact
dependency closure its pyproject declares (labcore.rehearsal; no download). Prints a Markdown table.

    python benchmarks/install_size.py
"""

from __future__ import annotations

from pathlib import Path

from labcore import rehearsal

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


def main() -> None:
    dirs = [ROOT / "shared", *sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))]
    ours = dict(rehearsal.pyproject_requires(d) for d in dirs)
    ours = {rehearsal.canonical(k): v for k, v in ours.items()}
    torch, _ = rehearsal.closure([("torch", set())], {})
    print(f"torch and its dependency closure: {rehearsal.dist_size(torch) / MB:.0f} MB (not counted below)\n")
    print("| distribution | core: MB over torch | largest core dependencies (MB) | with [demo]: MB |")
    print("|---|---|---|---|")
    for name in ours:
        core, missing = rehearsal.closure([(name, set())], ours)
        demo, _ = rehearsal.closure([(name, {"demo"})], ours)
        core, demo = core - torch, demo - torch
        sizes = sorted(((rehearsal.dist_size({d}), d) for d in core), reverse=True)[:4]
        top = ", ".join(f"{d} {b / MB:.0f}" for b, d in sizes)
        note = f" (not installed here: {', '.join(missing)})" if missing else ""
        print(f"| {name} | {sum(b for b, _ in [(rehearsal.dist_size(core), 0)]) / MB:.0f}{note} | {top} "
              f"| {rehearsal.dist_size(demo) / MB:.0f} |")


if __name__ == "__main__":
    main()
