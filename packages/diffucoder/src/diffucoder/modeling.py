"""``DreamModel``: a Qwen2-layout transformer with bidirectional attention (Dream / DiffuCoder).

Parameter names match the official checkpoints (``model.embed_tokens``, ``model.layers.{i}.self_attn.
{q,k,v}_proj`` with bias, ``o_proj``, SwiGLU ``mlp.{gate,up,down}_proj``, RMSNorms, ``model.norm`` and an
untied ``lm_head``), so ``DreamModel.from_pretrained(<official dir>)`` loads with no missing or unexpected
keys. Logits follow the *shifted* convention of Dream: the logit row at position ``i`` predicts token
``i + 1`` (samplers and losses shift by one, see :func:`shift_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, PreTrainedModel
from transformers.activations import ACT2FN

from diffucoder.config import DreamConfig
from labcore.hub import PreTrainedMixin, looks_local, read_config, resolve_directory

KVCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]
_SDPA_GQA = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 5)  # SDPA's enable_gqa


@dataclass
class DreamOutput:
    """Model output (a plain dataclass, stable across transformers versions)."""

    logits: torch.Tensor | None = None
    past_key_values: KVCache | None = None
    hidden_states: torch.Tensor | None = None


def shift_logits(logits: torch.Tensor) -> torch.Tensor:
    """Dream's convention: position ``i`` is predicted from hidden state ``i − 1`` (position 0 reuses its own)."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


class DreamRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


class DreamRotaryEmbedding(nn.Module):
    """Plain RoPE (no scaling), cos/sin in float32 from explicit position ids.

    The inverse frequencies are recomputed on the fly (no buffer), so no loading path can leave them
    uninitialised.
    """

    def __init__(self, config: DreamConfig):
        super().__init__()
        self.dim = config.hidden_size // config.num_attention_heads
        self.base = config.rope_theta

    @torch.no_grad()
    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        exponent = torch.arange(0, self.dim, 2, dtype=torch.float32, device=position_ids.device) / self.dim
        inv_freq = 1.0 / (self.base**exponent)  # as in Qwen2/Dream
        freqs = position_ids[..., None].float() * inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


class DreamMLP(nn.Module):
    def __init__(self, config: DreamConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DreamAttention(nn.Module):
    """Bidirectional (non-causal) grouped-query SDPA attention with an optional prefix KV cache."""

    def __init__(self, config: DreamConfig):
        super().__init__()
        self.num_heads, self.num_kv = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout = config.attention_dropout
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv * self.head_dim, bias=True)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, past=None, future=None, write_at=None):
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.num_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.num_kv, self.head_dim).transpose(1, 2)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if write_at is not None:  # ``past`` holds every position: overwrite this slice in place, attend to all
            past[0][:, :, write_at : write_at + n] = k
            past[1][:, :, write_at : write_at + n] = v
            k, v = past
        elif past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        present = (k, v)
        if future is not None:  # keys/values of later positions (dual cache)
            k, v = torch.cat([k, future[0]], dim=2), torch.cat([v, future[1]], dim=2)
        gqa = {}
        if self.num_kv != self.num_heads:
            if _SDPA_GQA:  # grouped heads inside SDPA, no copies of k/v
                gqa["enable_gqa"] = True
            else:
                groups = self.num_heads // self.num_kv
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=False, **gqa
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1)), present


class DreamDecoderLayer(nn.Module):
    def __init__(self, config: DreamConfig):
        super().__init__()
        self.self_attn = DreamAttention(config)
        self.mlp = DreamMLP(config)
        self.input_layernorm = DreamRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = DreamRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, past=None, future=None, write_at=None):
        h, present = self.self_attn(self.input_layernorm(x), cos, sin, mask, past, future, write_at)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


class DreamPreTrainedModel(PreTrainedModel):
    config_class = DreamConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DreamDecoderLayer"]
    _supports_sdpa = True
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]  # a derived buffer some exports include

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(0.0, std)
        elif isinstance(module, DreamRMSNorm):
            module.weight.data.fill_(1.0)


def _hub_kwargs(kwargs: dict) -> dict:
    keys = ("cache_dir", "local_files_only", "revision", "subfolder", "token", "trust_remote_code")
    return {k: kwargs[k] for k in keys if k in kwargs}


def _attention_bias(attention_mask, batch: int, q_len: int, k_len: int, dtype, device) -> torch.Tensor | None:
    """Turn a 2-D key-padding mask (1 = attend) or a 4-D boolean mask into an SDPA mask; ``None`` = full."""
    if attention_mask is None or isinstance(attention_mask, str):
        if isinstance(attention_mask, str) and attention_mask != "full":
            raise ValueError(f"attention_mask string must be 'full', got {attention_mask!r}")
        return None
    if attention_mask.dim() == 2:
        if attention_mask.shape != (batch, k_len):
            raise ValueError(
                f"2-D attention_mask must be (batch, keys)=({batch}, {k_len}), got {tuple(attention_mask.shape)}"
            )
        if bool(attention_mask.all()):
            return None
        return attention_mask.bool()[:, None, None, :].to(device)
    if attention_mask.dim() == 4:
        return attention_mask.to(device) if attention_mask.dtype == torch.bool else attention_mask.to(device, dtype)
    raise ValueError(f"attention_mask must be 2-D (batch, seq) or 4-D (batch, 1, q, k), got {attention_mask.dim()}-D")


class DreamBaseModel(DreamPreTrainedModel):
    def __init__(self, config: DreamConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DreamDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = DreamRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = DreamRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=False,
        future_key_values=None,
        cache_position=None,
    ):
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"input_ids must be a 2-D integer tensor, got {tuple(input_ids.shape)} {input_ids.dtype}")
        b, n = input_ids.shape
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}), got [{int(input_ids.min())}, "
                f"{int(input_ids.max())}]: was the prompt tokenised with this model's tokenizer?"
            )
        past_len = past_key_values[0][0].shape[2] if past_key_values else 0
        future_len = future_key_values[0][0].shape[2] if future_key_values else 0
        if cache_position is not None:  # full-length buffers, written at [cache_position, cache_position + n)
            if not past_key_values or future_key_values or not 0 <= cache_position <= past_len - n:
                raise ValueError(
                    f"cache_position={cache_position} needs full-length past_key_values (length {past_len}) "
                    f"holding the {n} new positions, and no future_key_values"
                )
            if position_ids is None:
                position_ids = torch.arange(cache_position, cache_position + n, device=input_ids.device).expand(b, n)
            past_len, n_keys = cache_position, past_len
        else:
            n_keys = past_len + n + future_len
        if past_len + n > self.config.max_position_embeddings and position_ids is None:
            raise ValueError(
                f"sequence of {past_len + n} tokens exceeds max_position_embeddings="
                f"{self.config.max_position_embeddings}"
            )
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + n, device=input_ids.device).expand(b, n)
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary_emb(position_ids, x.dtype)
        mask = _attention_bias(attention_mask, b, n, n_keys, x.dtype, x.device)
        presents = []
        for i, layer in enumerate(self.layers):
            past = past_key_values[i] if past_key_values else None
            future = future_key_values[i] if future_key_values else None
            if self.gradient_checkpointing and self.training:
                x, present = self._gradient_checkpointing_func(
                    layer.__call__, x, cos, sin, mask, past, future, cache_position
                )
            else:
                x, present = layer(x, cos, sin, mask, past, future, cache_position)
            presents.append(present)
        return self.norm(x), (tuple(presents) if use_cache else None)


class DreamModel(PreTrainedMixin, DreamPreTrainedModel):
    """Dream/DiffuCoder masked-diffusion LM; ``logits[:, i]`` predicts token ``i + 1`` (shifted convention)."""

    paper_url = "https://arxiv.org/abs/2506.20639"
    repo_url = "https://github.com/apple/ml-diffucoder"
    hub_max_parameters = 20_000_000_000  # the official checkpoints have 7.6B

    # target -> source, the form transformers 5 reads; iterating it yields the target names, the list form that
    # transformers 4 reads. Only used when ``tie_word_embeddings=True`` (official checkpoints are untied).
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: DreamConfig):
        super().__init__(config)
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()
        if getattr(self, "generation_config", None) is None:  # trainers (TRL) read special-token ids from it
            ids = {k: getattr(config, k, None) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
            self.generation_config = GenerationConfig(**ids)

    @classmethod
    def from_pretrained(cls, *args, strict: bool = True, convert_causal: bool = False, **kwargs):
        """``PreTrainedModel.from_pretrained`` under labcore's save/load contract (``labcore.hub.PreTrainedMixin``).

        transformers only warns and leaves missing weights randomly initialised; a checkpoint that is not a
        Dream/DiffuCoder one (other layout, foreign config, truncated shards) is an error here unless ``strict=False``.

        A causal checkpoint (``model_type`` other than "Dream", e.g. Qwen2, whose weights have the same names)
        is refused: its logits are next-token predictions of a causal model, not a denoiser's. Dream was
        initialised from Qwen2.5 and then trained as a diffusion model; to start such a run on purpose pass
        ``convert_causal=True`` (keeps the weights, switches to bidirectional attention, sets
        ``model_type="Dream"``; ``mask_token_id`` must then be given unless the config has one).
        """
        if kwargs.get("config") is None and args:
            from transformers import PretrainedConfig

            if looks_local(args[0]):  # a local folder: clear errors for typos and missing/corrupt config.json
                cfg_dict = read_config(resolve_directory(args[0]))
            else:
                cfg_dict, _ = PretrainedConfig.get_config_dict(args[0], **_hub_kwargs(kwargs))
            kind = cfg_dict.get("model_type")
            if kind != DreamConfig.model_type:
                if not convert_causal:
                    raise ValueError(
                        f"{args[0]} is a {kind!r} checkpoint (model_type in its config.json), not a Dream/DiffuCoder "
                        "one: loading a causal LM as a diffusion denoiser gives meaningless samples. "
                        "Pass convert_causal=True to start from its weights on purpose"
                    )
                fields = {k: v for k, v in cfg_dict.items() if k not in ("model_type", "architectures", "auto_map")}
                if "mask_token_id" in kwargs:
                    fields["mask_token_id"] = kwargs.pop("mask_token_id")
                if fields.get("mask_token_id") is None:
                    raise ValueError("convert_causal=True needs mask_token_id=<id of <|mask|>> for the new model")
                kwargs["config"] = DreamConfig(**fields)
        return super().from_pretrained(*args, strict=strict, **kwargs)

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | str | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        future_key_values: KVCache | None = None,
        num_logits_to_keep: int = 0,
        output_hidden_states: bool = False,
        cache_position: int | None = None,
    ) -> DreamOutput:
        """``cache_position``: ``past_key_values`` are full-length buffers; the keys/values of ``input_ids``
        overwrite positions ``[cache_position, cache_position + len)`` in place and every position is attended
        (Fast-dLLM's dual cache without copying the cache each step)."""
        hidden, presents = self.model(
            input_ids, attention_mask, position_ids, past_key_values, use_cache, future_key_values, cache_position
        )
        logits = self.lm_head(hidden[:, -num_logits_to_keep:] if num_logits_to_keep else hidden)
        return DreamOutput(
            logits=logits, past_key_values=presents, hidden_states=hidden if output_hidden_states else None
        )

    def diffusion_generate(self, inputs: torch.Tensor, **kwargs):
        """Dream's masked-diffusion sampler; see :func:`diffucoder.generation.diffusion_generate`."""
        from diffucoder.generation import diffusion_generate

        return diffusion_generate(self, inputs, **kwargs)


def _register_auto_classes() -> None:
    """Let ``AutoConfig``/``AutoModel*.from_pretrained`` build Dream folders (importing this module registers)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    AutoConfig.register("Dream", DreamConfig, exist_ok=True)
    for auto in (AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM):  # not causal, but TRL builds models this way
        auto.register(DreamConfig, DreamModel, exist_ok=True)


_register_auto_classes()
