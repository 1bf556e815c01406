import math

import pytest

from labcore.seeds import Spread, over_seeds, seed_table, timed_rounds


def test_over_seeds_summarises_each_metric():
    spreads = over_seeds(lambda s: {"a": s, "b": 2.0 * s}, [1, 2, 6])
    assert spreads["a"].values == (1.0, 2.0, 6.0) and spreads["a"].mean == 3.0
    assert spreads["a"].std == pytest.approx(math.sqrt(7.0))  # sample std: ((4 + 1 + 9) / 2) ** 0.5
    assert spreads["b"].median == 4.0
    assert spreads["a"].format() == "3.000 ± 2.646" and spreads["a"].format("median", 1) == "2.0 [1.0, 6.0]"
    assert Spread((0.5,)).std == 0.0


def test_over_seeds_refuses_too_few_repeated_or_bad_runs():
    with pytest.raises(ValueError, match="at least 3 distinct"):
        over_seeds(lambda s: {"a": 1.0}, [0, 1])
    with pytest.raises(ValueError, match="at least 3 distinct"):
        over_seeds(lambda s: {"a": 1.0}, [0, 1, 1])
    with pytest.raises(ValueError, match="seed 2 returned metrics"):
        over_seeds(lambda s: {"a": 1.0} if s < 2 else {"b": 1.0}, [0, 1, 2])
    with pytest.raises(ValueError, match="seed 1 returned non-finite a"):
        over_seeds(lambda s: {"a": float("nan") if s == 1 else 0.0}, [0, 1, 2])
    with pytest.raises(ValueError, match="style"):
        Spread((1.0, 2.0)).format("max")


def test_seed_table_lists_the_seeds():
    seeds = [0, 1, 2]
    rows = {"ours": over_seeds(lambda s: {"acc": 0.5 + 0.1 * s}, seeds)}
    table = seed_table(rows, ["acc"], seeds, label="method")
    assert table.splitlines()[:3] == ["| method | acc |", "|---|---|", "| ours | 0.600 ± 0.100 |"]
    assert table.endswith("mean ± std over 3 seeds (0, 1, 2).")


def test_timed_rounds_counts_rounds_and_keeps_the_last_outputs():
    calls = []

    def make(name):
        def fn():
            calls.append(name)
            return f"{name}{len(calls)}"

        return fn

    times, outs = timed_rounds([make("a"), make("b")], repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5  # back to back within each round, warm-up rounds included
    assert [len(t) for t in times] == [3, 3] and all(s >= 0 for t in times for s in t)  # warm-up not timed
    assert outs == ["a9", "b10"]
    with pytest.raises(ValueError, match="repeats"):
        timed_rounds([make("a")], repeats=0)
