"""Lightning training (single process, or DDP by flag), resumable from ``<out_dir>/last.ckpt``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from labcore.lightning import AtomicCheckpointIO
from labcore.logging import get_logger
from tinydet.data import collate

log = get_logger("tinydet.train")


class DetectorModule(L.LightningModule):
    """Wraps a :class:`~tinydet.detector.RotatedDetector` or :class:`~tinydet.point_teacher.PointTeacher`
    (anything with ``training_loss(batch) -> dict`` and optionally ``after_step()``). ``optimizer='sgd'`` is
    the paper schedule (lr 0.0025, momentum 0.9, wd 1e-4, linear warm-up), ``'adamw'`` is for short CPU runs.

    ``offset_lr_mult`` scales the learning rate of the DCN offset layers (``conv_offset``); the default
    (``None``) is 1 for SGD (the paper) and 0.1 for AdamW, whose sign-like steps otherwise blow the
    offsets, hence DCFL's dynamic prior, up to tens of pixels within a few dozen steps.
    """

    def __init__(
        self,
        detector: torch.nn.Module,
        lr: float = 0.0025,
        optimizer: str = "sgd",
        warmup: int = 500,
        max_steps: int = 10000,
        offset_lr_mult: float | None = None,
    ):
        super().__init__()
        self.detector = detector
        self.lr, self.optimizer_name, self.warmup, self.max_steps = lr, optimizer, warmup, max_steps
        self.offset_lr_mult = offset_lr_mult if offset_lr_mult is not None else 1.0 if optimizer == "sgd" else 0.1
        self.history: list[dict] = []  # per step: the total "loss" and each term the detector returns

    def training_step(self, batch, batch_idx):
        losses = self.detector.training_loss(batch)
        loss = sum(v for k, v in losses.items() if k.startswith("loss_"))
        self.log_dict({k: v.detach() for k, v in losses.items()}, prog_bar=True, batch_size=len(batch["labels"]))
        self.history.append({"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in losses.items()}})
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if hasattr(self.detector, "after_step"):  # e.g. Point Teacher's EMA teacher update
            self.detector.after_step()

    def configure_optimizers(self):
        named = [(n, p) for n, p in self.detector.named_parameters() if p.requires_grad]
        params = [
            {"params": [p for n, p in named if "conv_offset" not in n]},
            {"params": [p for n, p in named if "conv_offset" in n], "lr": self.lr * self.offset_lr_mult},
        ]
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=1e-4)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=1e-4)
        else:
            raise ValueError(f"unknown optimizer {self.optimizer_name!r}; use 'sgd' or 'adamw'")
        warm, total = max(self.warmup, 1), max(self.max_steps, 1)

        def schedule(step):  # linear warm-up from 1/3, then steps ×0.1 at 8/12 and 11/12 (1x schedule)
            if step < warm:
                return 1 / 3 + (2 / 3) * step / warm
            return 0.01 if step >= total * 11 / 12 else 0.1 if step >= total * 8 / 12 else 1.0

        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule), "interval": "step"},
        }


def fit(
    detector: torch.nn.Module,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    *,
    max_steps: int = 1000,
    batch_size: int = 2,
    lr: float = 0.0025,
    optimizer: str = "sgd",
    warmup: int = 500,
    ddp: bool = False,
    devices: int | str = "auto",
    accelerator: str = "auto",
    num_workers: int = 0,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    offset_lr_mult: float | None = None,
) -> DetectorModule:
    """Train ``detector`` for ``max_steps`` optimiser steps; checkpoints go to ``out_dir`` (``last.ckpt``
    resumes an interrupted run). ``ddp=True`` uses Lightning's DDP strategy over ``devices``."""
    L.seed_everything(seed, workers=True, verbose=False)
    if not progress:  # quiet runs (demo, tests): no "GPU available …" banners
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    out_dir = Path(out_dir)
    module = DetectorModule(detector, lr, optimizer, warmup, max_steps, offset_lr_mult)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate,
        num_workers=num_workers,
        drop_last=len(dataset) >= batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    ckpt = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=out_dir, save_last=True, every_n_train_steps=max(max_steps // 4, 1)
    )
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator=accelerator,
        devices=devices,
        strategy="ddp" if ddp else "auto",
        default_root_dir=out_dir,
        callbacks=[ckpt],
        plugins=[AtomicCheckpointIO()],  # an interrupted save never leaves a half-written last.ckpt to resume from
        gradient_clip_val=35.0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=False,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    last = out_dir / "last.ckpt"
    if resume and last.exists():
        log.info("resuming from %s", last)
    trainer.fit(module, loader, ckpt_path=str(last) if resume and last.exists() else None)
    return module
