"""One Lightning training loop shared by pre-training, reward fine-tuning and distillation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from labcore.lightning import AfterStep, StepModule, fit, fsdp_blocks, losses, make_trainer, shard
from labcore.logging import get_logger
from tcsm.objective import TCSMObjective, factorised

log = get_logger("tcsm")


class TCSMModule(StepModule):
    """Minimises ``objective`` on ``x_1 = batches(step)`` (the proposal ``h``) with AdamW; each
    micro-batch takes its rows of the step's batch and its noise from ``(seed, step, micro-batch)``."""

    def __init__(self, model, objective: TCSMObjective, batches, *, lr, target, seed, log_every):
        super().__init__()
        self.model, self.objective, self.batches, self.target = model, objective, batches, target
        self.lr, self.seed, self.log_every = lr, seed, log_every
        self.log_cond = factorised(model, objective.process)

    def step_loss(self, step: int, index: int, count: int) -> torch.Tensor:
        x1 = shard(self.batches(step), index, count).to(self.device)
        loss = self.objective(self.log_cond, x1, self.target)
        if self.log_every and (step + 1) % self.log_every == 0 and index == 0:
            log.info("step %d loss %.4f", step + 1, loss.item())
        return loss

    def fsdp_units(self) -> list[torch.nn.Module]:
        """Under ``strategy="fsdp"`` the denoiser's blocks, then the denoiser; a frozen target (reward fine-tuning's
        reference, a distilled teacher) is not trained and stays whole on every process."""
        return [*fsdp_blocks(self.model), self.model]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.0)


def train(
    model: torch.nn.Module,
    objective: TCSMObjective,
    batches: Callable[[int], torch.Tensor],
    steps: int,
    lr: float = 1e-3,
    target=None,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    log_every: int = 50,
    callback: Callable[[int, dict], None] | None = None,
    grad_clip: float = 1.0,
    seed: int = 0,
    resume: bool = True,
    progress: bool = False,
    **trainer_options: Any,
) -> dict[str, list[float]]:
    """Minimise ``objective`` for ``steps`` steps on ``x_1 = batches(step)`` (a function of the step only,
    so a resumed run equals an uninterrupted one and the batch is global under DDP).

    With ``out_dir``, atomic checkpoints go to ``out_dir/checkpoints/last.ckpt`` every ``checkpoint_every``
    steps and on SIGINT/SIGTERM, and a rerun resumes from it. ``callback(step, history)`` runs after each
    step; ``trainer_options`` go to :func:`labcore.lightning.make_trainer`.
    """
    module = TCSMModule(model, objective, batches, lr=lr, target=target, seed=seed, log_every=log_every)
    hooks = [AfterStep(lambda step, curve: callback(step, {"loss": curve}))] if callback is not None else []
    trainer = make_trainer(
        Path(out_dir) / "checkpoints" if out_dir is not None else None,
        max_steps=steps,
        checkpoint_every=checkpoint_every,
        gradient_clip_val=grad_clip,
        callbacks=hooks,
        progress=progress,
        **trainer_options,
    )
    model.train()
    fit(trainer, module, resume=resume)
    model.eval()
    return {"loss": losses(trainer)}
