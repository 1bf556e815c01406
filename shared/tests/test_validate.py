"""labcore.validate: errors name the argument; argparse types stop bad counts at parse time."""

import argparse
import math

import pytest
import torch

from labcore.validate import (
    check_count,
    check_finite,
    check_number,
    nonnegative_float_arg,
    nonnegative_int_arg,
    positive_float_arg,
    positive_int_arg,
)


def test_check_finite_names_the_argument_and_the_first_bad_index():
    x = torch.zeros(2, 3)
    assert check_finite(x, "x") is x
    assert check_finite(torch.tensor([1, 2]), "ids") is not None  # integers are always finite
    x[1, 2] = math.inf
    x[0, 1] = math.nan
    with pytest.raises(ValueError, match=r"^images contains 2 NaN/inf value\(s\) \(first at index \(0, 1\)\)"):
        check_finite(x, "images")


@pytest.mark.parametrize("value", [math.nan, math.inf, "1", None, True])
def test_check_number_refuses_non_finite_and_non_numbers(value):
    with pytest.raises(ValueError, match="^guidance must be a finite number"):
        check_number(value, "guidance")


def test_check_number_and_count_bounds():
    assert check_number(0, "w", minimum=0) == 0.0
    with pytest.raises(ValueError, match="^w must be > 0, got 0"):
        check_number(0, "w", minimum=0, exclusive=True)
    assert check_count(3, "steps") == 3
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="^steps must be"):
            check_count(bad, "steps")
    assert check_count(0, "n", minimum=0) == 0


def test_argparse_types_name_the_flag_and_exit_2(capsys):
    p = argparse.ArgumentParser()
    for flag, kind in [("--steps", positive_int_arg), ("--every", nonnegative_int_arg),
                       ("--lr", positive_float_arg), ("--cfg", nonnegative_float_arg)]:
        p.add_argument(flag, type=kind)
    args = p.parse_args(["--steps", "2", "--every", "0", "--lr", "1e-3", "--cfg", "0"])
    assert (args.steps, args.every, args.lr, args.cfg) == (2, 0, 1e-3, 0.0)
    for argv in (["--steps", "0"], ["--steps", "1.5"], ["--every", "-1"], ["--lr", "0"], ["--cfg", "nan"]):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(argv)
        assert exc.value.code == 2
        assert f"argument {argv[0]}: must be" in capsys.readouterr().err
