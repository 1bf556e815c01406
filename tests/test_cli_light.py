"""``--help`` answers fast: ``import <package>``, ``build_parser()`` and ``python -m <package> --help`` load no
torch (nor transformers, lightning, ...): heavy imports live inside the commands and the package namespaces are lazy
(labcore.lazy). Every name in a package's ``__all__`` still imports."""

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in ROOT.glob("packages/*") if (p / "pyproject.toml").exists())
HEAVY = ("torch", "transformers", "lightning", "diffusers", "trl", "numpy", "scipy", "matplotlib", "PIL")
PROBE = """
import json, runpy, sys
package = sys.argv[1]
from importlib import import_module
import_module(package + ".__main__").build_parser()
sys.argv = [package, "--help"]
try:
    runpy.run_module(package, run_name="__main__", alter_sys=True)
except SystemExit as stop:
    assert stop.code == 0, stop.code
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))))
"""


@pytest.mark.parametrize("package", PACKAGES)
def test_help_imports_nothing_heavy(package):
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", code, package], capture_output=True, text=True, check=True)
    heavy = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not heavy, f"python -m {package} --help imports {sorted(heavy)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_imports(package):
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, ModuleType), f"{package}.{name} is a module, not the export"
