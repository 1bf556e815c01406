"""``benchmarks/demo_seeds.py``: a demo's numbers summarised over seeds, its true/false results counted."""

import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import demo_seeds  # noqa: E402


def test_leaves_flatten_numbers_and_flags_and_skip_the_claim():
    result = {"claim": {"holds": True}, "a": 1, "b": {"c": 0.5, "ok": False}, "name": "x"}
    assert demo_seeds.leaves(result) == {"a": 1.0, "b / c": 0.5, "b / ok": False}


def test_tallies_count_true_seeds_and_refuse_mismatched_flags():
    runs = [{"x": 1.0, "ok": True}, {"x": 2.0, "ok": False}, {"x": 3.0, "ok": True}]
    assert demo_seeds.tallies(runs) == {"ok": 2}
    with pytest.raises(ValueError, match="different true/false"):
        demo_seeds.tallies([{"ok": True}, {"other": True}])


def test_main_prints_spread_and_tally(monkeypatch, capsys):
    demo = types.ModuleType("fakepkg.demo")
    demo.main = lambda out, seed: {"score": float(seed), "monotone": seed != 1}
    monkeypatch.setitem(sys.modules, "fakepkg", types.ModuleType("fakepkg"))
    monkeypatch.setitem(sys.modules, "fakepkg.demo", demo)
    monkeypatch.setattr(sys, "argv", ["demo_seeds.py", "fakepkg", "--seeds", "0", "1", "2"])
    demo_seeds.main()
    out = capsys.readouterr().out
    assert "1.000 ± 1.000" in out and "score per seed: 0.000, 1.000, 2.000" in out
    assert "monotone: true in 2 of 3 seeds" in out
