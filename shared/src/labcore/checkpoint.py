"""Atomic, resumable checkpoints in safetensors + JSON, and state-dict loading with clear errors.

A checkpoint is a directory ``<root>/step-00000100/`` holding ``model.safetensors``,
``optimizer.safetensors``, ``rng.safetensors`` and ``state.json``.  It is written under a
temporary name, every file fsync'ed, then renamed into place, and ``<root>/latest`` is
replaced atomically to point at it, so an interrupted save never leaves a half checkpoint
that :func:`latest_checkpoint` would pick up.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from labcore.rng import get_rng_state, set_rng_state

LATEST = "latest"
STEP_PREFIX = "step-"


class CheckpointError(RuntimeError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into (a ``ValueError`` too:
    the value passed, a file, is bad)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` by ``write(f)`` into a temporary file beside it, fsync, then rename: never half-written.

    An exception (or interrupt) inside ``write`` leaves any previous file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def full_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with FSDP2 shards (DTensors) gathered into full tensors. A collective: after a
    ``strategy="fsdp"`` run every process calls it (each runs the same command, so each saves)."""
    return {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in tensors.items()}


def _to_saveable(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, full (unsharded) tensors with no shared storage (safetensors refuses aliases)."""
    out, seen = {}, set()
    for k, v in full_tensors(tensors).items():
        t = v.detach().to("cpu").contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else None
        if key in seen:
            t = t.clone()
        elif key is not None:
            seen.add(key)
        out[k] = t
    return out


def _save_tensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    save_file(_to_saveable(tensors), str(path))
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing; the checkpoint is incomplete")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or truncated ({e}); delete its directory "
            f"{path.parent} and resume from an earlier checkpoint"
        ) from e


def _split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_split(rng: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": rng["torch"]}
    for i, s in enumerate(rng.get("cuda", [])):
        tensors[f"cuda/{i}"] = s
    np_state = rng["numpy"]
    meta = {
        "python": [rng["python"][0], list(rng["python"][1]), rng["python"][2]],
        "numpy": [np_state[0], np_state[1].tolist(), *(v.item() if hasattr(v, "item") else v for v in np_state[2:])],
    }
    return tensors, meta


def _rng_join(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    rng = {"python": meta["python"], "numpy": meta["numpy"], "torch": tensors["torch"]}
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda/")), key=lambda k: int(k[5:]))]
    if cuda:
        rng["cuda"] = cuda
    return rng


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    *,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    extra: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    save_rng: bool = True,
    keep: int | None = None,
) -> Path:
    """Atomically write the checkpoint of ``step`` under ``root`` and point ``latest`` at it.

    ``extra`` must be JSON-serialisable (config, metrics, data position); ``extra_tensors``
    (e.g. EMA weights) go to ``extra.safetensors``. ``keep`` prunes all but the newest ``keep``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{STEP_PREFIX}{int(step):08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    try:
        state: dict[str, Any] = {"step": int(step), "extra": dict(extra or {})}
        if model is not None:
            _save_tensors(model.state_dict(), tmp / "model.safetensors")
        if optimizer is not None:
            tensors, meta = _split_optimizer_state(optimizer.state_dict())
            _save_tensors(tensors, tmp / "optimizer.safetensors")
            state["optimizer"] = meta
        if extra_tensors:
            _save_tensors(extra_tensors, tmp / "extra.safetensors")
        if save_rng:
            tensors, meta = _rng_split(get_rng_state())
            _save_tensors(tensors, tmp / "rng.safetensors")
            state["rng"] = meta
        atomic_write_text(tmp / "state.json", json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / LATEST, final.name)
    if keep is not None:
        for old in sorted(root.glob(f"{STEP_PREFIX}*"))[:-keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest`` points at, or ``None`` if ``root`` holds none yet."""
    root = Path(root)
    pointer = root / LATEST
    if pointer.exists():
        candidate = root / pointer.read_text().strip()
        if (candidate / "state.json").exists():
            return candidate
    complete = [p for p in sorted(root.glob(f"{STEP_PREFIX}*")) if (p / "state.json").exists()]
    return complete[-1] if complete else None


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint directory (or a root holding ``latest``) into ``model``/``optimizer``.

    Returns ``{"step", "extra", "extra_tensors", "path"}``. Raises :class:`CheckpointError`
    naming missing/unexpected keys and shape mismatches.
    """
    path = Path(path)
    if not (path / "state.json").exists():
        found = latest_checkpoint(path) if path.is_dir() else None
        if found is None:
            raise CheckpointError(f"no checkpoint found at {path} (expected a directory with state.json)")
        path = found
    try:
        state = json.loads((path / "state.json").read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / 'state.json'} is corrupt ({e}); resume from an earlier checkpoint") from e
    if model is not None:
        load_state_dict_checked(model, _load_tensors(path / "model.safetensors", map_location), strict=strict)
    if optimizer is not None:
        if "optimizer" not in state:
            raise CheckpointError(f"{path} holds no optimizer state; pass optimizer=None to load weights only")
        tensors = _load_tensors(path / "optimizer.safetensors", map_location)
        optimizer.load_state_dict(_join_optimizer_state(tensors, state["optimizer"]))
    if restore_rng and "rng" in state:
        set_rng_state(_rng_join(_load_tensors(path / "rng.safetensors"), state["rng"]))
    extra_file = path / "extra.safetensors"
    extra_tensors = _load_tensors(extra_file, map_location) if extra_file.exists() else {}
    return {"step": state["step"], "extra": state["extra"], "extra_tensors": extra_tensors, "path": path}


def describe_mismatch(
    expected: Mapping[str, torch.Tensor | torch.Size], got: Mapping[str, torch.Tensor | torch.Size]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape mismatches) between two name→tensor-or-shape mappings."""

    def shape(v):
        return tuple(v.shape) if torch.is_tensor(v) else tuple(v)

    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = [
        f"{k}: expected {shape(expected[k])}, got {shape(got[k])}"
        for k in sorted(set(expected) & set(got))
        if shape(expected[k]) != shape(got[k])
    ]
    return missing, unexpected, shapes


def load_state_dict_checked(
    module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
) -> None:
    """``module.load_state_dict`` that reports every missing/unexpected key and shape mismatch."""
    missing, unexpected, shapes = describe_mismatch(module.state_dict(), state_dict)
    if shapes or (strict and (missing or unexpected)):

        def head(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" … (+{len(items) - 8} more)" if len(items) > 8 else "")

        parts = [f"state dict does not match {type(module).__name__}:"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {head(shapes)}")
        parts.append("was it saved from a model with another config?")
        raise CheckpointError("\n  ".join(parts))
    module.load_state_dict(state_dict, strict=strict)
