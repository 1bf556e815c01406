"""Generate images for a prompt set with a text-to-image pipeline (diffusers, or any compatible callable)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from labcore.logging import progress
from typescore.extract import to_rgb_array
from typescore.prompts import PromptItem


def load_pipeline(path: str | os.PathLike, device: str = "cpu", dtype: str = "float32"):
    """A diffusers text-to-image pipeline saved with ``save_pretrained`` in a local folder (no hub access)."""
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"{path} holds no diffusers pipeline (model_index.json missing)")
    try:
        import torch
        from diffusers import DiffusionPipeline
    except ImportError as err:
        raise ImportError("generating images needs diffusers: `pip install typescore-pt[diffusers]`") from err
    pipe = DiffusionPipeline.from_pretrained(path, torch_dtype=getattr(torch, dtype), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A 63-bit seed for one prompt: a hash of ``(seed, prompt_id)``, the same whatever the batching."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _as_pil(image) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(to_rgb_array(image))


def generate_images(
    pipeline: Callable,
    prompts: Sequence[PromptItem | str],
    batch_size: int = 4,
    seed: int | None = 0,
    out_dir: str | os.PathLike | None = None,
    **pipeline_kwargs,
) -> list:
    """Call ``pipeline(prompt=[...], **pipeline_kwargs)`` in batches; return PIL images in prompt order.

    ``pipeline`` returns an object with ``.images`` (diffusers) or a list of images. With ``seed``, each prompt
    gets its own torch generator seeded by :func:`prompt_seed` (``generator=`` a list, one per prompt, as
    diffusers takes it), so an image depends on the seed and its prompt id, not on the batch size or on which
    other prompts are generated. With ``out_dir`` each image is saved as ``<id>.png``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    items = [p if isinstance(p, PromptItem) else PromptItem.from_prompt(f"{i:04d}", p) for i, p in enumerate(prompts)]
    images: list[Image.Image] = []
    batches = range(0, len(items), batch_size)
    for start in progress(batches, desc="generating", total=len(batches)):
        batch = items[start : start + batch_size]
        kwargs = dict(pipeline_kwargs)
        if seed is not None:
            import torch

            kwargs.setdefault("generator", [torch.Generator().manual_seed(prompt_seed(seed, it.id)) for it in batch])
        out = pipeline(prompt=[it.prompt for it in batch], **kwargs)
        got = list(getattr(out, "images", out))
        if len(got) != len(batch):
            raise ValueError(f"pipeline returned {len(got)} images for {len(batch)} prompts")
        images.extend(_as_pil(im) for im in got)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for it, im in zip(items, images):
            im.save(out / f"{it.id}.png")
    return images


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def match_images(image_dir: str | os.PathLike, items: Sequence[PromptItem], pair_by_order: bool = False) -> list[Path]:
    """The image of each item in ``image_dir``, named ``<prompt id>.<image suffix>``.

    Strict: every prompt needs its image and every image its prompt, else a ``ValueError`` lists the unmatched
    names. ``pair_by_order=True`` instead pairs the sorted file names with the prompts in order (same count).
    """
    folder = Path(image_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if pair_by_order:
        if len(files) != len(items):
            raise ValueError(f"pair_by_order: {folder} has {len(files)} images for {len(items)} prompts")
        return files
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            raise ValueError(f"{folder}: two images for prompt id {p.stem!r}: {by_stem[p.stem].name}, {p.name}")
        by_stem[p.stem] = p
    ids = {it.id for it in items}
    missing = [it.id for it in items if it.id not in by_stem]
    unknown = [p.name for p in files if p.stem not in ids]
    if missing or unknown:

        def head(names: list[str]) -> str:
            return ", ".join(names[:8]) + (f", … (+{len(names) - 8})" if len(names) > 8 else "")

        parts = [f"{folder}: images are paired with prompts by file name <prompt id>.png"]
        if missing:
            parts.append(f"{len(missing)} prompt(s) have no image: {head(missing)}")
        if unknown:
            parts.append(f"{len(unknown)} image(s) match no prompt id: {head(unknown)}")
        parts.append("rename the images, fix the prompt ids, or pass --pair-by-order to pair sorted names in order")
        raise ValueError("; ".join(parts))
    return [by_stem[it.id] for it in items]
