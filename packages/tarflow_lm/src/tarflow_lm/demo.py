"""Quick start: a tiny TarFlowLM on text8-like characters; BPC bounds, samples, multi-pass PNG."""

from __future__ import annotations

from pathlib import Path

import torch

from labcore.figures import save_image_grid, save_line_plot
from labcore.logging import get_logger
from labcore.rng import seed_everything
from tarflow_lm.configuration import tiny_config
from tarflow_lm.data import contiguous_windows, decode_chars, text8_like_splits
from tarflow_lm.modeling import TarFlowLMModel
from tarflow_lm.training import evaluate, train

log = get_logger("tarflow_lm.demo")


def passes_image(passes: list[torch.Tensor], cell: int = 6) -> torch.Tensor:
    """``(1, 3, H, W)`` picture of one sample's passes: rows = passes (noise → data), columns =
    positions; brightness encodes the character, red marks positions that differ from the final text."""
    ids = torch.stack(passes).float()  # (L+1, T)
    shade = 0.25 + 0.75 * ids / 26
    changed = (ids != ids[-1]).float()
    rgb = torch.stack([shade, shade * (1 - 0.7 * changed), shade * (1 - 0.7 * changed)])
    img = rgb.repeat_interleave(cell, 1).repeat_interleave(cell, 2)
    return img.unsqueeze(0) * 2 - 1


def main(out_dir: Path, steps: int = 600, batch_size: int = 32, max_chars: int = 200_000) -> dict:
    out_dir = Path(out_dir)
    seed_everything(0)
    config = tiny_config(
        max_seq_len=32,
        hidden_size=64,
        layers_per_block=1,
        layer_types=["mix1", "affine", "affine"],
        num_mixtures=[8, 0, 0],
    )
    model = TarFlowLMModel(config)
    train_ids, valid_ids = text8_like_splits(max_chars)
    losses = train(model, train_ids, steps=steps, batch_size=batch_size, lr=3e-3, seed=0)
    model.save_pretrained(out_dir / "model")  # `python -m tarflow_lm sample --model <out>/model --passes`
    metrics = evaluate(model, contiguous_windows(valid_ids, 32, 64), num_samples=8)
    passes = model.generate(4, 32, generator=torch.Generator().manual_seed(1234), return_passes=True)
    samples = [decode_chars(s) for s in passes[-1]]
    for s in samples:
        log.info("sample: %r", s)
    for p, ids in enumerate(passes):
        log.info("pass %d: %r", p, decode_chars(ids[0]))
    save_image_grid(passes_image([p[0] for p in passes]), out_dir / "multipass_edits.png", nrow=1, scale=2)
    save_line_plot(
        {"train -ELBO (bits/char)": losses},
        out_dir / "train_bpc.png",
        ylabel="bits/char",
        title="TarFlowLM tiny, text8-like",
    )
    return {
        "valid ELBO bits/char": metrics["elbo_bpc"],
        "valid IW-8 bits/char": metrics["iw8_bpc"],
        "final train -ELBO bits/char": losses[-1],
        "train steps": steps,
        "sample": samples[0],
    }
