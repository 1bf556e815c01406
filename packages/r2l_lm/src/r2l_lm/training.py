"""Train L2R and R2L twins with identical settings (Lightning: any strategy, ``ddp``/``fsdp`` by flag; resumable).

The twins differ only in the reading direction of their data (the paper's R2L training): same architecture, tokenizer,
optimiser, schedule, seed and batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from transformers import LlamaForCausalLM, PreTrainedModel

from labcore.checkpoint import full_tensors
from labcore.lightning import FullyShardable, fit, fsdp_blocks, losses, make_trainer, step_dataloader
from labcore.schedules import warmup_cosine
from r2l_lm.model import DIRECTION_KEY
from r2l_lm.presets import PRESETS
from r2l_lm.reversal import Direction, R2LDataCollator, ReversedTextDataset, check_direction


def tiny_llama(
    vocab_size: int,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_len: int = 64,
    bos_token_id: int = 1,
    eos_token_id: int = 2,
    pad_token_id: int = 0,
) -> LlamaForCausalLM:
    """A small randomly initialised Llama (the paper's architecture family) for CPU runs and tests: preset ``tiny``."""
    cfg = PRESETS["tiny"](
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_len,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    cfg._attn_implementation = "sdpa"
    return PRESETS.build(cfg)


class CausalLMModule(FullyShardable, L.LightningModule):
    """Next-token cross-entropy on model-order ids; identical for both directions (only the data differs)."""

    def __init__(
        self,
        model: PreTrainedModel,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        max_steps: int = 1000,
    ):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.warmup, self.max_steps = lr, weight_decay, warmup_steps, max_steps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("train_loss", loss, prog_bar=True, on_step=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def fsdp_units(self) -> list[torch.nn.Module]:
        """Under ``strategy="fsdp"``: each block of the model's layer lists (Llama's ``model.layers``, GPT-2's
        ``transformer.h``), then the whole model, which holds the input embedding and the output head, so tied
        embeddings (``tie_word_embeddings``) stay one parameter in one unit."""
        return [*fsdp_blocks(self.model), self.model]

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay, betas=(0.9, 0.95))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(self.warmup, self.max_steps, floor=0.1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_causal_lm(
    model: PreTrainedModel,
    tokenizer: Any,
    texts: Sequence[str],
    direction: Direction,
    out_dir: str | os.PathLike,
    max_steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup_steps: int | None = None,
    schedule_steps: int | None = None,
    seed: int = 0,
    max_length: int | None = None,
    resume: bool = True,
    checkpoint_every: int | None = None,
    progress: bool = False,
    **trainer_options: Any,
) -> list[float]:
    """Train ``model`` on ``texts`` read in ``direction``; returns the per-step losses of this run.

    The final weights and tokenizer go to ``out_dir/model`` (``save_pretrained``, direction recorded in
    the config). Lightning checkpoints go to ``out_dir/checkpoints``; re-running with ``resume=True``
    continues exactly from ``last.ckpt`` (model, optimiser, scheduler, step and data position), which is also
    written on SIGINT/SIGTERM. ``trainer_options`` (``strategy`` such as ``ddp``/``fsdp``, ``devices``,
    ``precision`` e.g. ``bf16-mixed``, ...) go to :func:`labcore.lightning.make_trainer`; ``batch_size`` is
    the global batch. ``schedule_steps`` (default ``max_steps``) is the length of the LR schedule, so a long
    run can be trained in resumable chunks. After a ``strategy="fsdp"`` run ``model`` holds this process's shards
    (every process saves the gathered weights; only rank 0 writes them): use the saved ``out_dir/model``.
    """
    direction = check_direction(direction)
    if not texts:
        raise ValueError("no training texts")
    L.seed_everything(seed, workers=True, verbose=False)
    out = Path(out_dir)
    ds = ReversedTextDataset(list(texts), tokenizer, direction, max_length=max_length)
    loader = step_dataloader(ds, min(batch_size, len(ds)), seed=seed, collate_fn=R2LDataCollator(tokenizer))
    total = schedule_steps or max_steps
    warmup = warmup_steps if warmup_steps is not None else min(100, total // 10 + 1)
    module = CausalLMModule(model, lr=lr, weight_decay=weight_decay, max_steps=total, warmup_steps=warmup)
    trainer = make_trainer(
        out / "checkpoints",
        max_steps=max_steps,
        checkpoint_every=checkpoint_every or max(1, max_steps // 4),
        progress=progress,
        log_every_n_steps=50,
        **trainer_options,
    )
    fit(trainer, module, loader, resume=resume)
    setattr(model.config, DIRECTION_KEY, direction)
    state = full_tensors(model.state_dict())  # after an fsdp fit: gathers the shards (every process calls it)
    if trainer.is_global_zero:
        model.save_pretrained(out / "model", state_dict=state)
        tokenizer.save_pretrained(out / "model")
    return losses(trainer)
