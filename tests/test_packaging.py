"""Every distribution's metadata: licence shipped, labcore bounded, URLs from one repository, sdists complete."""

import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT / "shared", *sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))]
REPOSITORY = "https://github.com/paper-implementations/pytorch-papers"  # stated in CONTRIBUTING.md
# extras the CPU suite does without, and why
NOT_IN_TEST = {("tarflow", "fid"): "Inception weights come from the internet; the suite tests FID on its own features"}


def _project(d: Path) -> dict:
    return tomllib.loads((d / "pyproject.toml").read_text())["project"]


def _labcore_version() -> str:
    return _project(ROOT / "shared")["version"]


@pytest.mark.parametrize("d", PROJECTS, ids=lambda d: d.name)
def test_licence_authors_urls(d):
    data = tomllib.loads((d / "pyproject.toml").read_text())
    project = data["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert (d / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert any("setuptools>=77" in r for r in data["build-system"]["requires"]), "the licence field needs 77"
    assert project["authors"]
    sub = d.relative_to(ROOT).as_posix()
    assert project["urls"]["Homepage"] == f"{REPOSITORY}/tree/main/{sub}"
    assert project["urls"]["Source"] == REPOSITORY


@pytest.mark.parametrize("d", PROJECTS[1:], ids=lambda d: d.name)
def test_labcore_is_bounded_to_its_minor_version(d):
    major, minor, _ = _labcore_version().split(".")
    want = f"labcore>={major}.{minor},<{major}.{int(minor) + 1}"
    deps = _project(d)["dependencies"]
    assert want in deps, f"{d.name} must depend on {want!r}, has {[r for r in deps if 'labcore' in r]}"
    for extra, reqs in _project(d).get("optional-dependencies", {}).items():
        for r in reqs:
            if r.startswith("labcore"):
                assert re.fullmatch(rf"labcore\[[a-z,]+\]>={major}\.{minor},<{major}\.{int(minor) + 1}", r), (extra, r)


@pytest.mark.parametrize("d", PROJECTS, ids=lambda d: d.name)
def test_sdist_manifest_takes_every_test_file(d):
    assert "graft tests" in (d / "MANIFEST.in").read_text().splitlines()


@pytest.mark.parametrize("d", PROJECTS, ids=lambda d: d.name)
def test_test_extra_covers_every_other_extra(d):
    """``scripts/setup.sh`` installs ``[test]``: it must bring what every extra brings, so the suite runs."""
    project = _project(d)
    extras = project.get("optional-dependencies", {})
    test = " ".join(extras.get("test", []))
    for name, reqs in extras.items():
        if name == "test" or (d.name, name) in NOT_IN_TEST:
            continue
        covered = re.search(rf"{re.escape(project['name'])}\[[^\]]*\b{re.escape(name)}\b", test)
        assert covered or all(r in extras["test"] for r in reqs), f"{d.name}[test] misses [{name}]"


@pytest.mark.parametrize("d", PROJECTS, ids=lambda d: d.name)
def test_every_demo_has_a_demo_extra(d):
    """``scripts/quickstart.sh`` sets up with ``[demo]`` only: a project registering a quick-start demo declares it."""
    data = tomllib.loads((d / "pyproject.toml").read_text())
    if "labcore.demos" in data["project"].get("entry-points", {}):
        assert "demo" in data["project"].get("optional-dependencies", {}), f"{d.name} has a demo but no [demo] extra"


def test_labcore_version_matches_its_module():
    init = (ROOT / "shared/src/labcore/__init__.py").read_text()
    assert f'__version__ = "{_labcore_version()}"' in init


@pytest.mark.parametrize("d", PROJECTS, ids=lambda d: d.name)
def test_tests_opt_in_to_the_labcore_plugin(d):
    """labcore registers no pytest11 plugin; each test directory enables it itself (runs alone too)."""
    assert "from labcore.testing import enable as pytest_configure" in (d / "tests/conftest.py").read_text()
    assert "pytest11" not in (ROOT / "shared/pyproject.toml").read_text()
