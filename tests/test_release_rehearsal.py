"""Release rehearsal: build every wheel and sdist, then install ONE package offline from the built files into
a clean venv that sees only torch (labcore.rehearsal), import it and run its CLI's ``--help``/``demo --help``;
then, with its ``[demo]`` extra added, run its README's code blocks verbatim and its CLI ``demo``.

CI runs dnfs (the smallest core); every other package is the same test marked ``slow``.
"""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from labcore import markdown, rehearsal

ROOT = Path(__file__).resolve().parents[1]
DIRS = {"labcore": ROOT / "shared"}
DIRS.update((p.name, p) for p in sorted(ROOT.glob("packages/*")) if (p / "pyproject.toml").exists())
FAST = ("dnfs",)
# MB over torch a core may add: the goal is 150; a core built on transformers (its model classes are
# PreTrainedModels) starts at ~190 (transformers, tokenizers, regex, safetensors) and is held at 320;
# tinydet needs torchvision (21 MB) for its ops
BUDGET_MB = {"diffucoder": 320, "r2l_lm": 320, "starflow": 320, "tarflow_lm": 320, "tcsm": 320, "tinydet": 180}


@pytest.fixture(scope="module")
def torch_site(tmp_path_factory):
    """Symlinks to torch's installed dependency closure: the 'only torch' of the clean venv."""
    names, missing = rehearsal.closure([("torch", set())], {})
    assert not missing, missing
    return names, rehearsal.symlink_site(names, tmp_path_factory.mktemp("torch-site"))


def _build(name: str, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out),
                    str(DIRS[name])], check=True, capture_output=True)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _build("labcore", out)
    return out


def _wheel(dist: Path, name: str) -> Path:
    return next(dist.glob(f"{name.replace('-', '_')}-*.whl"))


def _rehearse(package: str, dist: Path, torch_site, tmp_path: Path) -> int:
    torch_names, site = torch_site
    _build(package, dist)
    project = rehearsal.wheel_metadata(next(p for p in dist.glob("*.whl") if _import_name(p) == package))
    wheels = {rehearsal.canonical(project["Name"]): _wheel(dist, project["Name"]), "labcore": _wheel(dist, "labcore")}
    requires = {n: rehearsal.wheel_requires(w) for n, w in wheels.items()}
    deps, missing = rehearsal.closure([(project["Name"], set())], requires)
    assert not missing, f"{package}'s dependencies are not installed here: {missing}"
    deps -= torch_names
    deps_site = rehearsal.symlink_site(deps, tmp_path / "deps-site")
    python = rehearsal.make_venv(tmp_path / "venv", [site, deps_site])
    rehearsal.pip_install(python, dist, project["Name"])

    def run(*args: str) -> str:
        return subprocess.run([str(python), *args], check=True, capture_output=True, text=True, cwd=tmp_path).stdout

    run("-c", f"import {package}; [getattr({package}, n) for n in {package}.__all__]")
    assert "demo" in run("-m", package, "--help")
    run("-m", package, "demo", "--help")
    # what was shipped: the licence in the wheel, the tests with their conftest in the sdist
    wheel = wheels[rehearsal.canonical(project["Name"])]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in __import__("zipfile").ZipFile(wheel).namelist())
    sdist = next(dist.glob(f"{wheel.name.split('-')[0]}-*.tar.gz"))
    names = tarfile.open(sdist).getnames()
    assert any(n.endswith("/tests/conftest.py") for n in names) and any(n.endswith("/LICENSE") for n in names)
    added = rehearsal.dist_size(deps) + sum(rehearsal.wheel_size(w) for w in wheels.values())
    _first_use(package, project["Name"], dist, requires, torch_names | deps, [site, deps_site], tmp_path)
    return added


def _first_use(package, name, dist, requires, present, visible, tmp_path):
    """With ``[demo]`` added: every README block not marked skip runs verbatim, then the CLI ``demo``."""
    extra, missing = rehearsal.closure([(name, {"demo"})], requires)
    assert not missing, f"{package}[demo]'s dependencies are not installed here: {missing}"
    visible = [*visible, rehearsal.symlink_site(extra - present, tmp_path / "demo-site")]
    python = rehearsal.make_venv(tmp_path / "venv-demo", visible)
    rehearsal.pip_install(python, dist, f"{name}[demo]")
    work = tmp_path / "work"
    work.mkdir()
    for block in markdown.blocks(DIRS[package] / "README.md"):
        if block.lang in markdown.RUNNERS and not block.skip:
            proc = markdown.run_block(block, python, work, tmp_path / f"block{block.line}")
            where = f"README.md:{block.line}"
            assert proc.returncode == 0, f"{package}: {where} fails in the clean venv\n{proc.stderr[-4000:]}"
    proc = subprocess.run([str(python), "-m", package, "demo", "--out", str(tmp_path / "demo")], cwd=work,
                          env=markdown.offline_env(python), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{package}: its CLI demo fails in the clean venv\n{proc.stderr[-4000:]}"


def _import_name(wheel: Path) -> str:
    top = {n.split("/")[0] for n in __import__("zipfile").ZipFile(wheel).namelist()}
    return next(t for t in top if not t.endswith(".dist-info"))


@pytest.mark.parametrize("package", [pytest.param(p, marks=[] if p in FAST else [pytest.mark.slow])
                                     for p in DIRS if p != "labcore"])
def test_one_package_installs_alone_from_the_built_files(package, dist, torch_site, tmp_path):
    added = _rehearse(package, dist, torch_site, tmp_path)
    budget = BUDGET_MB.get(package, 150)
    print(f"{package}: +{added / 2**20:.0f} MB over torch (budget {budget} MB)")
    assert added < budget * 2**20, f"{package}'s core adds {added / 2**20:.0f} MB over torch (budget {budget} MB)"
