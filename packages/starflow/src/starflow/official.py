"""Loading checkpoints of the reference release (apple/ml-starflow, ``transformer_flow.Model``).

Parameter names match ours one to one. The reference also stores buffers it no longer uses
(``blocks.*.attn_mask``, ``var``, ``feat_rope.freqs_cos/sin``); they are checked for shape and
dropped. Its patches are laid out ``(p1 p2 c)`` while :func:`labcore.flows.patchify` gives
``(c p1 p2)``: for ``patch_size > 1`` the token-facing weights are permuted accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from labcore.checkpoint import CheckpointError, load_state_dict_checked
from starflow.config import StarFlowConfig


def deprecated_buffer_shapes(config: StarFlowConfig) -> dict[str, tuple[int, ...]]:
    """Unused buffers of the reference layout, by name, with their shapes."""
    n = config.seq_len + config.txt_size
    shapes: dict[str, tuple[int, ...]] = {f"blocks.{i}.attn_mask": (n, n) for i in range(len(config.layers_per_block))}
    shapes["var"] = (config.seq_len, config.token_dim)
    rope = (config.txt_size + config.seq_len, config.head_dim)
    shapes["feat_rope.freqs_cos"] = rope
    shapes["feat_rope.freqs_sin"] = rope
    return shapes


def _patch_order(config: StarFlowConfig) -> torch.Tensor:
    """``ours[k] = reference[order[k]]`` for one token's features."""
    p, c = config.patch_size, config.channel_size
    ch, p1, p2 = torch.meshgrid(torch.arange(c), torch.arange(p), torch.arange(p), indexing="ij")
    return ((p1 * p + p2) * c + ch).reshape(-1)


def convert_official_state_dict(state: Mapping[str, torch.Tensor], config: StarFlowConfig) -> dict[str, torch.Tensor]:
    """Reference state dict → ours (drop deprecated buffers, reorder patch features)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    out = {}
    for name, value in state.items():
        expected = deprecated_buffer_shapes(config).get(name)
        if expected is not None:
            if tuple(value.shape) != expected:
                raise CheckpointError(f"{name}: expected {expected}, got {tuple(value.shape)}; is the config right?")
            continue
        if name.startswith("learnable_self_denoiser."):
            raise CheckpointError("learnable self-denoiser weights are not supported; the score denoiser is used")
        out[name] = value
    if config.patch_size > 1:
        order = _patch_order(config)
        for name, value in out.items():
            if name.endswith("proj_in.weight"):
                out[name] = value[:, order]
            elif name.endswith("sos_embed"):
                out[name] = value[..., order]
            elif name.endswith("proj_out.weight") or name.endswith("proj_out.bias"):
                out[name] = torch.cat([half[order] for half in value.chunk(2, 0)])
    return out


# released checkpoints (file stem) → the preset that reproduces their training config
OFFICIAL_CHECKPOINTS = {"starflow_3B_t2i_256x256": "3B-t2i-256"}


def official_config(path: str) -> StarFlowConfig:
    """The config of a released checkpoint, recognised by its file name."""
    from starflow.presets import PRESETS

    stem = Path(path).name.split(".")[0]
    if stem not in OFFICIAL_CHECKPOINTS:
        raise ValueError(
            f"{Path(path).name!r} is not a known release ({sorted(OFFICIAL_CHECKPOINTS)}); "
            "pass config= (a StarFlowConfig matching the checkpoint's training arguments)"
        )
    return PRESETS[OFFICIAL_CHECKPOINTS[stem]]()


def load_official_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load a reference state dict into ``model`` (strict; errors name every mismatch)."""
    load_state_dict_checked(model, convert_official_state_dict(state, model.config))
