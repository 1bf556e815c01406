"""Save and load rate networks as ``config.json`` + ``model.safetensors``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer

MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
REGISTRY = {
    "LocallyEquivariantTransformer": (LocallyEquivariantTransformer, LETransformerConfig),
    "LocallyEquivariantMLP": (LocallyEquivariantMLP, LEMLPConfig),
    "LocallyEquivariantGraphTransformer": (LocallyEquivariantGraphTransformer, LEGraphConfig),
}


def build_rate_model(kind: str, config: dict, adjacency: torch.Tensor | None = None) -> nn.Module:
    """Instantiate a registered rate network from its class name and config fields."""
    if kind not in REGISTRY:
        raise ValueError(f"unknown rate model {kind!r}; choose one of {sorted(REGISTRY)}")
    cls, cfg_cls = REGISTRY[kind]
    cfg = cfg_cls(**config)
    if cls is LocallyEquivariantGraphTransformer:
        if adjacency is None:
            raise ValueError("the graph Transformer needs the graph: pass adjacency=")
        return cls(cfg, adjacency)
    return cls(cfg)


def lattice_rate_model(
    kind: str,
    dim: int,
    num_states: int,
    hidden_dim: int,
    head_dim: int = 16,
    num_blocks: int = 3,
    layers_per_block: int = 1,
) -> nn.Module:
    """The rate network the CLI and the benchmarks train: ``"transformer"`` (LE Transformer) or ``"mlp"`` (LE MLP;
    it ignores the Transformer's ``head_dim``/``num_blocks``/``layers_per_block``)."""
    if kind == "transformer":
        cfg = {
            "data_dim": dim,
            "vocab_size": num_states,
            "hidden_dim": hidden_dim,
            "head_dim": head_dim,
            "num_blocks": num_blocks,
            "layers_per_block": layers_per_block,
        }
        return build_rate_model("LocallyEquivariantTransformer", cfg)
    if kind == "mlp":
        return build_rate_model(
            "LocallyEquivariantMLP", {"data_dim": dim, "vocab_size": num_states, "hidden_dim": hidden_dim}
        )
    raise ValueError(f"unknown rate model kind {kind!r}; use 'transformer' or 'mlp'")


def save_rate_model(model: nn.Module, directory: str | Path) -> Path:
    """Write ``config.json`` (with the class name) and ``model.safetensors``, each atomically."""
    from labcore.checkpoint import atomic_write, atomic_write_text

    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(directory / MODEL_FILE, lambda f: f.write(save(state)))
    config = {"class": type(model).__name__, **asdict(model.config)}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=1))
    return directory


def load_rate_model(directory: str | Path, adjacency: torch.Tensor | None = None) -> nn.Module:
    """Rebuild a network saved by :func:`save_rate_model`; errors name missing files, keys and shapes."""
    from labcore.checkpoint import load_state_dict_checked

    directory = Path(directory)
    if not (directory / CONFIG_FILE).exists():
        raise FileNotFoundError(
            f"{directory} holds no saved rate model ({CONFIG_FILE} missing); train one with `python -m dnfs train`"
        )
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{directory / CONFIG_FILE} is corrupt ({e})") from e
    model = build_rate_model(config.pop("class", ""), config, adjacency)
    try:
        state = load_file(str(directory / MODEL_FILE))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{directory / MODEL_FILE} is missing or corrupt ({e}); re-save the model") from e
    load_state_dict_checked(model, state)
    return model
