"""Named configurations: the paper's (Table 1 / the reference README) beside tiny ones for tests and demos.

``PRESETS[name](**overrides)`` is a fresh :class:`~tarflow.TarFlowConfig`; ``create(name, **overrides)`` the
randomly initialised :class:`~tarflow.TarFlow` (labcore's preset convention, :mod:`labcore.presets`).
"""

from functools import partial

from labcore.presets import Presets
from tarflow.config import TarFlowConfig
from tarflow.model import TarFlow


def _preset(in_channels, img_size, patch_size, channels, num_blocks, layers_per_block, **fields) -> partial:
    """A factory whose fields are all keywords, so that any of them can be overridden."""
    shape = dict(in_channels=in_channels, img_size=img_size, patch_size=patch_size, channels=channels)
    return partial(TarFlowConfig, **shape, num_blocks=num_blocks, layers_per_block=layers_per_block, **fields)


PRESETS = Presets(
    "tarflow",
    TarFlow,
    {
        "afhq-256": _preset(3, 256, 8, 768, 8, 8, num_classes=3, noise_std=0.07),
        "imagenet64-uncond": _preset(3, 64, 2, 768, 8, 8, noise_std=0.05),
        "imagenet64-cond": _preset(3, 64, 2, 768, 8, 8, num_classes=1000, noise_std=0.05),
        "imagenet64-bpd": _preset(3, 64, 2, 768, 8, 8, noise_type="uniform"),
        "imagenet128-cond": _preset(3, 128, 4, 1024, 8, 8, num_classes=1000, noise_std=0.15),
        "mnist-local": _preset(1, 28, 4, 128, 4, 4, num_classes=10, noise_std=0.1),
        "digits-tiny": _preset(1, 8, 2, 64, 4, 1, head_dim=32, num_classes=10, noise_type="uniform"),
        "digits-gen": _preset(1, 8, 2, 64, 4, 1, head_dim=32, num_classes=10, noise_std=0.7),
        "cpu-bench": _preset(3, 16, 2, 128, 4, 2, num_classes=10, noise_std=0.05),
    },
)
create = PRESETS.create
