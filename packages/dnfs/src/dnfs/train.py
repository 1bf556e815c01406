"""Coordinate-descent training of the rate network (the control-variate coordinate descent of the abstract).

Each epoch: (i) simulate N trajectories of the current CTMC on the time grid (no gradients); (ii) set the control
variate ``c_t`` = mean of ``ξ_t`` over the simulated samples at each grid time (the minimiser of
``E(ξ_t − c_t)²``; by the Stein identity it estimates ``∂_t log Z_t``); (iii) push the samples into a replay buffer
holding the last ``buffer_size`` trajectories and take ``steps_per_epoch`` Adam steps on ``E(ξ_t(x) − c_t)²``
over buffer mini-batches. Defaults follow the authors' Ising script (T=64, N=256, batch 128, 100 steps, lr 1e-3,
AdamW wd 1e-4, log-ratio clamp 5). ``control="learned"`` replaces ``c_t`` by a small network of t trained jointly
(a LEAPS-style baseline without the sample-based control variate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dnfs.kolmogorov import GeometricPath, control_variate, xi
from dnfs.layers import TimestepEmbedder
from dnfs.metrics import effective_sample_size, log_partition
from dnfs.sampler import default_times, simulate


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
        if self.num_times < 2 or self.num_trajectories < 1 or self.batch_size < 1:
            raise ValueError("need num_times >= 2, num_trajectories >= 1, batch_size >= 1")


class ReplayBuffer:
    """The last ``capacity`` simulated trajectories, flattened to (state, time, time index) triples."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def push(self, trajectory: torch.Tensor, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add a ``(T, N, D)`` trajectory simulated on ``times`` (T,), dropping the oldest beyond capacity;
        return it flattened to (states, times, time indices)."""
        t_len, n, _ = trajectory.shape
        idx = torch.arange(t_len, device=trajectory.device)[:, None].expand(t_len, n)
        chunk = (trajectory.reshape(t_len * n, -1), times[idx].reshape(-1), idx.reshape(-1))
        self.chunks.append(chunk)
        while len(self) // t_len > self.capacity and len(self.chunks) > 1:
            self.chunks.pop(0)
        return chunk

    def __len__(self) -> int:
        return sum(c[0].shape[0] for c in self.chunks)

    def batches(self, batch_size: int, num_batches: int, generator: torch.Generator | None = None):
        """Shuffled mini-batches (reshuffled after each pass), like cycling a shuffled DataLoader."""
        x, t, k = (torch.cat(parts) for parts in zip(*self.chunks))
        dev = generator.device if generator is not None else torch.device("cpu")
        perm = torch.empty(0, dtype=torch.long, device=dev)
        for _ in range(num_batches):
            if perm.numel() < batch_size:
                perm = torch.cat([perm, torch.randperm(x.shape[0], generator=generator, device=dev)])
            sel, perm = perm[:batch_size].to(x.device), perm[batch_size:]
            yield x[sel], t[sel], k[sel]


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
    loss: list[float] = field(default_factory=list)
    ess: list[tuple[int, float]] = field(default_factory=list)
    log_z: list[tuple[int, float]] = field(default_factory=list)


class DNFSTrainer:
    """Trains ``model`` (any ``G_θ(x, t) -> (B, D, S)``) so its CTMC transports ``η`` to ``ρ`` along ``path``."""

    def __init__(
        self,
        model: nn.Module,
        path: GeometricPath,
        config: TrainConfig | None = None,
        generator: torch.Generator | None = None,
    ):
        self.model, self.path, self.config = model, path, config or TrainConfig()
        self.device = next(model.parameters()).device
        self.times = default_times(self.config.num_times - 1, self.device)
        self.buffer = ReplayBuffer(self.config.buffer_size)
        self.control = LearnedControl().to(self.device) if self.config.control == "learned" else None
        params = list(model.parameters()) + (list(self.control.parameters()) if self.control is not None else [])
        self.optimizer = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.c_t = torch.zeros(self.config.num_times, device=self.device)
        self.generator = generator
        self.history = History()
        self.epoch = 0

    def _xi(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return xi(self.model(x, t), x, t, self.path, self.config.clamp_log_ratio)

    @torch.no_grad()
    def refresh(self) -> None:
        """Simulate new trajectories, update ``c_t`` (control-variate step) and the replay buffer."""
        self.model.eval()
        res = simulate(
            self.model,
            self.path,
            self.config.num_trajectories,
            self.times,
            with_weights=False,
            keep_trajectory=True,
            generator=self.generator,
        )
        flat, tt, idx = self.buffer.push(res.trajectory, self.times)
        vals = torch.cat(
            [self._xi(xc, tc) for xc, tc in zip(flat.split(self.config.chunk), tt.split(self.config.chunk))]
        )
        self.c_t = control_variate(torch.nan_to_num(vals, nan=0.0, posinf=0.0, neginf=0.0), idx, len(self.times))

    def loss(self, x: torch.Tensor, t: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor:
        """``E(ξ_t(x) − c_t)²`` on a mini-batch (non-finite residuals zeroed as in the authors' code)."""
        c = self.control(t) if self.control is not None else self.c_t[time_index]
        delta = self._xi(x, t) - c
        return torch.nan_to_num(delta, nan=0.0, posinf=1.0, neginf=-1.0).square().mean()

    def train_epoch(self) -> float:
        self.refresh()
        self.model.train()
        total = 0.0
        for x, t, k in self.buffer.batches(self.config.batch_size, self.config.steps_per_epoch, self.generator):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(x, t, k)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        self.epoch += 1
        avg = total / self.config.steps_per_epoch
        self.history.loss.append(avg)
        return avg

    @torch.no_grad()
    def evaluate(self, num_samples: int | None = None, num_steps: int | None = None) -> dict:
        """Weighted samples from the learned sampler with ESS and log Z estimates."""
        self.model.eval()
        times = default_times(num_steps or self.config.num_times - 1, self.device)
        res = simulate(self.model, self.path, num_samples or self.config.eval_samples, times, generator=self.generator)
        out = {"ess": effective_sample_size(res.log_weights), **log_partition(res.log_weights), "result": res}
        self.history.ess.append((self.epoch, out["ess"]))
        self.history.log_z.append((self.epoch, out["log_mean_exp"]))
        return out

    def fit(
        self,
        epochs: int,
        eval_every: int = 0,
        callback: Callable[[int, dict], None] | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
    ) -> History:
        """Run ``epochs`` coordinate-descent epochs, evaluating every ``eval_every`` (0: never).

        SIGINT/SIGTERM let the current epoch finish, then save a checkpoint (with ``checkpoint_dir``) and
        exit with status ``128 + signal``: rerunning with ``--resume`` loses no epoch.
        """
        from labcore.logging import get_logger, progress
        from labcore.signals import SignalFlag

        with SignalFlag() as flag:
            for _ in progress(range(epochs), desc="dnfs"):
                info = {"loss": self.train_epoch()}
                if eval_every and self.epoch % eval_every == 0:
                    ev = self.evaluate()
                    info.update(ess=ev["ess"], log_z=ev["log_mean_exp"])
                if callback is not None:
                    callback(self.epoch, info)
                due = checkpoint_every and self.epoch % checkpoint_every == 0
                if checkpoint_dir and (due or flag.received):
                    path = self.save_checkpoint(checkpoint_dir)
                if flag.received:
                    saved = f"saved {path}" if checkpoint_dir else "no checkpoint_dir: nothing saved"
                    get_logger("dnfs").warning(
                        "signal %d after epoch %d: %s; exiting", flag.received, self.epoch, saved
                    )
                    raise SystemExit(flag.exit_code())
        return self.history

    def save_checkpoint(self, root: str | Path) -> Path:
        """Atomic resumable checkpoint (model, optimizer, RNG, c_t, history; the buffer is refilled on resume)."""
        from labcore.checkpoint import save_checkpoint

        extra = {"epoch": self.epoch, "config": asdict(self.config), "history": asdict(self.history)}
        tensors = {"c_t": self.c_t}
        if self.control is not None:
            tensors.update({f"control.{k}": v for k, v in self.control.state_dict().items()})
        return save_checkpoint(
            root, self.epoch, model=self.model, optimizer=self.optimizer, extra=extra, extra_tensors=tensors, keep=3
        )

    def load_checkpoint(self, path: str | Path) -> None:
        from labcore.checkpoint import load_checkpoint

        state = load_checkpoint(path, model=self.model, optimizer=self.optimizer, map_location=self.device)
        self.epoch = state["extra"]["epoch"]
        self.history = History(
            **{k: [tuple(v) if isinstance(v, list) else v for v in vs] for k, vs in state["extra"]["history"].items()}
        )
        self.c_t = state["extra_tensors"]["c_t"].to(self.device)
        if self.control is not None:
            self.control.load_state_dict(
                {k.removeprefix("control."): v for k, v in state["extra_tensors"].items() if k.startswith("control.")}
            )
