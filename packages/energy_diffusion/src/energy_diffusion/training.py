"""One Lightning training loop for teachers and distilled energies (resumable, signal-safe, any strategy)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from energy_diffusion.energy import EnergyModel
from labcore.lightning import StepModule, fsdp_blocks, losses, make_trainer, shard, step_generator
from labcore.lightning import fit as fit_resumable
from labcore.schedules import warmup_cosine

LossFn = Callable[..., torch.Tensor]  # loss_fn(batch, generator=...)


class MinibatchModule(StepModule):
    """Adam + cosine schedule; step ``s`` draws ``batch_size`` rows of ``data`` with a ``(seed, s)`` generator
    and each micro-batch its noise with a ``(seed, s, micro-batch)`` generator (see :class:`StepModule`)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: torch.Tensor, *, batch_size, lr, steps, seed, aux=()):
        super().__init__()
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.batch_size, self.lr, self.steps, self.seed = batch_size, lr, steps, seed
        self._aux = list(aux)  # frozen helpers (a teacher) moved with the model, not trained or saved

    def fsdp_units(self) -> list[nn.Module]:
        """Under ``strategy="fsdp"``: a denoiser's blocks, then the denoiser; an :class:`EnergyModel` is one unit
        (its forward differentiates its network: the hooks of inner units would fire inside it; not tried). The
        frozen ``aux`` (a distilled teacher) is no child: it stays whole on every process."""
        return [self.model] if isinstance(self.model, EnergyModel) else [*fsdp_blocks(self.model), self.model]

    def on_fit_start(self) -> None:
        for m in self._aux:
            m.to(self.device)

    def step_loss(self, step: int, index: int, count: int) -> torch.Tensor:
        idx = torch.randint(len(self.data), (self.batch_size,), generator=step_generator(self.seed, step))
        gen = torch.Generator(device=self.device).manual_seed(torch.initial_seed())  # seeded by micro_batch()
        return self.loss_fn(shard(self.data[idx], index, count).to(self.device), generator=gen)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(0, self.steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


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
    resume: bool = True,
    aux: Sequence[nn.Module] = (),
    progress: bool = False,
    **trainer_options: Any,
) -> list[float]:
    """Train ``model`` with ``loss_fn(batch, generator=...)`` on minibatches of ``data`` for ``steps`` steps.

    Checkpoints (``checkpoint_dir/last.ckpt``, every ``checkpoint_every`` steps and on SIGINT/SIGTERM)
    resume a rerun exactly; ``trainer_options`` (``strategy``, ``devices``, ``precision``, ...) go to
    :func:`labcore.lightning.make_trainer`. Returns the loss curve of the whole run.
    """
    if len(data) == 0:
        raise ValueError("no training data")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    module = MinibatchModule(model, loss_fn, data, batch_size=batch_size, lr=lr, steps=steps, seed=seed, aux=aux)
    trainer = make_trainer(
        Path(checkpoint_dir) if checkpoint_dir is not None else None,
        max_steps=steps,
        checkpoint_every=checkpoint_every,
        progress=progress,
        **trainer_options,
    )
    fit_resumable(trainer, module, resume=resume)
    return losses(trainer)
