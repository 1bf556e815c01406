"""transformers-style configuration for TarFlowLM (named presets: :mod:`tarflow_lm.presets`)."""

from __future__ import annotations

from transformers import PretrainedConfig

LAYER_TYPE_NAMES = ("affine", "mix1", "mixd", "mixd_tied")


class TarFlowLMConfig(PretrainedConfig):
    """Hyper-parameters of the VAE bridge and the autoregressive-flow prior.

    ``layer_types`` / ``num_mixtures`` are per flow layer (the paper varies the mixture count per
    layer; ``mixd_tied`` uses the vocabulary as its components and ignores its count, ``affine`` too);
    ``layers_per_block`` is the Transformer depth inside each flow layer.
    """

    model_type = "tarflow_lm"

    def __init__(
        self,
        vocab_size: int = 27,
        latent_dim: int = 8,
        max_seq_len: int = 64,
        patch_size: int = 1,
        layer_types: list[str] | None = None,
        num_mixtures: list[int] | int = 8,
        hidden_size: int = 64,
        layers_per_block: int = 2,
        num_heads: int = 4,
        init_log_sigma: float = -1.0,
        channel_mixing: bool = True,
        **kwargs,
    ):
        layer_types = list(layer_types or ["mix1", "affine"])
        bad = [t for t in layer_types if t not in LAYER_TYPE_NAMES]
        if bad:
            raise ValueError(f"unknown layer types {bad}; choose from {LAYER_TYPE_NAMES}")
        if isinstance(num_mixtures, int):
            num_mixtures = [num_mixtures] * len(layer_types)
        if len(num_mixtures) != len(layer_types):
            raise ValueError(f"num_mixtures has {len(num_mixtures)} entries for {len(layer_types)} layers")
        if "mixd_tied" in layer_types and patch_size != 1:
            raise ValueError("mixd_tied layers tie one mixture component per token: use patch_size=1")
        if max_seq_len % patch_size:
            raise ValueError(f"max_seq_len {max_seq_len} must be divisible by patch_size {patch_size}")
        self.vocab_size, self.latent_dim, self.max_seq_len = vocab_size, latent_dim, max_seq_len
        self.patch_size, self.layer_types, self.num_mixtures = patch_size, layer_types, list(num_mixtures)
        self.hidden_size, self.layers_per_block, self.num_heads = hidden_size, layers_per_block, num_heads
        self.init_log_sigma, self.channel_mixing = init_log_sigma, channel_mixing
        super().__init__(**kwargs)
