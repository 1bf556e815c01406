"""A small resumable training loop shared by pre-training, reward fine-tuning and distillation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from labcore.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from labcore.logging import get_logger, progress
from tcsm.objective import TCSMObjective, factorised

log = get_logger("tcsm")


def train(
    model: torch.nn.Module,
    objective: TCSMObjective,
    batches: Callable[[int], torch.Tensor],
    steps: int,
    lr: float = 1e-3,
    target=None,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    log_every: int = 50,
    callback: Callable[[int, dict], None] | None = None,
    grad_clip: float = 1.0,
) -> dict[str, list[float]]:
    """Minimise ``objective`` for ``steps`` steps on ``x_1 = batches(step)`` (the proposal ``h``).

    With ``out_dir`` and ``checkpoint_every``, atomic checkpoints go to ``out_dir/checkpoints`` and a
    rerun resumes from the latest one (model, optimiser, RNG, loss history).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    history: dict[str, list[float]] = {"loss": []}
    start = 0
    ckpt_root = Path(out_dir) / "checkpoints" if out_dir is not None else None
    if ckpt_root is not None and latest_checkpoint(ckpt_root) is not None:
        state = load_checkpoint(latest_checkpoint(ckpt_root), model=model, optimizer=opt)
        start, history = state["step"], state["extra"]["history"]
        log.info("resumed from %s (step %d)", state["path"], start)
    log_cond = factorised(model, objective.process)
    model.train()
    tic = time.perf_counter()
    for step in progress(range(start, steps), total=steps, initial=start, desc="train"):
        x1 = batches(step)
        loss = objective(log_cond, x1, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite TCSM loss at step {step}; lower the learning rate or check the target"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        history["loss"].append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            log.info(
                "step %d loss %.4f (%.1f ms/step)",
                step + 1,
                loss.item(),
                1000 * (time.perf_counter() - tic) / (step + 1 - start),
            )
        if callback is not None:
            callback(step + 1, history)
        if ckpt_root is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            save_checkpoint(ckpt_root, step + 1, model=model, optimizer=opt, extra={"history": history}, keep=2)
    model.eval()
    return history
