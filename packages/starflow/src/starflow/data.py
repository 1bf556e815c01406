"""Datasets: image + caption folders, class folders, sklearn digits, and latents cached to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save
from torch.utils.data import Dataset, TensorDataset

from labcore.checkpoint import atomic_write
from labcore.corpora import digits_split

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def load_image(path: Path, size: int) -> torch.Tensor:
    """RGB image, centre-cropped and resized to ``size``², in ``[-1, 1]`` as ``(3, size, size)``."""
    img = Image.open(path).convert("RGB")
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)


class ImageCaptionFolder(Dataset):
    """``root/xxx.png`` with its caption in ``root/xxx.txt`` → ``(image, caption)``."""

    def __init__(self, root: str | Path, image_size: int):
        self.root, self.size = Path(root), image_size
        self.items = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        missing = [p.name for p in self.items if not p.with_suffix(".txt").exists()]
        if not self.items or missing:
            raise ValueError(
                f"{root}: need images with a caption .txt beside each "
                f"({len(self.items)} images, captions missing for {missing[:5]})"
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        p = self.items[i]
        return load_image(p, self.size), p.with_suffix(".txt").read_text().strip()


class ClassFolder(Dataset):
    """``root/<class name>/*.png`` → ``(image, label)``, classes in sorted order."""

    def __init__(self, root: str | Path, image_size: int):
        self.root, self.size = Path(root), image_size
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        self.items = [
            (p, i)
            for i, c in enumerate(self.classes)
            for p in sorted((self.root / c).iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.items:
            raise ValueError(f"{root}: expected one sub-folder of images per class")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        p, label = self.items[i]
        return load_image(p, self.size), label


def digits_dataset(split: str = "train") -> TensorDataset:
    """sklearn's 8×8 digits as ``(1, 8, 8)`` images in ``[-1, 1]`` with labels 0–9.

    ``split``: ``"train"`` (1500 images) or ``"test"`` (the last 297, held out; :func:`labcore.corpora.digits_split`).
    """
    images, labels = digits_split(split, package="starflow-pt")
    return TensorDataset(images[:, None] / 8 - 1, labels)


def cache_latents(dataset: Dataset, autoencoder, path: str | Path, batch_size: int = 32) -> TensorDataset:
    """Encode a class dataset once and store ``latents``/``labels`` as safetensors at ``path``."""
    path = Path(path)
    if path.exists():
        t = load_file(str(path))
        return TensorDataset(t["latents"], t["labels"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    latents, labels = [], []
    for x, y in loader:
        latents.append(autoencoder.encode(x))
        labels.append(torch.as_tensor(y))
    t = {"latents": torch.cat(latents).contiguous(), "labels": torch.cat(labels).contiguous()}
    atomic_write(path, lambda f: f.write(save(t)))
    return TensorDataset(t["latents"], t["labels"])
