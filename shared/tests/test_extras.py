import pytest

from labcore.extras import MissingExtraError, require


def test_require_returns_the_module():
    import json

    assert require("json", extra="x", package="p") is json


def test_missing_extra_names_the_install_line():
    with pytest.raises(MissingExtraError, match=r"pip install 'tarflow\[fid\]'") as info:
        require("no_such_module_anywhere.sub", extra="fid", package="tarflow")
    assert isinstance(info.value, ImportError)
    assert "no_such_module_anywhere" in str(info.value)


def test_save_line_plot_without_matplotlib_names_labcore_plots(monkeypatch, tmp_path):
    import sys

    from labcore.figures import save_line_plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"labcore\[plots\]"):
        save_line_plot({"a": [1.0, 2.0]}, tmp_path / "a.png")
