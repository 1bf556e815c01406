"""Training: maximum likelihood on noise-augmented latents (§3.1) with caption/label dropout.

:class:`StarFlowModule` is a Lightning module (DDP/FSDP by ``strategy``, bf16 by ``precision``,
gradient clipping by the trainer); :func:`training_loss` is the step both it and the plain
loop of the demo use. AdamW with β = (0.9, 0.95), weight decay 1e-4, warm-up then cosine decay,
as in the reference ``train.py`` (which uses no EMA; neither do we).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch

from labcore.checkpoint import full_tensors
from labcore.lightning import FullyShardable, fsdp_blocks, micro_batch
from labcore.lightning import make_trainer as labcore_trainer
from labcore.schedules import warmup_cosine
from starflow.conditioning import ClassEmbedder, TextEncoder, drop_captions, drop_labels
from starflow.config import StarFlowConfig
from starflow.model import StarFlow


def encode_condition(
    config: StarFlowConfig, cond, text_encoder: TextEncoder | None = None, drop: float = 0.0
) -> torch.Tensor | None:
    """Labels or captions of a batch → the deep block's condition, with dropout ``drop``."""
    if not config.conditional:
        return None
    if config.num_classes:
        labels = drop_labels(torch.as_tensor(cond), config.num_classes, drop) if drop else torch.as_tensor(cond)
        return ClassEmbedder(config.num_classes)(labels)
    if text_encoder is None:
        raise ValueError("a text-conditional model needs a text encoder to train")
    captions = drop_captions(list(cond), drop) if drop else list(cond)
    return text_encoder(captions)


def training_loss(
    model: StarFlow, x: torch.Tensor, cond, autoencoder=None, text_encoder=None, latents: bool = False
) -> dict[str, torch.Tensor]:
    """Encode (unless ``latents``), add σ_L noise, drop conditions, return the loss dict."""
    cfg = model.config
    if autoencoder is not None and not latents:
        x = autoencoder.encode(x)
    x = x + cfg.noise_std * torch.randn_like(x)  # noise augmentation, σ_L (§3.1)
    y = encode_condition(cfg, cond, text_encoder, cfg.drop_label)
    return model.loss(x, y.to(x.device) if y is not None else None)


def make_optimizer(model: torch.nn.Module, lr: float, warmup: int, total: int, min_lr: float = 1e-6):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=1e-4)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup, total, floor=min_lr / lr))


class StarFlowModule(FullyShardable, L.LightningModule):
    """Trains a :class:`StarFlow` (maximum likelihood, :func:`training_loss`) on images through a frozen
    autoencoder, or on cached latents or pixels.

    Under ``strategy="fsdp"`` each Transformer layer, then each flow block, then the flow is one FSDP2 unit; the
    frozen autoencoder (called through ``encode``) and text encoder stay whole on every process."""

    def __init__(
        self,
        config: StarFlowConfig | dict,
        lr: float = 1e-3,
        warmup: int = 100,
        total_steps: int = 10000,
        autoencoder=None,
        text_encoder: TextEncoder | None = None,
        latents: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        config = StarFlowConfig(**config) if isinstance(config, dict) else config
        self.save_hyperparameters(
            {
                "config": config.to_dict(),
                "lr": lr,
                "warmup": warmup,
                "total_steps": total_steps,
                "latents": latents,
                "seed": seed,
            }
        )
        self.model = StarFlow(config)
        self.autoencoder = autoencoder  # frozen; kept out of the checkpoint
        if autoencoder is not None:
            autoencoder.requires_grad_(False)
            self.strict_loading = False  # checkpoints omit it; Lightning passes this to every strategy (fsdp too)
        self.text_encoder = text_encoder

    def training_step(self, batch, batch_idx):
        micro_batch(self, self.hparams.seed)  # noise and caption dropout: by step and micro-batch only
        x, cond = batch
        out = training_loss(self.model, x, cond, self.autoencoder, self.text_encoder, self.hparams.latents)
        self.log_dict({k: v.detach() for k, v in out.items()}, prog_bar=True)
        return out["loss"]

    def fsdp_units(self) -> list[torch.nn.Module]:
        return [*fsdp_blocks(self.model), self.model]

    def state_dict(self, *args, **kwargs):
        return {k: v for k, v in super().state_dict(*args, **kwargs).items() if not k.startswith("autoencoder.")}

    def configure_optimizers(self):
        opt, sched = make_optimizer(self.model, self.hparams.lr, self.hparams.warmup, self.hparams.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def save_model(trainer: L.Trainer, module: StarFlowModule, directory: str | Path) -> None:
    """``module.model.save_pretrained(directory)`` after ``trainer.fit``: every process gathers the weights (a
    collective when ``strategy="fsdp"`` left them sharded), process 0 writes them."""
    state = full_tensors(module.model.state_dict())
    if trainer.is_global_zero:
        module.model.save_pretrained(directory, state_dict=state)


def make_trainer(
    out_dir: str | Path,
    max_steps: int,
    strategy: str = "auto",
    precision: str = "32-true",
    grad_clip: float = 1.0,
    save_every: int = 500,
    devices: int | str = "auto",
    log_every: int = 50,
    **trainer_options,
) -> L.Trainer:
    """:func:`labcore.lightning.make_trainer` with atomic ``out_dir/checkpoints/last.ckpt`` (every
    ``save_every`` steps and on SIGINT/SIGTERM), gradient clipping and CSV logs under ``out_dir``.

    ``strategy``: ``auto``, ``ddp`` or ``fsdp``; ``precision``: e.g. ``bf16-mixed``. Train with a
    :func:`labcore.lightning.step_dataloader` (global batch, exact resume).
    """
    return labcore_trainer(
        Path(out_dir) / "checkpoints",
        max_steps=max_steps,
        checkpoint_every=save_every,
        strategy=strategy,
        precision=precision,
        devices=devices,
        gradient_clip_val=grad_clip,
        logger=L.pytorch.loggers.CSVLogger(out_dir),
        log_every_n_steps=log_every,
        progress=None,
        **trainer_options,
    )


def train_loop(
    model: StarFlow,
    batches: Sequence | torch.utils.data.DataLoader,
    steps: int,
    lr: float = 1e-3,
    warmup: int = 20,
    grad_clip: float = 1.0,
    progress=None,
) -> list[float]:
    """Plain single-device loop over ``(x, cond)`` batches (cycled); returns the loss per step."""
    opt, sched = make_optimizer(model, lr, warmup, steps)
    model.train()
    losses, it = [], iter(())
    bar = progress(range(steps), desc="train") if progress else range(steps)
    for _ in bar:
        try:
            x, cond = next(it)
        except StopIteration:
            it = iter(batches)
            x, cond = next(it)
        loss = training_loss(model, x, cond)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses
