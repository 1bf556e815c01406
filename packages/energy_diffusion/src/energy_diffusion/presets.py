"""Named energy models: the 2-D composition experiment's (the demo, CLI and benchmark) and a tiny one for tests.

``PRESETS[name](**overrides)`` is a fresh dict of :class:`~energy_diffusion.MLPEnergy` arguments (``dim``,
``hidden``, ``depth``, ``sigma_data``); ``create(name, **overrides)`` the randomly initialised energy (labcore's
preset convention, :mod:`labcore.presets`). Image-scale energies wrap a diffusers ``UNet2DModel``
(:class:`~energy_diffusion.UNetEnergy`) and have no preset here.
"""

from functools import partial

from energy_diffusion.energy import MLPEnergy
from labcore.presets import Presets


def _build(config: dict) -> MLPEnergy:
    return MLPEnergy(**config)


PRESETS = Presets(
    "energy_diffusion",
    _build,
    {
        "toy-2d": partial(dict, dim=2, hidden=128, depth=3, sigma_data=0.5),
        "tiny": partial(dict, dim=2, hidden=16, depth=2, sigma_data=0.5),
    },
)
create = PRESETS.create
