"""Load the official simulation checkpoints (torchtune Llama-3, Meta key layout) into ``LlamaForCausalLM``.

The released ``ckpt/{multiplication,reverse_multiplication}_simulation_{l2r,r2l}/checkpoint.pt`` files
are read by torchtune's ``FullModelMetaCheckpointer`` with the ``llama3_2b`` builder of
``simulation/model.py``: a plain state dict with Meta names (``tok_embeddings``, ``layers.i.attention.wq``,
``feed_forward.w1``, ...). Meta/torchtune rotate interleaved pairs ``(2i, 2i+1)`` of each head while
Hugging Face rotates halves ``(i, i + d/2)``, so query and key rows are permuted on the way in.
They pair with the Llama-3 tokenizer (``meta-llama/Meta-Llama-3-8B``), which must be obtained separately.
"""

from __future__ import annotations

import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from r2l_lm.model import DIRECTION_KEY
from r2l_lm.reversal import Direction, check_direction


def llama3_2b_config(**overrides) -> LlamaConfig:
    """The official simulation model (``simulation/model.py: llama3_2b``) as a ``LlamaConfig``."""
    kw = dict(
        vocab_size=128_256,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=8,
        hidden_size=2048,
        intermediate_size=7168,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=500_000.0,
        bos_token_id=128_000,
        eos_token_id=128_001,
        tie_word_embeddings=False,
    )
    kw.update(overrides)
    return LlamaConfig(**kw)


def _meta_rows_to_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows from interleaved pairs (Meta RoPE) to halves (HF ``rotate_half``)."""
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def meta_to_hf_state_dict(state: dict[str, torch.Tensor], config: LlamaConfig) -> dict[str, torch.Tensor]:
    """Rename and permute a Meta-layout Llama state dict for ``LlamaForCausalLM``."""
    h, kv = config.num_attention_heads, config.num_key_value_heads
    top = {
        "tok_embeddings.weight": "model.embed_tokens.weight",
        "norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_layer = {
        "attention.wq.weight": ("self_attn.q_proj.weight", h),
        "attention.wk.weight": ("self_attn.k_proj.weight", kv),
        "attention.wv.weight": ("self_attn.v_proj.weight", None),
        "attention.wo.weight": ("self_attn.o_proj.weight", None),
        "attention_norm.weight": ("input_layernorm.weight", None),
        "ffn_norm.weight": ("post_attention_layernorm.weight", None),
        "feed_forward.w1.weight": ("mlp.gate_proj.weight", None),
        "feed_forward.w2.weight": ("mlp.down_proj.weight", None),
        "feed_forward.w3.weight": ("mlp.up_proj.weight", None),
    }
    out, unknown = {}, []
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        parts = key.split(".", 2)
        if len(parts) == 3 and parts[0] == "layers" and parts[2] in per_layer:
            name, heads = per_layer[parts[2]]
            out[f"model.layers.{parts[1]}.{name}"] = _meta_rows_to_hf(value, heads) if heads else value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"not a Meta-layout Llama checkpoint: unexpected keys {unknown[:5]}")
    if "lm_head.weight" not in out and "model.embed_tokens.weight" in out:
        out["lm_head.weight"] = out["model.embed_tokens.weight"]  # tied output projection
    return out


def load_official_checkpoint(
    path: str | os.PathLike, direction: Direction, config: LlamaConfig | None = None, dtype: torch.dtype | None = None
) -> LlamaForCausalLM:
    """An official simulation ``checkpoint.pt`` as a ``LlamaForCausalLM`` that records its ``direction``.

    ``direction`` is ``r2l`` for the ``*_r2l`` checkpoints (wrap with :class:`r2l_lm.R2LModel`).
    """
    direction = check_direction(direction)
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    config = config or llama3_2b_config()
    hf = meta_to_hf_state_dict(state, config)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(hf, strict=True, assign=True)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # its buffers are not in the checkpoint
    setattr(model.config, DIRECTION_KEY, direction)
    return model.to(dtype) if dtype is not None else model
