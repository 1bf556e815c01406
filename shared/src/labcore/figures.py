"""PNG figures every package saves: image grids and line plots."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labcore.extras import require


def image_grid(images: torch.Tensor, nrow: int | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
               padding: int = 2) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images (C = 1 or 3) into one ``uint8`` array ``(H', W', 3)``."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W), got {tuple(images.shape)}")
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    x = torch.nan_to_num(x, nan=0.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = torch.ones(3, ncol * (h + padding) + padding, nrow * (w + padding) + padding)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
                    value_range: tuple[float, float] = (-1.0, 1.0), scale: int = 1) -> Path:
    """Save :func:`image_grid` as a PNG, optionally upscaled by an integer ``scale``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(image_grid(images, nrow, value_range))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path


def save_line_plot(series: Mapping[str, Sequence[float] | tuple[Sequence[float], Sequence[float]]],
                   path: str | os.PathLike, *, xlabel: str = "step", ylabel: str = "", title: str = "",
                   logy: bool = False) -> Path:
    """Plot named series (``ys`` or ``(xs, ys)``) into a PNG (needs the ``labcore[plots]`` extra)."""
    matplotlib = require("matplotlib", extra="plots", package="labcore")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, values in series.items():
        xs, ys = values if isinstance(values, tuple) else (range(len(values)), values)
        ax.plot(list(xs), list(ys), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
