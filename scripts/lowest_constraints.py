"""A pip constraints file that pins every direct dependency to its declared minimum (#19: the lowest-version leg).

    python scripts/lowest_constraints.py packages/tcsm --extras test > lowest.txt
    pip install -c lowest.txt -e "shared[test]" -e "packages/tcsm[test]"

Reads the given project's ``[project] dependencies`` plus the named extras (labcore's when no project is given),
following the project's self-references such as ``tcsm[test]`` -> ``tcsm[demo]``. Each third-party requirement is
pinned to the lower bound of its ``>=``/``~=``/``==`` specifier; when several of them name the same distribution the
highest minimum is pinned. Other projects of this repository (labcore) are not followed: their minimums are held in
their own leg, and holding them here too would make the leg unsolvable wherever this project's dependencies need
more (transformers 4.56 needs huggingface_hub>=0.34, labcore allows 0.30). A requirement without a lower bound
is reported on stderr and left unpinned. Environment markers are evaluated for this interpreter.
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


def direct_requirements(name: str, extras: set[str], projects: dict[str, dict]) -> list[Requirement]:
    """Third-party requirements of ``project[extras]``, its self-references followed, other projects skipped."""
    seen, todo, found = set(), [(name, extras)], []
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
                if own == name:
                    todo.append((own, set(req.extras)))
                elif own not in projects:
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
    p.add_argument("project", nargs="?", default="shared", help="project folder (default shared, i.e. labcore)")
    p.add_argument("--extras", nargs="*", default=["test"], help="extras of the project")
    args = p.parse_args(argv)
    projects = _projects()
    path = ROOT / args.project / "pyproject.toml"
    if not path.exists():
        p.error(f"{args.project}: no pyproject.toml there (give a project folder such as packages/tcsm)")
    name = canonicalize_name(tomllib.loads(path.read_text())["project"]["name"])
    extras = set(args.extras) & set(projects[name].get("optional-dependencies", {}))
    pins, unbounded = constraints(direct_requirements(name, extras, projects))
    for name in unbounded:
        print(f"warning: {name} has no lower bound; left unpinned", file=sys.stderr)
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
