"""Agreement with the official simulation data of apple/ml-reversal-blessing, when a checkout is available.

The data are not vendored: set ``R2L_REFERENCE`` to a checkout holding ``data/multiplication_test.json`` and
``data/reverse_multiplication_test.json`` to run this test (skipped otherwise, e.g. in CI).
"""

import json
import os
from pathlib import Path

import pytest

from r2l_lm.arithmetic import equation, parse_equation

REFERENCE = os.environ.get("R2L_REFERENCE")
pytestmark = pytest.mark.skipif(
    not REFERENCE, reason="set R2L_REFERENCE to a checkout of apple/ml-reversal-blessing to compare with its data"
)


@pytest.mark.parametrize("fmt,name", [("forward", "multiplication"), ("reverse", "reverse_multiplication")])
def test_official_4x4_lines_are_our_equations(fmt, name):
    """Every official line is ``equation(a, b, 4, 4, fmt)`` of its own factors (up to the leading space that the
    official files put before each line for the Llama-3 BPE) and its product is correct."""
    lines = [json.loads(row)["text"] for row in (Path(REFERENCE) / "data" / f"{name}_test.json").open()]
    assert len(lines) > 100
    for text in lines:
        assert text.startswith(" ")
        a, b, p = parse_equation(text.strip(), fmt)
        assert a * b == p
        assert equation(a, b, 4, 4, fmt) == text.strip()
