"""Bad-input conformance (labcore.conformance): MLPEnergy's save/load contract, the samplers' counts and inputs,
the CLI's energy paths."""

from __future__ import annotations

import torch

from energy_diffusion.cli import main
from energy_diffusion.energy import MLPEnergy
from energy_diffusion.smc import FeynmanKac, reverse_diffusion, smc_sample
from labcore.conformance import COUNTS, NEGATIVE, NONFINITE, ZERO, CallSpec, CliSpec, ModelSpec, conformance_tests


def _energy() -> MLPEnergy:
    torch.manual_seed(0)
    return MLPEnergy(2, hidden=8, depth=2)


def _sampler_args() -> dict:
    return {"fk": FeynmanKac([_energy()]), "n": 4, "steps": 2}


globals().update(
    conformance_tests(
        models=[ModelSpec(_energy, {"hidden": 12}, {"hidden": 2**17}, name="MLPEnergy")],
        calls=[
            CallSpec(
                "smc_sample",
                lambda fk, n, steps: smc_sample(fk, n, (2,), steps=steps),
                _sampler_args,
                {"n": COUNTS, "steps": COUNTS},
                names={"n": "n_particles"},
            ),
            CallSpec(
                "reverse_diffusion",
                lambda fk, n, steps: reverse_diffusion(fk, n, (2,), steps=steps),
                _sampler_args,
                {"n": COUNTS, "steps": COUNTS},
            ),
            CallSpec(
                "MLPEnergy.energy",
                lambda x, sigma: _energy().energy(x, sigma),
                lambda: {"x": torch.zeros(3, 2), "sigma": torch.ones(3)},
                {"x": NONFINITE, "sigma": (*NONFINITE, ZERO, NEGATIVE)},
            ),
        ],
        clis=[
            CliSpec(
                "energy-diffusion",
                main,
                [
                    (["sample", "--model", "{missing}"], "{missing}"),
                    (["sample", "--model", "{empty_dir}"], "config.json"),
                    (["sample", "--model", "{corrupt}"], "config.json"),
                ],
            )
        ],
    )
)
