"""A validation set closer to generated images than clean renderings, with the oracle score known.

Each scene renders an instructed text (with controlled character errors, as :class:`~typescore.render.RenderModel`)
in one of several fonts, optionally with distractor text (a tagline or small print the prompt did not ask for),
a perspective warp, blur and a textured, coloured background. The text actually drawn is known, so the *oracle*
score — what a perfect extractor would give — is computed exactly; an extractor's error is its distance to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from typescore.prompts import PromptItem, builtin_prompts
from typescore.render import bundled_font, corrupt_text

FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneralBol.ttf")
DISTRACTORS = (
    "since 1987",
    "open daily 9 to 5",
    "www example shop",
    "limited edition",
    "call now for details",
    "made with love",
    "terms apply",
    "family owned",
)
CONDITIONS = {
    "clean": {},
    "distractor": {"distractor": True},
    "perspective": {"perspective": 0.12},
    "blur": {"blur": 1.2},
    "texture": {"texture": True},
    "all": {"distractor": True, "perspective": 0.12, "blur": 1.2, "texture": True},
}


@dataclass(frozen=True)
class Scene:
    """One validation image: its prompt item, the text drawn in reading order, and the target part of it."""

    image: Image.Image
    item: PromptItem
    drawn: str  # everything drawn, top to bottom (what a perfect extractor reads)
    target: str  # the instructed text as drawn (with its character errors)


def _perspective(img: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    w, h = img.size
    d = [rng.uniform(0, strength) for _ in range(8)]
    # a source quad with its corners pushed outwards at random, mapped onto the image: the whole scene shrinks
    # into a random keystone shape (nothing drawn leaves the canvas)
    quad = (-d[0] * w, -d[1] * h, -d[2] * w, h + d[3] * h, w + d[4] * w, h + d[5] * h, w + d[6] * w, -d[7] * h)
    return img.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=img.getpixel((0, 0)))


def _texture(size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    g = np.random.default_rng(rng.randrange(2**32))
    base = np.array([rng.randint(170, 255) for _ in range(3)], dtype=np.float64)
    ramp = np.linspace(-25, 25, w)[None, :, None] * rng.choice([-1, 1])
    noise = g.normal(0, 12, size=(h, w, 1))
    return Image.fromarray(np.clip(base + ramp + noise, 0, 255).astype(np.uint8))


def render_scene(
    item: PromptItem,
    seed: int,
    rate: float = 0.0,
    distractor: bool = False,
    perspective: float = 0.0,
    blur: float = 0.0,
    texture: bool = False,
    size: tuple[int, int] = (448, 160),
) -> Scene:
    """Render ``item``'s instructed text (``rate`` character errors) as one scene; see the module docstring."""
    rng = random.Random(f"{seed}:{item.id}")
    target = corrupt_text(item.text, rate, rng)
    font = bundled_font(rng.choice(FONTS), 26)
    img = _texture(size, rng) if texture else Image.new("RGB", size, "white")
    ink = tuple(rng.randint(0, 70) for _ in range(3)) if texture else (0, 0, 0)
    draw = ImageDraw.Draw(img)
    width = size[0] - 24
    words, lines = target.split(), [""]
    for word in words:  # greedy wrap to the canvas width
        trial = f"{lines[-1]} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not lines[-1]:
            lines[-1] = trial
        else:
            lines.append(word)
    block = "\n".join(lines)
    x0, y0, x1, y1 = draw.multiline_textbbox((0, 0), block, font=font, spacing=8)
    small = rng.choice(DISTRACTORS) if distractor else None
    above = rng.random() < 0.5
    y = (size[1] - (y1 - y0)) / 2 - y0 + (12 if small and above else -12 if small else 0)
    draw.multiline_text(((size[0] - (x1 - x0)) / 2 - x0, y), block, font=font, fill=ink, spacing=8, align="center")
    drawn = " ".join(lines)
    if small:
        sfont = bundled_font("DejaVuSans.ttf", 15)
        sw = draw.textlength(small, font=sfont)
        draw.text(((size[0] - sw) / 2, 6 if above else size[1] - 24), small, font=sfont, fill=ink)
        drawn = f"{small} {drawn}" if above else f"{drawn} {small}"
    if perspective:
        img = _perspective(img, perspective, rng)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return Scene(img, item, drawn, target)


def validation_set(condition: str, seed: int, n: int = 8, rate: float = 0.1) -> list[Scene]:
    """``n`` scenes of the shipped prompts under one of :data:`CONDITIONS`, drawn with seed ``seed``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {sorted(CONDITIONS)}")
    items = builtin_prompts()
    if not 1 <= n <= len(items):
        raise ValueError(f"n must lie in 1..{len(items)}, got {n}")
    chosen = random.Random(seed).sample(items, n)
    return [render_scene(it, seed, rate, **CONDITIONS[condition]) for it in chosen]
