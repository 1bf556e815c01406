"""Data in the reference's conventions: 8-bit images mapped to [-1, 1], noise augmentation, datasets."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from labcore.corpora import digits_split
from labcore.extras import require


def dequantize_uniform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantisation of 8-bit images in [-1, 1] (likelihood models): ``(k + u)/256`` mapped back."""
    pixels = (x + 1) * (255 / 2)
    noise = torch.rand(pixels.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (pixels + noise) / 256 * 2 - 1


def add_gaussian_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """Gaussian noise augmentation of generation models (§2.3): ``x + σ·ε``."""
    return x + std * torch.randn_like(x)


def augment(x: torch.Tensor, noise_type: str, noise_std: float) -> torch.Tensor:
    return dequantize_uniform(x) if noise_type == "uniform" else add_gaussian_noise(x, noise_std)


def drop_labels(y: torch.Tensor, p: float) -> torch.Tensor:
    """Replace each label by -1 ('no label': the mean class embedding) with probability ``p`` (CFG training)."""
    if p <= 0:
        return y
    return torch.where(torch.rand(y.shape, device=y.device) < p, torch.full_like(y, -1), y)


def digits(split: str = "train", test_size: int = 297) -> TensorDataset:
    """sklearn's 8×8 digits (ships with scikit-learn) as 8-bit images in [-1, 1] with labels.

    The 17 grey levels 0..16 are mapped to 8-bit values ``round(v·255/16)``; the last
    ``test_size`` images form the test split.
    """
    images, labels = digits_split(split, test_size, package="tarflow")
    pixels = images.mul(255 / 16).round()
    return TensorDataset((pixels / 255 * 2 - 1).unsqueeze(1), labels)


def image_folder(root: str, img_size: int):
    """An ImageFolder (``root/<class>/<file>``) resized, centre-cropped and mapped to [-1, 1] as the reference."""
    tv = require("torchvision", extra="images", package="tarflow")
    transform = tv.transforms.Compose(
        [
            tv.transforms.Resize(img_size),
            tv.transforms.CenterCrop(img_size),
            tv.transforms.ToTensor(),
            tv.transforms.Normalize((0.5,), (0.5,)),
        ]
    )
    return tv.datasets.ImageFolder(root, transform=transform)
