"""``save_pretrained``/``from_pretrained`` for detectors built from a dataclass config."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save

from labcore.checkpoint import atomic_write, atomic_write_text, load_state_dict_checked

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


class DataclassPretrained:
    """Mixin for an ``nn.Module`` whose ``__init__`` takes one dataclass ``config``.

    Writes ``config.json`` + ``model.safetensors`` (each atomically); loading rejects unknown config fields and reports
    missing/unexpected keys and shape mismatches. Fields named in ``tuple_fields`` come back as
    (nested) tuples, as JSON stores them as lists.
    """

    config_class: ClassVar[type]
    tuple_fields: ClassVar[tuple[str, ...]] = ()

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / CONFIG_NAME, json.dumps(dataclasses.asdict(self.config), indent=1))
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(directory / WEIGHTS_NAME, lambda f: f.write(save(tensors, metadata={"format": "pt"})))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        directory = Path(directory)
        if not (directory / CONFIG_NAME).exists() or not (directory / WEIGHTS_NAME).exists():
            raise FileNotFoundError(f"{directory} needs {CONFIG_NAME} and {WEIGHTS_NAME} (written by save_pretrained)")
        raw = json.loads((directory / CONFIG_NAME).read_text())
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls.config_class)}
        if unknown:
            raise ValueError(f"{directory / CONFIG_NAME} has unknown fields {sorted(unknown)}")
        raw.update({k: _as_tuple(raw[k]) for k in cls.tuple_fields if k in raw})
        model = cls(cls.config_class(**raw))
        load_state_dict_checked(model, load_file(str(directory / WEIGHTS_NAME), device=map_location))
        return model


def read_mmcv_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> tuple[dict, dict]:
    """``(state_dict, meta)`` of an mmcv/mmdet/mmrotate ``.pth`` (``{"state_dict": …, "meta": …}`` or a bare
    state dict); a DDP ``module.`` prefix is stripped. Loads with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file or objects outside the safe unpickler's allow-list
        raise ValueError(f"could not read {path} as a PyTorch checkpoint ({e})") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds a {type(raw).__name__}, not a state dict or a dict with 'state_dict'")
    state = raw.get("state_dict", raw)
    if not state or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ValueError(f"{path}: 'state_dict' must map parameter names to tensors")
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    return {k.removeprefix("module."): v for k, v in state.items()}, meta
