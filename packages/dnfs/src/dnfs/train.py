"""Coordinate-descent training of the rate network (the control-variate coordinate descent of the abstract), on
Lightning (:func:`labcore.lightning.make_trainer`).

Each epoch of ``steps_per_epoch`` optimiser steps starts with (i) simulating N trajectories of the current CTMC on
the time grid (no gradients); (ii) setting the control variate ``c_t`` = mean of ``ξ_t`` over the new samples at
each grid time (the minimiser of ``E(ξ_t − c_t)²``; by the Stein identity it estimates ``∂_t log Z_t``); (iii)
pushing them into a replay buffer of the last ``buffer_size`` trajectories; then every step is an AdamW step on
``E(ξ_t(x) − c_t)²`` over a buffer mini-batch. Defaults follow the authors' Ising script (T=64, N=256, batch 128,
100 steps, lr 1e-3, AdamW wd 1e-4, log-ratio clamp 5). ``control="learned"`` replaces ``c_t`` by a small network
of t trained jointly (a LEAPS-style baseline without the sample-based control variate).

Randomness depends only on the seed, the step and the global sample index: epoch ``e``'s trajectories on
``(seed, e)`` and the trajectory's row (each DDP process simulates its rows and all gather the whole buffer),
step ``s``'s mini-batch on ``(seed, e)`` and its position in the epoch. So N processes train the same model as one
process on the same global batch, and a resumed run (the buffer is in the checkpoint) equals an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dnfs.kolmogorov import GeometricPath, control_variate, xi
from dnfs.layers import TimestepEmbedder
from dnfs.metrics import effective_sample_size, log_partition
from dnfs.sampler import SampleResult, default_times, simulate
from labcore.lightning import StepModule, losses, make_trainer, shard
from labcore.lightning import fit as fit_resumable
from labcore.trainer_args import micro_seed

# random streams of an epoch, apart from labcore's (seed, step, micro-batch) ones
REFRESH, SHUFFLE, EVALUATE = 10**6 + 11, 10**6 + 12, 10**6 + 13


@dataclass
class TrainConfig:
    num_times: int = 64  # grid points including t=0 and t=1
    num_trajectories: int = 256
    batch_size: int = 128
    steps_per_epoch: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-4
    buffer_size: int = 1024  # trajectories kept in the replay buffer
    clamp_log_ratio: float | None = 5.0
    control: str = "stein"  # "stein" (DNFS) or "learned" (LEAPS-style)
    eval_samples: int = 2048
    chunk: int = 4096

    def __post_init__(self):
        if self.control not in ("stein", "learned"):
            raise ValueError(f"control must be 'stein' or 'learned', got {self.control!r}")
        if self.num_times < 2 or self.num_trajectories < 1 or self.batch_size < 1 or self.steps_per_epoch < 1:
            raise ValueError("need num_times >= 2, num_trajectories >= 1, batch_size >= 1, steps_per_epoch >= 1")


class ReplayBuffer:
    """The last ``capacity`` simulated trajectories, flattened to (state, time, time index) triples (kept on CPU)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.trajectories: list[torch.Tensor] = []
        self.data: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def push(self, trajectory: torch.Tensor, times: torch.Tensor) -> None:
        """Add a ``(T, N, D)`` trajectory simulated on ``times`` (T,), dropping the oldest beyond capacity."""
        self.trajectories.append(trajectory.cpu())
        while sum(tr.shape[1] for tr in self.trajectories) > self.capacity and len(self.trajectories) > 1:
            self.trajectories.pop(0)
        k = torch.cat([torch.arange(len(times)).repeat_interleave(tr.shape[1]) for tr in self.trajectories])
        self.data = (torch.cat([tr.flatten(0, 1) for tr in self.trajectories]), times.cpu()[k], k)

    def __len__(self) -> int:
        return 0 if self.data is None else len(self.data[0])

    def batch(self, position: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mini-batch ``position`` of the rows ``[position·B, (position+1)·B)`` of a stream of shuffles of the
        buffer seeded by ``seed`` (like cycling a shuffled DataLoader reshuffled on each pass)."""
        n = len(self)
        g = torch.Generator().manual_seed(seed)
        passes = -(-(position + 1) * batch_size // n)
        rows = torch.cat([torch.randperm(n, generator=g) for _ in range(passes)])[position * batch_size :]
        return tuple(d[rows[:batch_size]] for d in self.data)


class LearnedControl(nn.Module):
    """``c_φ(t)``: a scalar network of time (the LEAPS-style free-energy derivative)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.embed = TimestepEmbedder(hidden)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(t))[:, 0]


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # every optimiser step's loss
    ess: list[tuple[int, float]] = field(default_factory=list)  # (epoch, ESS) of each evaluation
    log_z: list[tuple[int, float]] = field(default_factory=list)


class DNFSTrainer(StepModule):
    """Trains ``model`` (any ``G_θ(x, t) -> (B, D, S)``) so its CTMC transports ``η`` to ``ρ`` along ``path``:
    a LightningModule (``fit`` runs it), randomness from ``seed`` as in the module docstring.

    Under ``strategy="fsdp"`` labcore's default units shard each block of the rate network, then the network
    and the learned control: both are called only through ``forward`` (the sampler too), on every process
    alike. The target, the path, ``c_t`` and the replay buffer hold no parameters and stay whole everywhere."""

    def __init__(self, model: nn.Module, path: GeometricPath, config: TrainConfig | None = None, seed: int = 0):
        super().__init__()
        self.model, self.path, self.config, self.seed = model, path, config or TrainConfig(), int(seed)
        self.control = LearnedControl() if self.config.control == "learned" else None
        self.register_buffer("c_t", torch.zeros(self.config.num_times))
        self.register_buffer("times", default_times(self.config.num_times - 1), persistent=False)
        self.buffer = ReplayBuffer(self.config.buffer_size)
        self.history = History()
        self._refreshed: int | None = None  # the step whose epoch filled the buffer in this fit
        self._eval_every, self._callback = 0, None
        self.to(next(model.parameters()).device)

    def _xi(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return xi(self.model(x, t), x, t, self.path, self.config.clamp_log_ratio)

    def _part(self) -> tuple[int, int]:
        """(rank, processes) while fitting (each simulates its share of the rows), else (0, 1)."""
        t = self._trainer
        return (t.global_rank, t.world_size) if t is not None and t.training else (0, 1)

    def _gather(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Every process's share of ``x`` concatenated along ``dim`` in rank order (the whole run's rows)."""
        return torch.cat(list(self.all_gather(x).unbind(0)), dim) if self._part()[1] > 1 else x

    @torch.no_grad()
    def refresh(self, epoch: int) -> None:
        """Start of epoch ``epoch``: simulate new trajectories, update ``c_t`` (control-variate step) and the buffer."""
        training, n, t_len = self.model.training, self.config.num_trajectories, len(self.times)
        self.model.eval()
        gen = torch.Generator(self.device).manual_seed(micro_seed(self.seed, epoch, REFRESH))
        res = simulate(
            self.model,
            self.path,
            n,
            self.times,
            with_weights=False,
            keep_trajectory=True,
            generator=gen,
            part=self._part(),
        )
        flat, tt = res.trajectory.flatten(0, 1), self.times.repeat_interleave(res.trajectory.shape[1])
        vals = torch.cat([self._xi(x, t) for x, t in zip(flat.split(self.config.chunk), tt.split(self.config.chunk))])
        trajectory, vals = self._gather(res.trajectory, 1), self._gather(vals.view(t_len, -1), 1)
        self.buffer.push(trajectory, self.times)
        idx = torch.arange(t_len, device=self.device).repeat_interleave(n)
        self.c_t = control_variate(torch.nan_to_num(vals.flatten(), nan=0.0, posinf=0.0, neginf=0.0), idx, t_len)
        self.model.train(training)

    def loss(self, x: torch.Tensor, t: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor:
        """``E(ξ_t(x) − c_t)²`` on a mini-batch (non-finite residuals zeroed as in the authors' code)."""
        c = self.control(t) if self.control is not None else self.c_t[time_index]
        delta = self._xi(x, t) - c
        return torch.nan_to_num(delta, nan=0.0, posinf=1.0, neginf=-1.0).square().mean()

    def step_loss(self, step: int, index: int, count: int) -> torch.Tensor:
        epoch, position = divmod(step, self.config.steps_per_epoch)
        if position == 0 and self._refreshed != step:
            self.refresh(epoch)
            self._refreshed = step
        batch = self.buffer.batch(position, self.config.batch_size, micro_seed(self.seed, epoch, SHUFFLE))
        return self.loss(*(shard(v, index, count).to(self.device) for v in batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def on_fit_start(self) -> None:
        self._refreshed = None
        self.path.target.to(self.device)
        world, accumulate = self.trainer.world_size, self.trainer.accumulate_grad_batches
        for name in ("num_trajectories", "eval_samples"):
            if getattr(self.config, name) % world:
                raise ValueError(f"{name}={getattr(self.config, name)} must be divisible by the {world} processes")
        if self.config.batch_size % (world * accumulate):
            raise ValueError(
                f"batch_size={self.config.batch_size} must be divisible by processes x accumulation = "
                f"{world * accumulate} (it is the global batch)"
            )

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """After an epoch's last step: evaluate every ``eval_every`` epochs, then ``callback(epoch, info)``."""
        steps, step = self.config.steps_per_epoch, self.trainer.global_step
        if (batch_idx + 1) % self.trainer.accumulate_grad_batches or step % steps:
            return
        epoch = step // steps
        info = {"loss": sum(losses(self.trainer)[-steps:]) / steps}
        if self._eval_every and epoch % self._eval_every == 0:
            ev = self.evaluate()
            info.update(ess=ev["ess"], log_z=ev["log_mean_exp"])
        if self._callback is not None:
            self._callback(epoch, info)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        small = self.path.num_states <= 256  # states stored as bytes
        checkpoint["dnfs_buffer"] = [tr.to(torch.uint8) if small else tr for tr in self.buffer.trajectories]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.buffer = ReplayBuffer(self.config.buffer_size)
        for trajectory in checkpoint["dnfs_buffer"]:
            self.buffer.push(trajectory.long(), self.times)

    @torch.no_grad()
    def evaluate(
        self, num_samples: int | None = None, num_steps: int | None = None, generator: torch.Generator | None = None
    ) -> dict:
        """Weighted samples from the learned sampler with ESS and log Z estimates; the default ``generator`` is
        seeded by ``(seed, step)`` (the same draw in every process, each simulating its share while fitting)."""
        training = self.model.training
        self.model.eval()
        times = default_times(num_steps or len(self.times) - 1, self.device)
        gen = generator or torch.Generator(self.device).manual_seed(micro_seed(self.seed, self.global_step, EVALUATE))
        n = num_samples or self.config.eval_samples
        res = simulate(self.model, self.path, n, times, generator=gen, part=self._part())
        res = SampleResult(self._gather(res.samples, 0), self._gather(res.log_weights, 0))
        self.model.train(training)
        out = {"ess": effective_sample_size(res.log_weights), **log_partition(res.log_weights), "result": res}
        epoch = self.global_step // self.config.steps_per_epoch
        self.history.ess.append((epoch, out["ess"]))
        self.history.log_z.append((epoch, out["log_mean_exp"]))
        return out

    def fit(
        self,
        steps: int,
        *,
        out_dir: str | Path | None = None,
        resume: bool = True,
        eval_every: int = 0,
        callback: Callable[[int, dict], None] | None = None,
        checkpoint_every: int = 500,
        progress: bool = False,
        **trainer_options: Any,
    ) -> History:
        """Train for ``steps`` optimiser steps (``steps_per_epoch`` per epoch), evaluating every ``eval_every``
        epochs (0: never) and calling ``callback(epoch, info)`` after each epoch (its mean loss, ESS, log Z).

        With ``out_dir``, ``out_dir/checkpoints/last.ckpt`` (model, optimiser, ``c_t``, replay buffer, step) is
        written atomically every ``checkpoint_every`` steps and on SIGINT/SIGTERM (exit 130/143), and a rerun
        resumes from it (``resume=False`` starts over). ``trainer_options`` (``accelerator``, ``devices``,
        ``strategy``, ``precision``, ...) go to :func:`labcore.lightning.make_trainer`. Returns the run's
        history: every step's loss (resumed ones too) and this call's evaluations.
        """
        if eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 epochs (0: never), got {eval_every}")
        self._eval_every, self._callback, self.history = eval_every, callback, History()
        trainer = make_trainer(
            Path(out_dir) / "checkpoints" if out_dir is not None else None,
            max_steps=steps,
            checkpoint_every=checkpoint_every,
            progress=progress,
            **trainer_options,
        )
        fit_resumable(trainer, self, resume=resume)
        self.history.loss = losses(trainer)
        return self.history
