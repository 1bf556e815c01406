"""Argument checks shared by every package's public entry points and CLIs.

Each check raises ``ValueError`` naming the argument and saying what to do, before any expensive
work runs. The ``*_arg`` functions are ``argparse`` types (``type=positive_int_arg``), so a bad
``--steps -1`` stops with ``argument --steps: must be a positive integer, got -1`` and exit code 2.
The tensor check costs one reduction (and, on a GPU, one synchronisation): call it once per public
call, never inside per-token or per-step loops.
"""

from __future__ import annotations

import argparse
import math
import numbers
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` unchanged if it holds no NaN/inf (integer tensors always pass); else ``ValueError`` naming ``name``."""
    import torch  # here, not at the top: argparse types from this module build light parsers

    if torch.is_tensor(x) and (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
        bad = ~torch.isfinite(x)
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s) (first at index {first}); pass finite values"
        )
    return x


def check_number(value, name: str, *, minimum: float | None = None, exclusive: bool = False) -> float:
    """A finite real ``value`` (``>= minimum``, or ``> minimum`` if ``exclusive``) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{name} must be {'>' if exclusive else '>='} {minimum}, got {value!r}")
    return float(value)


def check_count(value, name: str, *, minimum: int = 1) -> int:
    """An integer ``value >= minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _arg_type(parse, check, what: str):
    def convert(text: str):
        try:
            return check(parse(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None

    convert.__name__ = what.replace(" ", "_")  # argparse names the type in its own messages
    return convert


positive_int_arg = _arg_type(int, lambda v: check_count(v, "value", minimum=1), "a positive integer")
nonnegative_int_arg = _arg_type(int, lambda v: check_count(v, "value", minimum=0), "an integer >= 0")
positive_float_arg = _arg_type(float, lambda v: check_number(v, "value", minimum=0, exclusive=True),
                               "a finite number > 0")
nonnegative_float_arg = _arg_type(float, lambda v: check_number(v, "value", minimum=0), "a finite number >= 0")
