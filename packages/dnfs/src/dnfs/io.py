"""Build rate networks by name; save and load them through labcore's save/load contract (:mod:`labcore.hub`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer

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
    """``model.save_pretrained(directory)`` (labcore's contract: tagged ``config.json``, ``model.safetensors``,
    model card); returns ``directory``."""
    model.save_pretrained(directory)
    return Path(directory)


def load_rate_model(directory: str | Path, adjacency: torch.Tensor | None = None) -> nn.Module:
    """Load a rate network of any registered class, told by its ``config.json`` (tag, or the ``class`` key of older
    saves); strict: errors name missing files, keys and shapes. The graph Transformer needs ``adjacency``."""
    from labcore.hub import load_tagged

    kwargs = {} if adjacency is None else {"adjacency": adjacency}
    try:
        return load_tagged(directory, [cls for cls, _ in REGISTRY.values()], **kwargs)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; train one with `python -m dnfs train`") from e
