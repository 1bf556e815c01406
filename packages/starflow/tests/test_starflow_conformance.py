"""Bad-input conformance (labcore.conformance): StarFlow's save/load contract, forward/sample inputs, CLI paths."""

from __future__ import annotations

import torch

from labcore.conformance import (
    AS_INT,
    EXTRA_DIM,
    MISSING_DIM,
    NONFINITE,
    CallSpec,
    CliSpec,
    ModelSpec,
    conformance_tests,
)
from starflow import StarFlow, StarFlowConfig
from starflow.__main__ import main

TINY = dict(channel_size=2, img_size=4, channels=32, head_dim=16, layers_per_block=[1, 1])


def _model() -> StarFlow:
    torch.manual_seed(0)
    return StarFlow(StarFlowConfig(**TINY)).eval()


def _latents() -> dict:
    return {"x": torch.randn(2, 2, 4, 4)}


globals().update(
    conformance_tests(
        models=[ModelSpec(_model, {"channels": 48}, {"channels": 2**16}, name="StarFlow")],
        calls=[
            CallSpec(
                "forward",
                lambda x: _model()(x),
                _latents,
                {"x": (*NONFINITE, EXTRA_DIM, MISSING_DIM, AS_INT)},
                names={"x": "latents"},
            ),
            CallSpec(
                "sample",
                lambda noise, guidance: _model().sample(noise, guidance=guidance),
                lambda: {"noise": torch.randn(2, 2, 4, 4), "guidance": 0.0},
                {"noise": (EXTRA_DIM,), "guidance": (*NONFINITE, -1.0)},
                names={"noise": "latents"},
            ),
        ],
        clis=[
            CliSpec(
                "starflow",
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
