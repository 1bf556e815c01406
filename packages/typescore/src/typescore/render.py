"""Synthetic "text-to-image models": render text with PIL (DejaVu fonts) and corrupt it at a controlled rate."""

from __future__ import annotations

import importlib.util
import random
import string
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_LETTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits


def dejavu_font(size: int = 32, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's bundled fonts (extra ``typescore-pt[demo]``), else the system copy."""
    return bundled_font("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)


def bundled_font(name: str, size: int = 32) -> ImageFont.FreeTypeFont:
    """A TrueType font shipped with matplotlib (DejaVu, STIX, Computer Modern; extra ``typescore-pt[demo]``),
    else the system DejaVu copy."""
    dirs = [Path("/usr/share/fonts/truetype/dejavu")]
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        dirs.insert(0, Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    for path in (d / name for d in dirs):
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    raise FileNotFoundError(f"font {name} not found: pip install 'typescore-pt[demo]' (matplotlib ships the fonts), "
                            "or install fonts-dejavu")


def render_text(
    text: str,
    width: int = 512,
    height: int = 256,
    font_size: int = 36,
    bold: bool = True,
    chars_per_line: int | None = None,
    background: str = "white",
    color: str = "black",
) -> Image.Image:
    """Draw ``text`` centred on a plain canvas, wrapped to the canvas width."""
    font = dejavu_font(font_size, bold)
    if chars_per_line is None:
        chars_per_line = max(1, int(width * 0.9 / (0.62 * font_size)))
    lines = textwrap.wrap(text, chars_per_line) or [""]
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    block = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), block, font=font, spacing=font_size // 3)
    x, y = (width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top
    draw.multiline_text((x, y), block, font=font, fill=color, spacing=font_size // 3, align="center")
    return img


def corrupt_text(text: str, rate: float, seed: int | random.Random = 0, exact: bool = False) -> str:
    """Replace alphanumeric characters by different ones: each independently with probability ``rate``, or with
    ``exact=True`` exactly ``max(1, round(rate · n))`` of the ``n`` alphanumerics (when ``rate > 0``).

    Substitutions keep the length, so the character error rate is ``rate`` × (alphanumeric fraction).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    alnum = [i for i, c in enumerate(text) if c.isalnum()]
    if exact:
        k = max(1, round(rate * len(alnum))) if rate > 0 and alnum else 0
        chosen = set(rng.sample(alnum, k))
    else:
        chosen = {i for i in alnum if rng.random() < rate}
    out = []
    for i, c in enumerate(text):
        if i in chosen:
            pool = string.ascii_uppercase if c.isupper() else string.ascii_lowercase if c.islower() else _LETTERS
            c = rng.choice([p for p in pool if p != c])
        out.append(c)
    return "".join(out)


class RenderModel:
    """A stand-in text-to-image model: renders each prompt's instructed text with character error ``rate``.

    Called like a diffusers pipeline, ``model(prompt=[...]) -> .images``, so the evaluation runner treats it as one.
    ``rendered`` keeps every text actually drawn, in call order (the ground truth a perfect extractor would read).
    """

    def __init__(self, rate: float = 0.0, seed: int = 0, exact: bool = False, **render_kwargs):
        self.rate, self.rng, self.exact, self.render_kwargs = rate, random.Random(seed), exact, render_kwargs
        self.rendered: list[str] = []

    def __call__(self, prompt: str | list[str], **_):
        from types import SimpleNamespace

        from typescore.prompts import instructed_text

        prompts = [prompt] if isinstance(prompt, str) else prompt
        texts = [corrupt_text(instructed_text(p), self.rate, self.rng, self.exact) for p in prompts]
        self.rendered.extend(texts)
        return SimpleNamespace(images=[render_text(t, **self.render_kwargs) for t in texts])
