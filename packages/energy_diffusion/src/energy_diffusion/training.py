"""One resumable training loop for teachers and distilled energies."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from labcore.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from labcore.logging import get_logger, progress
from labcore.schedules import warmup_cosine

log = get_logger("energy_diffusion")

LossFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    data: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    desc: str = "train",
) -> list[float]:
    """Adam + cosine schedule on minibatches of ``data``; resumes from ``checkpoint_dir`` if it holds one.

    ``loss_fn(batch, generator)`` returns the scalar loss. Returns the full loss curve.
    """
    if len(data) == 0:
        raise ValueError("no training data")
    gen = torch.Generator(device=data.device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    start = 0
    if checkpoint_dir is not None and (found := latest_checkpoint(checkpoint_dir)) is not None:
        state = load_checkpoint(found, model=model, optimizer=opt)
        start, losses = state["step"], state["extra"]["losses"]
        gen.set_state(state["extra_tensors"]["generator"])
        log.info("resumed %s from %s at step %d", desc, found, start)
    schedule = warmup_cosine(0, steps)
    for step in progress(range(start, steps), desc=desc, total=steps - start):
        for group in opt.param_groups:  # cosine schedule in closed form: resumes at any step
            group["lr"] = lr * schedule(step)
        idx = torch.randint(len(data), (batch_size,), generator=gen, device=data.device)
        loss = loss_fn(data[idx], gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc} loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        done = step + 1
        if checkpoint_dir is not None and (done % checkpoint_every == 0 or done == steps):
            save_checkpoint(
                Path(checkpoint_dir),
                done,
                model=model,
                optimizer=opt,
                extra={"losses": losses},
                extra_tensors={"generator": gen.get_state()},
                keep=2,
            )
    return losses
