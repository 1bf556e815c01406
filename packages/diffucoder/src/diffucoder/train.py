"""Masked-diffusion training (pre-training / SFT) as a Lightning module; resumable from ``last.ckpt``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from diffucoder.losses import masked_diffusion_loss
from labcore.lightning import AtomicCheckpointIO


class MaskedDiffusionLM(L.LightningModule):
    """Wraps a :class:`~diffucoder.DreamModel`; batches are ``(input_ids, prompt_mask)``."""

    def __init__(self, model, lr: float = 3e-4, weight_decay: float = 0.0, warmup_steps: int = 50):
        super().__init__()
        self.model, self.lr, self.weight_decay, self.warmup_steps = model, lr, weight_decay, warmup_steps
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        ids, prompt_mask = batch
        loss = masked_diffusion_loss(self.model, ids, prompt_mask)
        self.losses.append(loss.item())
        self.log("loss", loss, prog_bar=True)
        return loss

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
) -> list[float]:
    """Train ``model`` in place; checkpoints go to ``out_dir/checkpoints`` and a rerun resumes from the last one."""
    out = Path(out_dir)
    data = DataLoader(
        TensorDataset(input_ids, prompt_mask),
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(input_ids) >= batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    model.train()
    module = MaskedDiffusionLM(model, lr=lr, warmup_steps=min(50, max_steps // 10))
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, every_n_train_steps=100)
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="auto",
        devices=1,
        logger=False,
        callbacks=[ckpt],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=out,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(module, data, ckpt_path=last if last.exists() else None)
    return module.losses
