"""Named configurations: the paper's class-conditional sizes and the released text-to-image model, beside tiny
ones for tests and the CPU demo.

``PRESETS[name](**overrides)`` is a fresh :class:`~starflow.StarFlowConfig`; ``create(name, **overrides)`` the
randomly initialised :class:`~starflow.StarFlow` (labcore's preset convention, :mod:`labcore.presets`).
"""

from functools import partial

from labcore.presets import Presets
from starflow.config import StarFlowConfig
from starflow.model import StarFlow

# the paper's and the release's 256-px models live in the SD-VAE latent space (32×32×4, patch 1)
SD_VAE_256 = dict(channel_size=4, img_size=32, vae="stabilityai/sd-vae-ft-ema")

PRESETS = Presets(
    "starflow",
    StarFlow,
    {
        # tiny configs for tests and the CPU demo
        "tiny": partial(
            StarFlowConfig,
            channel_size=4,
            img_size=4,
            channels=48,
            head_dim=24,
            layers_per_block=[1, 2],
            txt_size=3,
            txt_dim=8,
        ),
        "digits": partial(
            StarFlowConfig,
            channel_size=1,
            img_size=8,
            patch_size=2,
            channels=64,
            head_dim=32,
            layers_per_block=[2, 4],
            num_classes=10,
            noise_std=0.05,
        ),
        # §4 / Table 1: 1.4B XL = 2(5)-18, 3.8B XXL = 2(5)-24, class-conditional 256 px on SD-VAE latents
        "XL": partial(StarFlowConfig, **SD_VAE_256, channels=2048, layers_per_block=[2] * 5 + [18], num_classes=1000),
        "XXL": partial(StarFlowConfig, **SD_VAE_256, channels=3072, layers_per_block=[2] * 5 + [24], num_classes=1000),
        # configs/starflow_3B_t2i_256x256.yaml of the reference release (the XXL flow, Flan-T5-XL captions)
        "3B-t2i-256": partial(
            StarFlowConfig,
            **SD_VAE_256,
            channels=3072,
            layers_per_block=[2] * 5 + [24],
            txt_size=128,
            txt_dim=2048,
            text_encoder="google/flan-t5-xl",
        ),
    },
)
create = PRESETS.create
