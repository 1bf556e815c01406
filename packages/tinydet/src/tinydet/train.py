"""Lightning training (single process, DDP or FSDP2 by flag), resumable from ``<out_dir>/last.ckpt``."""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

import lightning as L
import torch
from torch.utils.data import Dataset

from labcore.lightning import FullyShardable, at_step_boundary, make_trainer, micro_batch, step_dataloader
from labcore.lightning import fit as fit_resumable
from labcore.logging import get_logger
from labcore.validate import check_count
from tinydet.data import collate

log = get_logger("tinydet.train")


class DetectorModule(FullyShardable, L.LightningModule):
    """Wraps a :class:`~tinydet.detector.RotatedDetector` or :class:`~tinydet.point_teacher.PointTeacher`
    (anything with ``training_loss(batch) -> dict`` and optionally ``after_step()``). ``optimizer='sgd'`` is
    the paper schedule (lr 0.0025, momentum 0.9, wd 1e-4, linear warm-up), ``'adamw'`` is for short CPU runs.

    ``offset_lr_mult`` scales the learning rate of the DCN offset layers (``conv_offset``); the default
    (``None``) is 1 for SGD (the paper) and 0.1 for AdamW, whose sign-like steps otherwise blow the
    offsets, hence DCFL's dynamic prior, up to tens of pixels within a few dozen steps.

    Under ``strategy="fsdp"`` each child of the detector holding parameters (backbone, neck, heads: each called
    through its ``forward``) is one FSDP2 unit; frozen backbone stages are sharded with their stage and stay
    frozen. BatchNorm statistics are buffers, not sharded: each process updates its own, as under DDP.
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
        self.seed = 0
        self.history: list[dict] = []  # per step: the total "loss" and each term the detector returns

    def training_step(self, batch, batch_idx):
        micro_batch(self, self.seed)  # random augmentation etc. depend on the step and micro-batch only
        losses = self.detector.training_loss(batch)
        loss = sum(v for k, v in losses.items() if k.startswith("loss_"))
        self.log_dict({k: v.detach() for k, v in losses.items()}, prog_bar=True, batch_size=len(batch["labels"]))
        self.history.append({"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in losses.items()}})
        return loss

    def fsdp_units(self) -> list[torch.nn.Module]:
        return [m for m in self.detector.children() if any(True for _ in m.parameters())]

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # e.g. Point Teacher's EMA teacher update and step count: once per optimiser step, not per micro-batch
        if hasattr(self.detector, "after_step") and at_step_boundary(self.trainer, batch_idx):
            self.detector.after_step()

    def configure_optimizers(self):
        # runs of consecutive parameters in the module's order, frozen ones included (the optimiser skips them: no
        # gradient), so the optimiser's state ids follow self.parameters(): Lightning assumes so when it moves a
        # one-process checkpoint's optimiser state onto FSDP shards, and maps the states to the wrong parameters
        # otherwise (a shape error at best)
        runs = itertools.groupby(self.detector.named_parameters(), key=lambda item: "conv_offset" in item[0])
        params = [
            {"params": [p for _, p in run], "lr": self.lr * (self.offset_lr_mult if offset else 1.0)}
            for offset, run in runs
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
    num_workers: int = 0,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    offset_lr_mult: float | None = None,
    checkpoint_every: int | None = None,
    **trainer_options: Any,
) -> DetectorModule:
    """Train ``detector`` for ``max_steps`` optimiser steps of ``batch_size`` images (the global batch);
    ``out_dir/last.ckpt`` is written every ``checkpoint_every`` steps (default a quarter of the run) and on
    SIGINT/SIGTERM, and resumes an interrupted run exactly. ``trainer_options`` (``strategy``, ``devices``,
    ``accelerator``, ``precision``, ...) go to :func:`labcore.lightning.make_trainer`; ``ddp=True`` is
    ``strategy="ddp"``."""
    check_count(max_steps, "max_steps")  # Lightning reads max_steps=-1 as "no limit"
    check_count(batch_size, "batch_size")
    if trainer_options.get("strategy") == "fsdp" and hasattr(detector, "after_step"):
        raise ValueError(
            f"strategy fsdp (--strategy fsdp) with {type(detector).__name__}: its EMA teacher update (after_step) "
            "and MIL head read the student's weights outside its forward, which FSDP shards; use --strategy ddp"
        )
    L.seed_everything(seed, workers=True, verbose=False)
    if not progress:  # quiet runs (demo, tests): no "GPU available …" banners
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if ddp:
        trainer_options["strategy"] = "ddp"
    module = DetectorModule(detector, lr, optimizer, warmup, max_steps, offset_lr_mult)
    module.seed = seed
    loader = step_dataloader(
        dataset, min(batch_size, len(dataset)), seed=seed, collate_fn=collate, num_workers=num_workers
    )
    trainer = make_trainer(
        out_dir,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every or max(max_steps // 4, 1),
        gradient_clip_val=35.0,
        progress=progress,
        **trainer_options,
    )
    fit_resumable(trainer, module, loader, resume=resume)
    if trainer.world_size > 1:  # each process updated its BatchNorm statistics: all keep rank 0's, as last.ckpt
        for b, src in zip(module.buffers(), trainer.strategy.broadcast([b.cpu() for b in module.buffers()])):
            b.copy_(src)
    return module
