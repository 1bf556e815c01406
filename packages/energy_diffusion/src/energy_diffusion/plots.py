"""Scatter-plot panels of 2-D samples."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from labcore.extras import require


def scatter_panels(panels: dict[str, torch.Tensor], path: str | os.PathLike, ncols: int = 3, lim: float = 2.5) -> Path:
    matplotlib = require("matplotlib", extra="demo", package="energy-diffusion")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), dpi=90, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, x) in zip(axes.flat, panels.items()):
        x = x.detach().cpu()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
