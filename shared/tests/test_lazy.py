"""labcore.lazy: a package namespace that imports a submodule only when one of its names is used."""

import subprocess
import sys
import textwrap

import pytest

INIT = """
from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {".heavy": ("Model",), ".tool": ("tool", "helper")})
"""
FILES = {
    "heavy.py": "import sys\nsys.modules['lazypkg._loaded'] = True\nclass Model:\n    pass\n",
    "tool.py": "def tool():\n    return 'tool'\n\ndef helper():\n    return 'helper'\n",
}


def run(tmp_path, code: str) -> str:
    pkg = tmp_path / "lazypkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(INIT)
    for name, text in FILES.items():
        (pkg / name).write_text(text)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_names_load_on_first_use_and_dir_lists_them(tmp_path):
    out = run(tmp_path, """
        import sys, lazypkg
        before = 'lazypkg.heavy' in sys.modules
        from lazypkg import Model
        print(before, 'lazypkg._loaded' in sys.modules, Model.__module__, lazypkg.__all__,
              {'Model', 'tool', 'helper'} <= set(dir(lazypkg)))
    """)
    assert out == "False True lazypkg.heavy ['Model', 'helper', 'tool'] True"


def test_an_export_named_like_its_submodule_stays_the_export(tmp_path):
    """``from pkg.tool import helper`` first binds the module ``pkg.tool`` on the package; ``pkg.tool`` must
    still be the function, as after an eager ``from .tool import tool``."""
    out = run(tmp_path, """
        import lazypkg
        from lazypkg.tool import helper
        from lazypkg import tool
        print(callable(tool) and tool(), lazypkg.tool is tool)
    """)
    assert out == "tool True"


def test_unknown_names_and_double_exports_fail(tmp_path):
    out = run(tmp_path, """
        import lazypkg
        try:
            lazypkg.Missing
        except AttributeError as e:
            print(e)
    """)
    assert out == "module 'lazypkg' has no attribute 'Missing'"
    from labcore.lazy import lazy_exports

    with pytest.raises(ValueError, match="'f' is exported by both"):
        lazy_exports("labcore", {".a": ("f",), ".b": ("f",)})
