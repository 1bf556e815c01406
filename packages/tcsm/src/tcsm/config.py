"""transformers-style configuration of the TCSM denoiser."""

from __future__ import annotations

from transformers import PretrainedConfig

PROCESSES = ("masked", "uniform")


class TCSMConfig(PretrainedConfig):
    """Bidirectional Transformer denoiser ``p_θ(x_1 | x_t)`` over ``vocab_size`` clean symbols.

    The masked process adds one input-only token (id ``vocab_size``); outputs are always over the
    ``vocab_size`` clean symbols. ``time_conditioning`` adds an embedding of ``t`` (needed by the
    uniform process; the masked process is time-free, Ou et al. 2024).
    """

    model_type = "tcsm_denoiser"

    def __init__(
        self,
        vocab_size: int = 27,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int | None = None,
        max_position_embeddings: int = 256,
        process: str = "masked",
        schedule: str = "linear",
        time_conditioning: bool | None = None,
        dropout: float = 0.0,
        **kwargs,
    ):
        if process not in PROCESSES:
            raise ValueError(f"process must be one of {PROCESSES}, got {process!r}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} must be divisible by num_attention_heads {num_attention_heads}"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size or 4 * hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.process = process
        self.schedule = schedule
        self.time_conditioning = (process == "uniform") if time_conditioning is None else bool(time_conditioning)
        self.dropout = dropout
        super().__init__(**kwargs)

    @property
    def mask_token_id(self) -> int:
        return self.vocab_size

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size + (1 if self.process == "masked" else 0)
