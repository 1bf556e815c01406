"""Lightning training loop of the reference ``train.py``: AdamW, warm-up + cosine LR, noise augmentation,
label dropout for CFG, EMA prior for ``nvp=False``, atomic resumable checkpoints, PNG sample grids."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from labcore.compiling import maybe_compile
from labcore.figures import save_image_grid
from labcore.lightning import FullyShardable, make_trainer, micro_batch, step_dataloader
from labcore.lightning import fit as fit_resumable
from labcore.logging import get_logger
from labcore.schedules import warmup_cosine
from labcore.validate import check_count
from tarflow.config import TarFlowConfig
from tarflow.data import augment, dequantize_uniform, drop_labels
from tarflow.model import TarFlow

log = get_logger("tarflow.train")


class TarFlowModule(FullyShardable, L.LightningModule):
    """Trains a :class:`TarFlow` with the paper's loss (nats/dim) and the reference's optimiser settings.

    Under ``strategy="fsdp"`` each attention block, then each flow block, then the model is one FSDP2 unit
    (labcore's default units); the prior variance ``var`` is a buffer, kept whole and equal on every process."""

    def __init__(
        self,
        config: TarFlowConfig | dict,
        lr: float = 1e-4,
        drop_label: float = 0.0,
        warmup_steps: int = 100,
        total_steps: int = 10_000,
        min_lr: float = 1e-6,
        weight_decay: float = 1e-4,
    ):
        super().__init__()
        config = TarFlowConfig(**config) if isinstance(config, dict) else config
        self.save_hyperparameters(
            {
                "config": vars(config),
                "lr": lr,
                "drop_label": drop_label,
                "warmup_steps": warmup_steps,
                "total_steps": total_steps,
                "min_lr": min_lr,
                "weight_decay": weight_decay,
            }
        )
        self.model = TarFlow(config)

    @property
    def config(self) -> TarFlowConfig:
        return self.model.config

    def training_step(self, batch, batch_idx):
        micro_batch(self, self.hparams.get("seed", 0))  # noise and label dropout: by step and micro-batch only
        x, y = batch
        c = self.config
        x = augment(x, c.noise_type, c.noise_std)
        y = drop_labels(y, self.hparams.drop_label) if c.num_classes else None
        z, logdet, _ = self.model(x, y)
        loss = self.model.get_loss(z, logdet)
        if not c.nvp:
            second_moment = self.all_gather(z.detach().float().pow(2).mean(0)).reshape(-1, *z.shape[1:]).mean(0)
            self.model.update_prior(second_moment.sqrt().unsqueeze(0))  # mean over devices, as the reference
        self.log_dict(
            {"loss": loss, "mse_z": 0.5 * z.float().pow(2).mean(), "logdet_per_dim": logdet.mean() / c.num_dims},
            prog_bar=True,
            on_step=True,
            sync_dist=False,
        )
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        c = self.config
        if c.noise_type == "uniform":
            self.log("val_bpd", self.model.bits_per_dim(dequantize_uniform(x)).mean(), prog_bar=True, sync_dist=True)
        else:
            z, logdet, _ = self.model(augment(x, c.noise_type, c.noise_std), y if c.num_classes else None)
            self.log("val_loss", self.model.get_loss(z, logdet), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(self.model.parameters(), lr=hp.lr, betas=(0.9, 0.95), weight_decay=hp.weight_decay)
        ratio = hp.min_lr / hp.lr  # reference CosineLRSchedule: linear warm-up from min_lr, cosine decay to it
        schedule = warmup_cosine(hp.warmup_steps, hp.total_steps, floor=ratio, warmup_from=ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class SampleGrid(Callback):
    """Saves a PNG grid of samples (fixed noise and classes) every ``every_n_steps`` optimiser steps."""

    def __init__(self, out_dir: str | Path, every_n_steps: int, num: int = 64, guidance: float = 0.0, seed: int = 0):
        self.out_dir, self.every, self.num, self.guidance, self.seed = Path(out_dir), every_n_steps, num, guidance, seed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every <= 0 or step % self.every or not trainer.is_global_zero:
            return
        model: TarFlow = pl_module.model
        gen = torch.Generator(device=model.var.device).manual_seed(self.seed)
        n_cls = model.config.num_classes
        y = torch.arange(self.num, device=model.var.device) % n_cls if n_cls else None
        was_training = model.training
        model.eval()
        samples = model.sample(self.num, y, guidance=self.guidance, generator=gen)
        model.train(was_training)
        save_image_grid(samples, self.out_dir / f"samples_{step:07d}.png", nrow=n_cls or None)


def fit(
    config: TarFlowConfig,
    train: Dataset,
    out_dir: str | Path,
    *,
    val: Dataset | None = None,
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-4,
    drop_label: float = 0.0,
    warmup_steps: int | None = None,
    precision: str | None = None,
    sample_every: int = 0,
    sample_guidance: float = 0.0,
    checkpoint_every: int = 500,
    resume: bool = True,
    num_workers: int = 0,
    seed: int = 100,
    progress_bar: bool | None = None,
    compile_model: bool = False,
    **trainer_options,
) -> TarFlowModule:
    """Train for ``steps`` optimiser steps of ``batch_size`` images (the global batch); resumes exactly from
    ``out_dir/checkpoints/last.ckpt``, written every ``checkpoint_every`` steps and on SIGINT/SIGTERM.

    ``trainer_options`` (``strategy`` e.g. ``"ddp"``/``"fsdp"``, ``devices``, ``accelerator``, ...) go to
    :func:`labcore.lightning.make_trainer`. ``precision`` defaults to bf16 autocast for Gaussian-noise
    (generation) models on GPU and fp32 otherwise, as the reference.
    """
    check_count(steps, "steps")
    check_count(batch_size, "batch_size")
    if sample_every and trainer_options.get("strategy") == "fsdp":
        raise ValueError(
            "sample_every (--sample-every) with strategy fsdp: rank 0 alone cannot sample a sharded model; "
            "set it to 0 and sample the saved model (python -m tarflow sample)"
        )
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    if precision is None:
        precision = "bf16-mixed" if config.noise_type == "gaussian" and torch.cuda.is_available() else "32-true"
    if warmup_steps is None:
        warmup_steps = max(1, min(steps // 10, len(train) // batch_size))  # reference: one epoch of warm-up
    module = TarFlowModule(config, lr=lr, drop_label=drop_label, warmup_steps=warmup_steps, total_steps=steps)
    module.hparams["seed"] = seed
    maybe_compile(module.model, compile_model)
    loader = step_dataloader(train, min(batch_size, len(train)), seed=seed, num_workers=num_workers)
    val_loader = DataLoader(val, batch_size=batch_size) if val is not None else None
    callbacks: list[Callback] = []
    if sample_every:
        callbacks.append(SampleGrid(out_dir / "samples", sample_every, guidance=sample_guidance))
    trainer = make_trainer(
        out_dir / "checkpoints",
        max_steps=steps,
        checkpoint_every=checkpoint_every,
        precision=precision,
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(out_dir),
        progress=progress_bar,
        val_check_interval=checkpoint_every if val_loader else None,
        check_val_every_n_epoch=None if val_loader else 1,
        limit_val_batches=None if val_loader else 0,
        **trainer_options,
    )
    fit_resumable(trainer, module, loader, val_loader, resume=resume)
    return module
