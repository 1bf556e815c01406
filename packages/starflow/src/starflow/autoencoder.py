"""The latent space: a diffusers ``AutoencoderKL`` (SD-VAE layout, scaling 0.18215), §3.1.

The flow is trained on ``z + σ_L·ε`` (σ_L = 0.3). Samples are noisy latents: they are either
cleaned with the flow's one-step score denoiser and decoded by the original decoder, or decoded
directly by a decoder fine-tuned on noisy latents (``finetuned_decoder``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from labcore.checkpoint import load_state_dict_checked
from labcore.extras import require
from labcore.hub import read_state_file

# The reference's fine-tuned VAE file (``pytorch_model.bin``) stores the AutoencoderKL as
# ``encoder = [encoder, quant_conv]`` and ``decoder = [post_quant_conv, decoder]``.
REFERENCE_VAE_PREFIXES = {
    "encoder.0.": "encoder.",
    "encoder.1.": "quant_conv.",
    "decoder.0.": "post_quant_conv.",
    "decoder.1.": "decoder.",
}


def convert_reference_vae_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of the reference's fine-tuned VAE checkpoint → diffusers ``AutoencoderKL`` keys."""
    out = {}
    for key, value in state.items():
        for old, new in REFERENCE_VAE_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


class LatentAutoencoder(nn.Module):
    def __init__(self, vae, finetuned_decoder=None, scaling_factor: float | None = None):
        super().__init__()
        self.vae = vae
        self.finetuned_decoder = finetuned_decoder
        self.scaling_factor = float(scaling_factor or getattr(vae.config, "scaling_factor", 0.18215))

    @classmethod
    def from_pretrained(cls, path: str, finetuned_decoder: str | None = None, **kwargs) -> LatentAutoencoder:
        """Load a diffusers ``AutoencoderKL`` directory; ``finetuned_decoder`` is another such directory or
        a state-dict file (``.bin``/``.pth``/``.safetensors``) in diffusers' or the reference's key layout."""
        AutoencoderKL = require("diffusers", extra="vae", package="starflow-pt").AutoencoderKL
        vae = AutoencoderKL.from_pretrained(path, **kwargs)
        if finetuned_decoder is None:
            return cls(vae)
        if Path(finetuned_decoder).is_file():
            return cls(vae, cls.finetuned_from_state_dict(vae, finetuned_decoder))
        return cls(vae, AutoencoderKL.from_pretrained(finetuned_decoder, **kwargs))

    @staticmethod
    def finetuned_from_state_dict(vae, path: str | Path):
        """A copy of ``vae`` with the weights of a fine-tuned VAE file (strict: errors name every mismatch)."""
        state = read_state_file(path)  # missing, empty or corrupt files: clear errors
        finetuned = copy.deepcopy(vae)
        load_state_dict_checked(finetuned, convert_reference_vae_state_dict(state))
        return finetuned

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.vae.config.down_block_types) - 1)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    def latent_shape(self, image_size: int) -> tuple[int, int, int]:
        return (self.latent_channels, image_size // self.downsample_factor, image_size // self.downsample_factor)

    def check_model(self, config) -> None:
        """Raise if a flow config does not fit this autoencoder's latents."""
        if config.channel_size != self.latent_channels:
            raise ValueError(
                f"the flow expects {config.channel_size} latent channels, the autoencoder gives "
                f"{self.latent_channels}; load the autoencoder the model was trained with"
            )

    @torch.no_grad()
    def encode(self, images: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Images in ``[-1, 1]`` → scaled latents."""
        if images.ndim != 4 or images.shape[1] != self.vae.config.in_channels:
            raise ValueError(
                f"expected images (B, {self.vae.config.in_channels}, H, W) in [-1, 1], got {tuple(images.shape)}"
            )
        dist = self.vae.encode(images.to(self.vae.dtype)).latent_dist
        return (dist.sample() if sample else dist.mode()) * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """Scaled latents → images in ``[-1, 1]``; ``noisy=True`` uses the fine-tuned decoder if any."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"latents must have shape (B, {self.latent_channels}, h, w), got {tuple(latents.shape)}")
        vae = self.finetuned_decoder if (noisy and self.finetuned_decoder is not None) else self.vae
        return vae.decode(latents.to(vae.dtype) / self.scaling_factor).sample.clamp(-1, 1)


def tiny_autoencoder(in_channels: int = 3, latent_channels: int = 4, seed: int = 0):
    """A small random ``AutoencoderKL`` (2× downsampling) for tests and the CPU demo."""
    AutoencoderKL = require("diffusers", extra="vae", package="starflow-pt").AutoencoderKL
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=in_channels,
        out_channels=in_channels,
        latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=16,
    )
