"""Training on Lightning (single or progressive block-wise; resumable, signal-safe, any strategy), and likelihood
evaluation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from labcore.lightning import StepModule, fit, losses, make_trainer, shard, step_generator
from labcore.logging import get_logger
from labcore.metrics import bits_per_dim
from tarflow_lm.data import random_windows
from tarflow_lm.modeling import TarFlowLMModel

log = get_logger("tarflow_lm")


def stage_of(step: int, steps: int, num_layers: int, progressive: bool) -> int:
    """Number of active flow layers at ``step``: equal step shares per layer when progressive."""
    return min(num_layers, 1 + step * num_layers // steps) if progressive else num_layers


class TarFlowLMModule(StepModule):
    """Maximises the ELBO on random windows of ``stream``: step ``s`` draws its windows with a ``(seed, s)``
    generator, each micro-batch its posterior noise from ``(seed, s, micro-batch)`` (:class:`StepModule`).

    Under ``strategy="fsdp"`` labcore's default units shard each Transformer block, each flow layer, then the
    model. The codebook (encoder, tied decoder, the components of ``mixd_tied`` layers, which hold a reference to
    it, not a submodule) is the model's own, so it is gathered for the whole of the model's forward."""

    def __init__(self, model: TarFlowLMModel, stream, *, steps, batch_size, seq_len, lr, progressive, seed):
        super().__init__()
        self.model, self.stream, self.steps, self.batch_size, self.seq_len = model, stream, steps, batch_size, seq_len
        self.lr, self.progressive, self.seed, self.stage = lr, progressive, seed, None

    def step_loss(self, step: int, index: int, count: int) -> torch.Tensor:
        stage = stage_of(step, self.steps, len(self.model.flows), True) if self.progressive else None
        if self.progressive and stage != self.stage:  # (the AR baseline has no flows and is never progressive)
            if count > 1:
                raise ValueError("progressive training freezes layers mid-run: use one process, no accumulation")
            self.model.set_progressive_stage(stage)
            log.info("progressive stage: %d active flow layer(s)", stage)
        self.stage = stage
        windows = random_windows(self.stream, self.batch_size, self.seq_len, step_generator(self.seed, step))
        loss = self.model(shard(windows, index, count).to(self.device)).loss
        if (step + 1) % 50 == 0 and index == 0:
            log.info("step %d  -ELBO %.3f bits/char", step + 1, loss.item() / math.log(2))
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 100))  # linear warm-up
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train(
    model: TarFlowLMModel,
    stream: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    seq_len: int | None = None,
    lr: float = 1e-3,
    progressive: bool = False,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    seed: int = 0,
    show_progress: bool | None = False,
    resume: bool = True,
    **trainer_options: Any,
) -> list[float]:
    """Maximise the ELBO on random windows of ``stream``; returns the per-step loss in bits/char.

    ``model`` may also be :class:`tarflow_lm.baseline.ARBaselineLM` (exact likelihood; pass ``seq_len``).

    With ``progressive`` the flow stack grows one layer at a time (train, freeze, add the next one).
    With ``out_dir`` the run saves ``out_dir/checkpoints/last.ckpt`` atomically every ``checkpoint_every``
    steps and on SIGINT/SIGTERM, and a rerun resumes from it exactly. ``trainer_options`` (``strategy``,
    ``devices``, ``precision``, ...) go to :func:`labcore.lightning.make_trainer`.
    """
    seq_len = seq_len or model.config.max_seq_len
    module = TarFlowLMModule(
        model, stream, steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, progressive=progressive, seed=seed
    )
    trainer = make_trainer(
        Path(out_dir) / "checkpoints" if out_dir else None,
        max_steps=steps,
        checkpoint_every=checkpoint_every,
        gradient_clip_val=1.0,
        progress=show_progress,
        **trainer_options,
    )
    model.train()
    fit(trainer, module, resume=resume)
    if progressive:
        model.requires_grad_(True)
        model.active_layers = len(model.flows)
    return [loss / math.log(2) for loss in losses(trainer)]


@torch.no_grad()
def evaluate(
    model: TarFlowLMModel, windows: torch.Tensor, num_samples: int = 1, batch_size: int = 64, seed: int = 0
) -> dict[str, float]:
    """Likelihood bounds over ``(N, T)`` windows: ELBO and (K > 1) importance-weighted BPC / perplexity."""
    model.eval()
    elbo, iw = [], []
    with torch.random.fork_rng():  # seeded posterior samples without disturbing the caller's RNG
        torch.manual_seed(seed)
        for chunk in windows.split(batch_size):
            elbo.append(model(chunk).elbo)
            if num_samples > 1:
                iw.append(model.importance_weighted_bound(chunk, num_samples))
    t = windows.shape[1]
    nll = -torch.cat(elbo)
    out = {"elbo_bpc": bits_per_dim(nll.mean(), t).item(), "elbo_ppl": math.exp(nll.mean().item() / t)}
    if iw:
        nll_iw = -torch.cat(iw)
        out.update(
            {
                f"iw{num_samples}_bpc": bits_per_dim(nll_iw.mean(), t).item(),
                f"iw{num_samples}_ppl": math.exp(nll_iw.mean().item() / t),
            }
        )
    return out
