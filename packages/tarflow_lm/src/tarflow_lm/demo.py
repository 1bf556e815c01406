"""Quick start: a tiny TarFlowLM beside a same-budget autoregressive Transformer on text8-like characters.

Both models train with :func:`tarflow_lm.training.train` on the same windows (600 steps × 32 windows of
32 characters, same learning rate and seed); validation bits/char are the flow's ELBO and IW-8 bound
and the baseline's exact NLL. Multi-pass decoding (§3.2) is shown as the paper describes it: each
inverted flow layer is one pass over the whole sequence, alternating direction, and the tied decoder
reads text off every intermediate state; we report how much of the final text each pass already has.
"""

from __future__ import annotations

from pathlib import Path

import torch

from labcore.claims import Claim, verdict
from labcore.figures import save_image_grid, save_line_plot
from labcore.logging import get_logger
from labcore.rng import seed_everything
from tarflow_lm.baseline import ARBaselineLM
from tarflow_lm.data import contiguous_windows, decode_chars, text8_like_splits
from tarflow_lm.modeling import TarFlowLMModel
from tarflow_lm.presets import PRESETS
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


def main(out_dir: Path, steps: int = 600, batch_size: int = 32, max_chars: int = 200_000, seq_len: int = 32) -> dict:
    out_dir = Path(out_dir)
    seed_everything(0)
    config = PRESETS["tiny"](
        max_seq_len=seq_len,
        hidden_size=64,
        layers_per_block=1,
        layer_types=["mix1", "affine", "affine"],
        num_mixtures=[8, 0, 0],
    )
    model = TarFlowLMModel(config)
    train_ids, valid_ids = text8_like_splits(max_chars)
    valid = contiguous_windows(valid_ids, seq_len, 64)
    budget = dict(steps=steps, batch_size=batch_size, seq_len=seq_len, lr=3e-3, seed=0, show_progress=False)
    flow_losses = train(model, train_ids, **budget)
    model.save_pretrained(out_dir / "model")  # `python -m tarflow_lm sample --model <out>/model --passes`
    metrics = evaluate(model, valid, num_samples=8)

    seed_everything(0)  # the baseline: 3 Transformer layers of the same width = the flow's 3 layers × 1
    depth = len(config.layer_types) * config.layers_per_block
    ar = ARBaselineLM(config.vocab_size, config.hidden_size, depth, config.num_heads, seq_len)
    ar_losses = train(ar, train_ids, **budget)
    ar_bpc = evaluate(ar, valid)["elbo_bpc"]  # exact NLL: the AR model's 'ELBO' is tight

    passes = model.generate(16, seq_len, generator=torch.Generator().manual_seed(1234), return_passes=True)
    final = passes[-1]
    agreement = [round(float((p == final).float().mean()), 3) for p in passes]
    for p, ids in enumerate(passes):
        log.info("pass %d: %r", p, decode_chars(ids[0]))
    ar_sample = decode_chars(ar.generate(1, seq_len, generator=torch.Generator().manual_seed(1234))[0])
    save_image_grid(passes_image([p[0] for p in passes]), out_dir / "multipass_edits.png", nrow=1, scale=2)
    save_line_plot(
        {"TarFlowLM train -ELBO": flow_losses, "AR Transformer train NLL": ar_losses},
        out_dir / "train_bpc.png",
        ylabel="bits/char",
        title=f"same budget: {steps} steps x {batch_size} windows of {seq_len} chars",
    )
    iw8 = metrics["iw8_bpc"]
    claim = Claim(
        claim="Stacked Transformer autoregressive flows over continuous latents model language with "
        "likelihoods close to discrete autoregressive models, and generate in hierarchical multi-pass fashion.",
        measure=f"validation bits/char after {steps} steps (flow: IW-8 bound)",
        ours=round(iw8, 3),
        baseline=round(ar_bpc, 3),
        baseline_name="AR Transformer, same budget, exact NLL",
        verdict=verdict(iw8 <= ar_bpc + 0.1),
        note=f"At {steps} CPU steps the flow is {iw8 - ar_bpc:+.2f} bits/char from the AR baseline "
        f"(IW-8 {iw8:.2f} vs {ar_bpc:.2f}; uniform = 4.75): it first has to fit the codebook and the scale of the "
        "latent marginal. The paper's near-parity (text8 AR 1.23 BPC) is at GPT-2-small scale and long training. "
        f"Multi-pass decoding works as described: the share of the final text present after each pass is "
        f"{' → '.join(f'{a:.2f}' for a in agreement)} (pass 0 = noise).",
        figures=["train_bpc.png", "multipass_edits.png"],
    )
    return {
        "claim": claim.as_dict(),
        "flow valid ELBO bits/char": round(metrics["elbo_bpc"], 4),
        "flow valid IW-8 bits/char": round(iw8, 4),
        "AR valid bits/char (exact)": round(ar_bpc, 4),
        "flow params": sum(p.numel() for p in model.parameters()),
        "AR params": sum(p.numel() for p in ar.parameters()),
        "train steps (each)": steps,
        "multi-pass: share of final text per pass": agreement,
        "multi-pass readouts of sample 0 (noise → data)": [decode_chars(p[0]) for p in passes],
        "flow sample": decode_chars(final[0]),
        "AR sample": ar_sample,
    }
