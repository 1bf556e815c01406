"""PNG report: each image with its instructed text, the extracted text and the per-sample score."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from labcore.extras import require
from typescore.extract import ImageLike, to_rgb_array
from typescore.metric import TypeScoreResult
from typescore.render import dejavu_font


def save_report(
    result: TypeScoreResult,
    images: Sequence[ImageLike],
    path: str | Path,
    cell: int = 256,
    columns: int = 4,
    max_items: int = 48,
) -> Path:
    """Tile up to ``max_items`` images with captions (instructed / extracted / ensemble) into one PNG."""
    if len(images) != len(result.samples):
        raise ValueError(f"{len(images)} images for {len(result.samples)} scored samples")
    n = min(len(images), max_items)
    font = dejavu_font(12, bold=False)
    caption_h, wrap = 78, max(10, cell // 7)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + caption_h) + 24), "white")
    draw = ImageDraw.Draw(sheet)
    interval = f"[{result.ci[0]:.3f}, {result.ci[1]:.3f}]" if result.ci else "(no interval for one sample)"
    draw.text(
        (6, 4),
        f"TypeScore ({result.mode}) {result.score:.3f}  {interval}  n={len(result.samples)}",
        fill="black",
        font=dejavu_font(14, bold=True),
    )
    for k in range(n):
        s, r, c = result.samples[k], *divmod(k, columns)
        x, y = c * cell, 24 + r * (cell + caption_h)
        im = Image.fromarray(to_rgb_array(images[k]))
        im.thumbnail((cell - 8, cell - 8))
        sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
        lines = [f"#{s.id}  score {s.ensemble:.3f}"]
        lines += textwrap.wrap(f"want: {s.instructed}", wrap)[:2] + textwrap.wrap(f"got:  {s.extracted}", wrap)[:2]
        color = (0, 110, 0) if s.ensemble >= 0.9 else (170, 0, 0) if s.ensemble < 0.5 else (150, 100, 0)
        draw.multiline_text((x + 4, y + cell), "\n".join(lines), fill=color, font=font, spacing=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def save_breakdown_plot(result: TypeScoreResult, path: str | Path) -> Path:
    """Bar charts of the score by instructed length and by each metadata field (style, category), with intervals
    (needs the ``typescore-pt[plots]`` extra)."""
    matplotlib = require("matplotlib", extra="plots", package="typescore-pt")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", extra="plots", package="typescore-pt")

    groups = {k: v for k, v in result.breakdowns().items() if v}
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.6), squeeze=False)
    for ax, (key, table) in zip(axes[0], groups.items()):
        labels = list(table)
        means = [table[k]["typescore"] for k in labels]
        err = [
            [m - (table[k]["ci_low"] if table[k]["ci_low"] is not None else m) for k, m in zip(labels, means)],
            [(table[k]["ci_high"] if table[k]["ci_high"] is not None else m) - m for k, m in zip(labels, means)],
        ]
        ax.bar(range(len(labels)), means, yerr=err, capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(labels)), [f"{k}\n(n={table[k]['n']})" for k in labels], rotation=30, fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"by {key}", fontsize=9)
    axes[0][0].set_ylabel(f"TypeScore ({result.mode})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
