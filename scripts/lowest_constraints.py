"""A pip constraints file that pins every direct dependency to its declared minimum (#19: the lowest-version leg).

    python scripts/lowest_constraints.py packages/tcsm --extras test > lowest.txt
    pip install -c lowest.txt -e "shared[test]" -e "packages/tcsm[test]"

Reads ``shared/pyproject.toml`` (labcore) and the given projects' ``[project] dependencies`` plus the named extras,
following self-references such as ``tcsm[demo]`` or ``labcore[plots]`` to those projects' extras. Each third-party
requirement is pinned to the lower bound of its ``>=``/``~=``/``==`` specifier; when several projects name the same
distribution the highest of their minimums is pinned (the only version all of them allow at the bottom). A
requirement without a lower bound is reported on stderr and left unpinned. Environment markers are evaluated for
this interpreter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, the lowest leg's interpreter
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _projects() -> dict[str, dict]:
    """Every project of the repository by canonical name: its ``[project]`` table."""
    out = {}
    for path in [ROOT / "shared" / "pyproject.toml", *sorted(ROOT.glob("packages/*/pyproject.toml"))]:
        project = tomllib.loads(path.read_text())["project"]
        out[canonicalize_name(project["name"])] = project
    return out


def lower_bound(req: Requirement) -> Version | None:
    """The smallest version ``req`` allows by its ``>=``, ``~=`` or ``==`` clauses (None: no lower bound)."""
    bounds = [Version(s.version) for s in req.specifier if s.operator in (">=", "~=", "==") and "*" not in s.version]
    return max(bounds, default=None)


def direct_requirements(roots: list[tuple[str, set[str]]], projects: dict[str, dict]) -> list[Requirement]:
    """Third-party requirements of ``(project, extras)`` pairs, our own projects' extras followed."""
    seen, todo, found = set(), list(roots), []
    while todo:
        name, extras = todo.pop()
        for key in [(name, None), *((name, e) for e in sorted(extras))]:
            if key in seen:
                continue
            seen.add(key)
            project = projects[key[0]]
            lines = project.get("dependencies", []) if key[1] is None else project["optional-dependencies"][key[1]]
            for line in lines:
                req = Requirement(line)
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
                own = canonicalize_name(req.name)
                if own in projects:
                    todo.append((own, set(req.extras)))
                else:
                    found.append(req)
    return found


def constraints(reqs: list[Requirement]) -> tuple[list[str], list[str]]:
    """``(pins "name==version", names without a lower bound)``; the highest minimum wins per distribution."""
    pins: dict[str, Version] = {}
    unbounded = set()
    for req in reqs:
        name, low = canonicalize_name(req.name), lower_bound(req)
        if low is None:
            unbounded.add(name)
        else:
            pins[name] = max(low, pins.get(name, low))
    return [f"{n}=={v}" for n, v in sorted(pins.items())], sorted(unbounded - set(pins))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("projects", nargs="*", help="project folders besides shared/ (e.g. packages/tcsm)")
    p.add_argument("--extras", nargs="*", default=["test"], help="extras of every named project and labcore")
    args = p.parse_args(argv)
    projects = _projects()
    roots = []
    for folder in ["shared", *args.projects]:
        path = ROOT / folder / "pyproject.toml"
        if not path.exists():
            p.error(f"{folder}: no pyproject.toml there (give a project folder such as packages/tcsm)")
        name = canonicalize_name(tomllib.loads(path.read_text())["project"]["name"])
        extras = set(args.extras) & set(projects[name].get("optional-dependencies", {}))
        roots.append((name, extras))
    pins, unbounded = constraints(direct_requirements(roots, projects))
    for name in unbounded:
        print(f"warning: {name} has no lower bound; left unpinned", file=sys.stderr)
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
