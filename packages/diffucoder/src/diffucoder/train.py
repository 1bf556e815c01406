"""Masked-diffusion training (pre-training / SFT) as a Lightning module; resumable from ``last.ckpt``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import TensorDataset

from diffucoder.losses import masked_diffusion_loss
from labcore.lightning import FullyShardable, fsdp_blocks, losses, make_trainer, micro_batch, step_dataloader
from labcore.lightning import fit as fit_resumable


class MaskedDiffusionLM(FullyShardable, L.LightningModule):
    """Wraps a :class:`~diffucoder.DreamModel`; batches are ``(input_ids, prompt_mask)``."""

    def __init__(self, model, lr: float = 3e-4, weight_decay: float = 0.0, warmup_steps: int = 50, seed: int = 0):
        super().__init__()
        self.model, self.lr, self.weight_decay, self.warmup_steps = model, lr, weight_decay, warmup_steps
        self.seed = seed

    def training_step(self, batch, batch_idx):
        micro_batch(self, self.seed)  # masking times and positions: by step and micro-batch only
        ids, prompt_mask = batch
        loss = masked_diffusion_loss(self.model, ids, prompt_mask)
        self.log("loss", loss, prog_bar=True)
        return loss

    def fsdp_units(self) -> list[torch.nn.Module]:
        """Under ``strategy="fsdp"``: each decoder layer, then the whole model, which holds the input embedding and
        ``lm_head``, so embeddings tied by ``tie_word_embeddings`` stay one parameter in one unit."""
        return [*fsdp_blocks(self.model), self.model]

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        warmup = max(1, self.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(
    model,
    input_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    out_dir: str | Path,
    max_steps: int,
    batch_size: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    progress: bool = False,
    checkpoint_every: int = 100,
    resume: bool = True,
    **trainer_options,
) -> list[float]:
    """Train ``model`` in place on global batches of ``batch_size``; ``out_dir/checkpoints/last.ckpt`` is
    written every ``checkpoint_every`` steps and on SIGINT/SIGTERM, and a rerun resumes from it exactly.
    ``trainer_options`` (``strategy``, ``devices``, ``precision``, ...) go to
    :func:`labcore.lightning.make_trainer`. Returns the loss of every step of the run (resumed ones too).
    After a ``strategy="fsdp"`` run ``model`` holds this process's shards: every process then calls
    ``model.save_pretrained`` (it gathers them), or reloads ``last.ckpt``."""
    data = step_dataloader(TensorDataset(input_ids, prompt_mask), min(batch_size, len(input_ids)), seed=seed)
    model.train()
    module = MaskedDiffusionLM(model, lr=lr, warmup_steps=min(50, max_steps // 10), seed=seed)
    trainer = make_trainer(
        Path(out_dir) / "checkpoints",
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
        progress=progress,
        **trainer_options,
    )
    fit_resumable(trainer, module, data, resume=resume)
    return losses(trainer)
