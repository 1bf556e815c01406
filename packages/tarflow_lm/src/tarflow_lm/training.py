"""Training (single or progressive block-wise) with resumable checkpoints, and likelihood evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from labcore.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from labcore.logging import get_logger, progress
from labcore.metrics import bits_per_dim
from tarflow_lm.data import random_windows
from tarflow_lm.modeling import TarFlowLMModel

log = get_logger("tarflow_lm")


def stage_of(step: int, steps: int, num_layers: int, progressive: bool) -> int:
    """Number of active flow layers at ``step``: equal step shares per layer when progressive."""
    return min(num_layers, 1 + step * num_layers // steps) if progressive else num_layers


def train(
    model: TarFlowLMModel,
    stream: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    seq_len: int | None = None,
    lr: float = 1e-3,
    progressive: bool = False,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Maximise the ELBO on random windows of ``stream``; returns the per-step loss in bits/char.

    With ``progressive`` the flow stack grows one layer at a time (train, freeze, add the next one).
    With ``out_dir`` and ``checkpoint_every`` the run saves atomic checkpoints and resumes from the latest.
    """
    seq_len = seq_len or model.config.max_seq_len
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    start = 0
    ckpt_root = Path(out_dir) / "checkpoints" if out_dir else None
    if ckpt_root and (latest := latest_checkpoint(ckpt_root)) is not None:
        state = load_checkpoint(latest, model=model, optimizer=opt)
        start, losses = state["step"], list(state["extra"]["losses"])
        gen.set_state(torch.tensor(state["extra"]["data_rng"], dtype=torch.uint8))
        log.info("resumed from %s at step %d", latest, start)
    model.train()
    stage = None
    for step in progress(
        range(start, steps),
        total=steps,
        initial=start,
        desc="train",
        disable=None if show_progress is None else not show_progress,
    ):
        new_stage = stage_of(step, steps, len(model.flows), progressive)
        if progressive and new_stage != stage:
            model.set_progressive_stage(new_stage)
            log.info("progressive stage: %d active flow layer(s)", new_stage)
        stage = new_stage
        warm = min(1.0, (step + 1) / 100)
        for group in opt.param_groups:
            group["lr"] = lr * warm
        batch = random_windows(stream, batch_size, seq_len, gen)
        loss = model(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item() / math.log(2))
        if (step + 1) % 50 == 0:
            log.info("step %d  -ELBO %.3f bits/char", step + 1, losses[-1])
        if ckpt_root and checkpoint_every and (step + 1) % checkpoint_every == 0:
            save_checkpoint(
                ckpt_root,
                step + 1,
                model=model,
                optimizer=opt,
                keep=2,
                extra={"losses": losses, "data_rng": gen.get_state().tolist()},
            )
    if progressive:
        model.requires_grad_(True)
        model.active_layers = len(model.flows)
    return losses


@torch.no_grad()
def evaluate(
    model: TarFlowLMModel, windows: torch.Tensor, num_samples: int = 1, batch_size: int = 64, seed: int = 0
) -> dict[str, float]:
    """Likelihood bounds over ``(N, T)`` windows: ELBO and (K > 1) importance-weighted BPC / perplexity."""
    model.eval()
    elbo, iw = [], []
    with torch.random.fork_rng():  # seeded posterior samples without disturbing the caller's RNG
        torch.manual_seed(seed)
        for chunk in windows.split(batch_size):
            elbo.append(model(chunk).elbo)
            if num_samples > 1:
                iw.append(model.importance_weighted_bound(chunk, num_samples))
    t = windows.shape[1]
    nll = -torch.cat(elbo)
    out = {"elbo_bpc": bits_per_dim(nll.mean(), t).item(), "elbo_ppl": math.exp(nll.mean().item() / t)}
    if iw:
        nll_iw = -torch.cat(iw)
        out.update(
            {
                f"iw{num_samples}_bpc": bits_per_dim(nll_iw.mean(), t).item(),
                f"iw{num_samples}_ppl": math.exp(nll_iw.mean().item() / t),
            }
        )
    return out
