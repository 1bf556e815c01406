"""Bad-input conformance (labcore.conformance): the save/load contract, forward/sample inputs, CLI paths."""

from __future__ import annotations

import torch

from labcore.conformance import (
    AS_INT,
    COUNTS,
    EXTRA_DIM,
    MISSING_DIM,
    NONFINITE,
    CallSpec,
    CliSpec,
    ModelSpec,
    conformance_tests,
)
from tarflow import TarFlow, TarFlowConfig
from tarflow.__main__ import main

TINY = TarFlowConfig(
    in_channels=2, img_size=4, patch_size=2, channels=16, num_blocks=2, layers_per_block=1, head_dim=8, num_classes=3
)


def _model() -> TarFlow:
    torch.manual_seed(0)
    return TarFlow(TINY).eval()


def _images() -> dict:
    return {"x": torch.rand(2, 2, 4, 4) * 2 - 1}


globals().update(
    conformance_tests(
        models=[ModelSpec(_model, reshape={"channels": 24}, oversize={"channels": 2**16}, name="TarFlow")],
        calls=[
            CallSpec(
                "forward",
                lambda x: _model()(x),
                _images,
                {"x": (*NONFINITE, EXTRA_DIM, MISSING_DIM, AS_INT)},
                names={"x": "images"},
            ),
            CallSpec(
                "sample",
                lambda num, guidance: _model().sample(num, guidance=guidance),
                lambda: {"num": 2, "guidance": 1.0},
                {"num": COUNTS, "guidance": NONFINITE},
            ),
        ],
        clis=[
            CliSpec(
                "tarflow",
                main,
                [
                    (["sample", "--model", "{missing}"], "{missing}"),
                    (["sample", "--model", "{empty_dir}"], "config.json"),
                    (["evaluate", "--model", "{corrupt}"], "config.json"),
                    (["sample", "--official-checkpoint", "{empty_file}"], "{empty_file}"),
                ],
            )
        ],
    )
)
