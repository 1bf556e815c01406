"""Generate images for a prompt set with a text-to-image pipeline (diffusers, or any compatible callable)."""

from __future__ import annotations

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

    ``pipeline`` returns an object with ``.images`` (diffusers) or a list of images. With ``seed``, a torch
    generator seeded per batch is passed as ``generator=`` when the pipeline accepts keyword arguments.
    With ``out_dir`` each image is saved as ``<id>.png``.
    """
    items = [p if isinstance(p, PromptItem) else PromptItem.from_prompt(f"{i:04d}", p) for i, p in enumerate(prompts)]
    images: list[Image.Image] = []
    batches = range(0, len(items), batch_size)
    for start in progress(batches, desc="generating", total=len(batches)):
        batch = items[start : start + batch_size]
        kwargs = dict(pipeline_kwargs)
        if seed is not None:
            import torch

            kwargs.setdefault("generator", torch.Generator().manual_seed(seed + start))
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


def match_images(image_dir: str | os.PathLike, items: Sequence[PromptItem]) -> list[Path]:
    """Images of ``image_dir`` for ``items``: by file stem == prompt id, else (same count) in sorted order."""
    folder = Path(image_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    by_stem = {p.stem: p for p in files}
    if all(it.id in by_stem for it in items):
        return [by_stem[it.id] for it in items]
    if len(files) == len(items):
        return files
    raise ValueError(
        f"{folder} has {len(files)} images for {len(items)} prompts and their names are not the "
        "prompt ids; name each image <id>.png or give exactly one image per prompt (sorted order)"
    )
