"""Reading mmcv/mmdet/mmrotate checkpoints; ``save_pretrained``/``from_pretrained`` come from
:class:`labcore.hub.HubMixin` (the collection's one save/load contract)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from labcore.hub import read_state_file


def read_mmcv_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> tuple[dict, dict]:
    """``(state_dict, meta)`` of an mmcv/mmdet/mmrotate ``.pth`` (``{"state_dict": …, "meta": …}`` or a bare
    state dict); a DDP ``module.`` prefix is stripped. Loads with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    raw = read_state_file(path, map_location)
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds a {type(raw).__name__}, not a state dict or a dict with 'state_dict'")
    state = raw.get("state_dict", raw)
    if not state or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ValueError(f"{path}: 'state_dict' must map parameter names to tensors")
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    return {k.removeprefix("module."): v for k, v in state.items()}, meta
