"""Bad inputs give clear errors (issue #23): NaN/inf inputs, NaN or negative guidance, held-out digits."""

import math

import pytest
import torch

from starflow.__main__ import main as cli
from starflow.data import digits_dataset


@pytest.mark.parametrize("bad", [math.nan, -math.inf])
def test_nan_or_inf_inputs_are_refused_by_forward_log_prob_and_sample(tiny_model, bad):
    x, y = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8)
    x_bad = x.clone()
    x_bad[1, 2, 0, 3] = bad
    first = r"^latents x contains 1 NaN/inf value\(s\) \(first at index \(1, 2, 0, 3\)\)"
    for call in (tiny_model, tiny_model.log_prob, tiny_model.loss):
        with pytest.raises(ValueError, match=first):
            call(x_bad, y)
    with pytest.raises(ValueError, match="^noise contains"):
        tiny_model.sample(x_bad, y)
    y_bad = y.clone()
    y_bad[0, 1, 2] = bad
    with pytest.raises(ValueError, match="^condition y contains"):
        tiny_model.log_prob(x, y_bad)


@pytest.mark.parametrize("guidance", [math.nan, math.inf, -1.0])
@pytest.mark.parametrize("use_cache", [True, False])
def test_guidance_must_be_finite_and_nonnegative(tiny_model, guidance, use_cache):
    noise, y, y_null = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="guidance must be"):
        tiny_model.sample(noise, y, y_null, guidance, use_cache=use_cache)


def test_digits_splits_are_disjoint_and_cover_the_dataset():
    train, test = (digits_dataset(s).tensors[0] for s in ("train", "test"))
    assert (len(train), len(test)) == (1500, 297)
    flat_train = {tuple(v.tolist()) for v in train.flatten(1)}
    unseen = [tuple(v.tolist()) not in flat_train for v in test.flatten(1)]
    assert sum(unseen) > 250  # sklearn digits hold a few exact duplicates across writers, no more


@pytest.mark.parametrize("argv", [["train", "--steps", "0"], ["sample", "--guidance", "nan"],
                                  ["sample", "--num", "-2"], ["evaluate", "--model", "m", "--batch-size", "0"]])
def test_cli_refuses_zero_negative_and_nan_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(argv)
    assert exc.value.code == 2
    assert f"argument {argv[-2]}: must be" in capsys.readouterr().err
