"""Symbols (Unicode S*) are stripped like punctuation (a mutant keeping them passed the suite)."""

from typescore import Normalizer


def test_symbols_become_spaces():
    assert Normalizer()("$5 + 3 = 8 ★ 100%") == "5 3 8 100"  # $ + = ★ are S*, % is P*
    assert Normalizer(strip_punctuation=False)("$5 + 3") == "$5 + 3"
