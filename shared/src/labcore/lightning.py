"""Lightning integration (needs ``lightning``): checkpoint files written atomically."""

from __future__ import annotations

from typing import Any

import torch

from labcore.checkpoint import atomic_write

try:
    from lightning.pytorch.plugins.io import TorchCheckpointIO
except ImportError as err:  # pragma: no cover - exercised only without lightning
    raise ImportError("labcore.lightning needs Lightning: pip install 'lightning>=2.2'") from err


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file, fsync'ed, then renamed: never half-written.

    Use as ``Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_write(path, lambda f: torch.save(checkpoint, f))
