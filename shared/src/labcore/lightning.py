"""Lightning integration shared by every trainer (needs ``lightning``).

One place builds the :class:`~lightning.pytorch.Trainer` of every package (:func:`make_trainer`), from
the same command-line flags (:func:`add_trainer_args`), with:

- atomic checkpoints (:class:`AtomicCheckpointIO`) saved as ``<checkpoint_dir>/last.ckpt`` every
  ``checkpoint_every`` optimiser steps, resumed by :func:`fit`;
- signal safety (:class:`SignalCheckpoint`): SIGINT/SIGTERM write ``last.ckpt`` at the current step and
  exit with ``128 + signal`` (130/143), so a resumed run loses no step;
- any Lightning strategy (``ddp``, ``ddp_spawn``, ``ddp_fork``, ``fsdp``), precision and ``torch.compile``
  (:mod:`labcore.compiling`). ``fsdp`` is FSDP2 (``fully_shard``) through Lightning's ``ModelParallelStrategy``,
  pure data-parallel sharding over every process, on CPU (gloo) and GPU alike; ``last.ckpt`` holds the full
  (unsharded) state, so it resumes with or without FSDP. The LightningModule opts in with :class:`FullyShardable`
  (:class:`StepModule` is one), whose ``configure_model`` shards the units :meth:`FullyShardable.fsdp_units` names.

Step-indexed trainers (whose batch and noise are drawn afresh each step rather than read from a
dataset) subclass :class:`StepModule`: every micro-batch's randomness is a function of
``(seed, step, micro-batch index)``, where the index counts over processes and gradient-accumulation
micro-batches. A run therefore resumes exactly, and 2 DDP processes equal one process accumulating the
same 2 micro-batches (the same global batch).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from labcore.checkpoint import atomic_write
from labcore.logging import get_logger
from labcore.signals import SignalFlag
from labcore.trainer_args import (  # noqa: F401 (re-exported)
    STRATEGIES,
    add_trainer_args,
    micro_seed,
    step_generator,
    trainer_options,
)

try:
    import lightning as L
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.plugins.io import TorchCheckpointIO
except ImportError as err:  # pragma: no cover - exercised only without lightning
    raise ImportError("labcore.lightning needs Lightning: pip install 'lightning>=2.2'") from err

log = get_logger("labcore.lightning")
LAST = "last.ckpt"
FSDP_PRECISIONS = ("32-true", "bf16-mixed", "bf16-true", "16-true")  # what ModelParallelStrategy accepts


def fsdp2():
    """``(fully_shard, FSDPModule)`` of the installed torch: ``torch.distributed.fsdp`` from torch 2.6,
    ``torch.distributed._composable.fsdp`` before."""
    try:
        from torch.distributed.fsdp import FSDPModule, fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import FSDPModule, fully_shard
    return fully_shard, FSDPModule


class FullyShardable:
    """Mixin of a LightningModule trained with ``strategy="fsdp"``: its ``configure_model`` applies FSDP2's
    ``fully_shard`` over the data-parallel mesh to each unit of :meth:`fsdp_units`, in order; without a
    device mesh (any other strategy) it does nothing. Put it before ``L.LightningModule`` in the bases.
    """

    def fsdp_units(self) -> list[torch.nn.Module]:
        """The modules to shard, inner ones first: :func:`fsdp_blocks` of this module, then each direct child
        holding parameters that is not a container (the roots whose ``forward`` the training step calls: FSDP2
        gathers a unit's parameters only around its ``forward``). Override when a child is used through other
        methods (an EMA copy, a frozen target: leave those out, they stay whole on every process) or must keep
        tied parameters in one unit."""
        containers = (torch.nn.ModuleList, torch.nn.ModuleDict)
        roots = [m for m in self.children() if not isinstance(m, containers) and any(True for _ in m.parameters())]
        return [*fsdp_blocks(self), *roots]

    def configure_model(self) -> None:
        mesh = self.device_mesh
        if mesh is None:
            return
        fully_shard, sharded = fsdp2()
        for unit in checked_units(self):
            if not isinstance(unit, sharded) and any(True for _ in unit.parameters()):  # idempotent: fit, then test
                fully_shard(unit, mesh=mesh["data_parallel"])


def checked_units(module: FullyShardable) -> list[torch.nn.Module]:
    """``module.fsdp_units()``, refused when FSDP2 would train it wrongly: a compiled unit (compiled before
    ``fully_shard`` wrapped it), a trainable parameter outside every unit (without a DDP wrapper its
    gradient would never be averaged over processes: the copies would drift apart silently), or a parameter
    shared by modules whose innermost units differ (a tied embedding and output layer: the inner unit swaps
    in a sharded parameter, the other module keeps the old one, and the tie comes apart silently)."""
    units = module.fsdp_units()
    if any(getattr(m, "_compiled_call_impl", None) is not None for u in units for m in u.modules()):
        raise ValueError(
            "--compile (compile_model) with --strategy fsdp is not supported: the model was compiled before "
            "fully_shard wrapped it; run without --compile, or with --strategy ddp"
        )
    covered = {id(p) for u in units for p in u.parameters()}
    left = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in covered]
    if left:
        raise ValueError(
            f"{type(module).__name__}.fsdp_units() leaves trainable parameters outside every unit, whose gradients "
            f"fsdp would not synchronise: {', '.join(left[:5])}{' ...' if len(left) > 5 else ''}; add their modules"
        )
    innermost: dict[torch.nn.Module, torch.nn.Module] = {}
    for unit in units:  # inner units first
        for m in unit.modules():
            innermost.setdefault(m, unit)
    holders: dict[int, dict[str, torch.nn.Module | None]] = {}
    for prefix, m in module.named_modules(remove_duplicate=False):
        for name, p in m.named_parameters(recurse=False):
            holders.setdefault(id(p), {})[f"{prefix}.{name}" if prefix else name] = innermost.get(m)
    for names in holders.values():
        if len({id(u) for u in names.values()}) > 1:
            raise ValueError(
                f"{type(module).__name__}.fsdp_units() splits the tied parameters {', '.join(names)} over different "
                "units (fsdp would untie them); put the modules sharing them in one unit (e.g. their common parent)"
            )
    return units


def fsdp_blocks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Every block of every ``nn.ModuleList`` inside ``module``, deepest first (FSDP2 shards inner units first)."""
    return [*reversed([b for m in module.modules() if isinstance(m, torch.nn.ModuleList) for b in m])]


def fsdp2_on_cpu() -> bool:
    """Whether the installed torch runs FSDP2 over CPU (gloo) processes correctly: from torch 2.9 (labcore's
    2-process test passes on 2.9, 2.10, 2.13 and 2.14). Before it fails: torch 2.4 creates CUDA streams, 2.6 calls
    ``Stream.record_event`` that CPU streams lack, 2.7 reduces with ``ReduceOp.AVG``, which gloo refuses, and 2.8
    trains but resuming across strategies went wrong (weights 0.03 apart after one resumed step)."""
    return tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 9)


def _fsdp_strategy(accelerator: str, devices, num_nodes: int, precision: str | None):
    """Lightning's ``ModelParallelStrategy`` as pure FSDP2 data parallelism over ``devices × num_nodes``."""
    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator
    from lightning.pytorch.strategies import ModelParallelStrategy

    if (precision or "32-true") not in FSDP_PRECISIONS:
        raise ValueError(f"strategy 'fsdp' supports precision {', '.join(FSDP_PRECISIONS)}; got {precision!r}")
    if accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise ValueError(f"strategy 'fsdp' runs on accelerator cpu or cuda/gpu; got {accelerator!r}")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and not fsdp2_on_cpu():
        raise ValueError(f"strategy 'fsdp' on CPU needs torch >= 2.9 (FSDP2 over gloo); torch is {torch.__version__}")
    acc = CPUAccelerator if on_cpu else CUDAAccelerator
    n = len(acc.get_parallel_devices(acc.parse_devices(acc.auto_device_count() if devices == "auto" else devices)))
    return ModelParallelStrategy(
        data_parallel_size=n * int(num_nodes), tensor_parallel_size=1, save_distributed_checkpoint=False
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file, fsync'ed, then renamed: never half-written.

    Use as ``Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_write(path, lambda f: torch.save(checkpoint, f))


class SignalCheckpoint(Callback):
    """On SIGINT/SIGTERM during training: finish the current optimiser step, save ``path`` atomically
    (all ranks agree through one all-reduce per step), then exit with status ``128 + signum``.
    Also saves ``path`` when training ends.

    Lightning's own SIGTERM handling (stop without saving) is replaced for the duration of ``fit``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.flag = SignalFlag()

    def on_train_start(self, trainer, pl_module) -> None:
        self.flag.install()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.flag.active or not at_step_boundary(trainer, batch_idx):
            return
        signum = self.flag.received
        if trainer.world_size > 1:  # any rank signalled -> every rank saves and leaves together
            t = torch.tensor(float(signum), device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(t, reduce_op="max").item())
        if signum:
            trainer.save_checkpoint(self.path)
            if trainer.is_global_zero:
                log.warning("signal %d: saved %s at step %d; exiting", signum, self.path, trainer.global_step)
            self.flag.restore()
            raise SystemExit(128 + signum)

    def on_train_end(self, trainer, pl_module) -> None:
        self.flag.restore()
        trainer.save_checkpoint(self.path)  # the final step too, so a longer rerun continues from it

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.flag.restore()


def at_step_boundary(trainer, batch_idx: int) -> bool:
    """Whether micro-batch ``batch_idx`` ends an optimiser step (the last of ``accumulate_grad_batches``): where
    per-step work (an EMA update, a step count) belongs in ``on_train_batch_end``."""
    return (batch_idx + 1) % trainer.accumulate_grad_batches == 0


class LossHistory(Callback):
    """The training loss of every optimiser step: mean over its micro-batches and processes.

    Saved in (and restored from) the checkpoint, so a resumed run returns the whole curve.
    """

    def __init__(self) -> None:
        self.losses: list[float] = []
        self._micro: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        self._micro.append(loss.detach().float().reshape(()))
        if at_step_boundary(trainer, batch_idx):
            mean = torch.stack(self._micro).sum()  # Lightning reports each micro-batch's loss / accumulation
            if trainer.world_size > 1:
                mean = trainer.strategy.reduce(mean.to(trainer.strategy.root_device), reduce_op="mean")
            self.losses.append(float(mean))
            self._micro = []

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses = list(state_dict["losses"])


class AfterStep(Callback):
    """Calls ``fn(step, losses)`` after every optimiser step (``losses``: the curve so far), on every rank."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if at_step_boundary(trainer, batch_idx):
            self.fn(trainer.global_step, losses(trainer))


def make_trainer(
    checkpoint_dir: str | Path | None,
    *,
    max_steps: int,
    checkpoint_every: int = 500,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    num_nodes: int = 1,
    strategy: str = "auto",
    precision: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = False,
    stop_after: int | None = None,
    **kwargs: Any,
) -> L.Trainer:
    """A Trainer saving atomic ``<checkpoint_dir>/last.ckpt`` every ``checkpoint_every`` steps and on
    SIGINT/SIGTERM (no checkpoints when ``checkpoint_dir`` is ``None``). Extra ``kwargs`` (``logger``,
    ``gradient_clip_val``, ``accumulate_grad_batches``, ...) go to :class:`~lightning.pytorch.Trainer`;
    ``logger`` defaults to ``False``. ``stop_after`` ends this call early (a planned interruption: the
    schedule still spans ``max_steps``)."""
    if int(max_steps) < 1:
        raise ValueError(f"steps must be >= 1, got {max_steps}")
    if int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be >= 1 optimiser step, got {checkpoint_every}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    saving: list[Callback] = []
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        saving = [
            ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, save_top_k=0, every_n_train_steps=checkpoint_every),
            SignalCheckpoint(checkpoint_dir / LAST),
        ]
        kwargs.setdefault("default_root_dir", checkpoint_dir.parent)
    kwargs.setdefault("enable_checkpointing", bool(saving))
    kwargs.setdefault("logger", False)
    kwargs.setdefault("log_every_n_steps", 10)
    kwargs.setdefault("num_sanity_val_steps", 0)
    kwargs.setdefault("enable_model_summary", False)
    kwargs.setdefault("use_distributed_sampler", False)  # loaders are step-indexed: step_dataloader / StepModule
    return L.Trainer(
        max_steps=int(stop_after or max_steps),
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=_fsdp_strategy(accelerator, devices, num_nodes, precision) if strategy == "fsdp" else strategy,
        precision=precision or "32-true",
        callbacks=[LossHistory(), _BindSamplers(), *saving, *callbacks],
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        **kwargs,
    )


def last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The ``last.ckpt`` path the trainer of :func:`make_trainer` writes (``None`` without checkpoints)."""
    return next((c.path for c in trainer.callbacks if isinstance(c, SignalCheckpoint)), None)


def losses(trainer: L.Trainer) -> list[float]:
    """Per-step training losses of the whole run so far (see :class:`LossHistory`)."""
    return next(c.losses for c in trainer.callbacks if isinstance(c, LossHistory))


def fit(trainer: L.Trainer, module: L.LightningModule, train_dataloaders=None, val_dataloaders=None, *, resume=True):
    """``trainer.fit``, continuing from ``last.ckpt`` (model, optimiser, scheduler, step) when ``resume``."""
    last = last_checkpoint(trainer)
    ckpt_path = str(last) if resume and last is not None and last.exists() else None
    if ckpt_path and trainer.is_global_zero:
        log.info("resuming from %s", last)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
        trainer.fit(module, train_dataloaders, val_dataloaders, ckpt_path=ckpt_path)
    return module


class _Steps(torch.utils.data.IterableDataset):
    """Endless placeholder batches: :class:`StepModule` draws its own data from the step index."""

    def __iter__(self) -> Iterator[int]:
        while True:
            yield 0


def step_loader() -> torch.utils.data.DataLoader:
    """The train loader of a :class:`StepModule` (its ``max_steps`` ends the run)."""
    return torch.utils.data.DataLoader(_Steps(), batch_size=None)


def micro_batch(module: L.LightningModule, seed: int) -> tuple[int, int, int]:
    """``(step, index, count)`` of the micro-batch ``module.training_step`` is computing, counted over
    processes and gradient accumulation; seeds torch's generators with ``(seed, step, index)`` so the
    step's randomness depends on the global batch only (call it first in ``training_step``)."""
    trainer = module.trainer
    step, accum = trainer.global_step, trainer.accumulate_grad_batches
    last_step, k = getattr(module, "_labcore_micro", (-1, 0))
    k = k + 1 if last_step == step else 0
    module._labcore_micro = (step, k)
    index = trainer.global_rank * accum + k % accum
    torch.manual_seed(micro_seed(seed, step, index))
    return step, index, trainer.world_size * accum


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of a map-style dataset as a function of the optimiser step: step ``s``'s global batch is
    rows ``[pos·B, (pos+1)·B)`` of epoch ``s // (n // B)``'s permutation (seeded by ``seed`` and the
    epoch); each process yields its own micro-batches of it (:func:`shard`). Endless; starts at the
    trainer's current step, so a resumed run continues mid-epoch exactly where it stopped.
    """

    _trainer: L.Trainer | None = None  # bound by make_trainer's trainer when fit starts

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True):
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch size must be in [1, {n}] (the dataset size), got {batch_size}")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle

    def __iter__(self) -> Iterator[list[int]]:
        t = StepBatchSampler._trainer
        step = t.global_step if t else 0
        rank, world, accum = (t.global_rank, t.world_size, t.accumulate_grad_batches) if t else (0, 1, 1)
        per_epoch = self.n // self.batch_size
        while True:
            epoch, pos = divmod(step, per_epoch)
            g = torch.Generator().manual_seed(micro_seed(self.seed, epoch, 10**6 + 1))
            perm = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
            rows = perm[pos * self.batch_size : (pos + 1) * self.batch_size]
            for k in range(accum):
                yield shard(rows, rank * accum + k, world * accum).tolist()
            step += 1


class _BindSamplers(Callback):
    def on_fit_start(self, trainer, pl_module) -> None:
        StepBatchSampler._trainer = trainer

    def teardown(self, trainer, pl_module, stage) -> None:
        StepBatchSampler._trainer = None


def step_dataloader(dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True, **kwargs):
    """A DataLoader over ``dataset`` with :class:`StepBatchSampler` (``batch_size`` is the global batch);
    ``kwargs`` (``collate_fn``, ``num_workers``, ...) go to :class:`~torch.utils.data.DataLoader`."""
    sampler = StepBatchSampler(len(dataset), batch_size, seed, shuffle)
    kwargs.setdefault("persistent_workers", kwargs.get("num_workers", 0) > 0)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, **kwargs)


class StepModule(FullyShardable, L.LightningModule):
    """A LightningModule whose batches are functions of the optimiser step (not of a dataset position).

    Subclasses implement :meth:`step_loss`; a step's rows are split evenly (:func:`shard`) over
    ``world_size × accumulate_grad_batches`` micro-batches; :meth:`micro_batch` says which one this call
    computes and seeds torch's generators with ``(seed, step, micro-batch)``, so results depend on the
    global batch only, never on how it is spread over processes, and a resumed run equals an
    uninterrupted one.
    """

    seed: int = 0

    def micro_batch(self) -> tuple[int, int, int]:
        """``(step, index, count)`` of the micro-batch being computed (also seeds torch for it)."""
        return micro_batch(self, self.seed)

    def step_loss(self, step: int, index: int, count: int) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        loss = self.step_loss(*self.micro_batch())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.global_step}; lower the learning rate")
        return loss

    def train_dataloader(self):
        return step_loader()


def shard(x: torch.Tensor, index: int, count: int) -> torch.Tensor:
    """Rows of micro-batch ``index`` of ``count`` (contiguous, equal-sized chunks along dim 0)."""
    if len(x) % count:
        raise ValueError(f"batch size {len(x)} must be divisible by processes x accumulation = {count}")
    return x.chunk(count)[index] if count > 1 else x
