"""The command-line flags every ``train`` command shares (no Lightning import: ``--help`` stays fast)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "fsdp")


def add_trainer_args(parser: argparse.ArgumentParser, *, checkpoint_every: int = 500) -> None:
    """The flags every ``train`` command shares (read back by :func:`trainer_options`)."""
    g = parser.add_argument_group("trainer (Lightning)")
    g.add_argument("--device", default="auto", help="accelerator: auto, cpu, cuda/gpu, mps")
    g.add_argument("--devices", default="auto", help="devices per node: a count, 'auto' or a list like 0,1")
    g.add_argument("--num-nodes", type=int, default=1, help="nodes (with torchrun or SLURM)")
    g.add_argument("--strategy", default="auto", choices=STRATEGIES, help="data/model parallelism")
    g.add_argument("--precision", default=None, help="e.g. 32-true, 64-true, bf16-mixed, 16-mixed")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (labcore.compiling)")
    g.add_argument("--checkpoint-every", type=int, default=checkpoint_every, help="optimiser steps between checkpoints")
    g.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=True, help="continue from OUT's last.ckpt"
    )


def trainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`make_trainer` from the flags of :func:`add_trainer_args`."""
    if args.compile and args.strategy == "fsdp":  # before any process starts (FullyShardable refuses it later)
        raise ValueError("--compile with --strategy fsdp is not supported; drop --compile or use --strategy ddp")
    devices = args.devices
    if isinstance(devices, str) and devices != "auto":
        devices = int(devices) if devices.isdigit() else [int(d) for d in devices.split(",") if d]
    return {
        "accelerator": "gpu" if args.device == "cuda" else args.device,
        "devices": devices,
        "num_nodes": args.num_nodes,
        "strategy": args.strategy,
        "precision": args.precision,
        "checkpoint_every": args.checkpoint_every,
    }


def micro_seed(seed: int, step: int, index: int = 0) -> int:
    """A 63-bit seed for micro-batch ``index`` of optimiser step ``step`` of a run seeded ``seed``."""
    return (int(seed) * 1_000_003 + int(step) * 65_537 + int(index) * 7_919 + 1) % (2**63 - 1)


def step_generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator seeded by ``(seed, step)`` only: the same global batch on every process."""
    import torch

    return torch.Generator(device=device).manual_seed(micro_seed(seed, step, 10**6))
