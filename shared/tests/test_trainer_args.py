"""``labcore.trainer_args``: the shared train flags become make_trainer options; bad combinations are refused early."""

import argparse

import pytest

from labcore.trainer_args import add_trainer_args, trainer_options


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_trainer_args(parser)
    return parser.parse_args(list(argv))


def test_flags_map_to_trainer_options():
    opts = trainer_options(
        _parse("--device", "cuda", "--devices", "0,1", "--strategy", "ddp", "--checkpoint-every", "7")
    )
    assert opts == {
        "accelerator": "gpu",
        "devices": [0, 1],
        "num_nodes": 1,
        "strategy": "ddp",
        "precision": None,
        "checkpoint_every": 7,
    }
    assert trainer_options(_parse("--devices", "2"))["devices"] == 2


def test_compile_with_fsdp_is_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="--compile with --strategy fsdp"):
        trainer_options(_parse("--compile", "--strategy", "fsdp"))
    assert trainer_options(_parse("--compile", "--strategy", "ddp"))["strategy"] == "ddp"
