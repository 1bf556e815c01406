"""STARFlow configuration (a transformers ``PretrainedConfig``; named presets: :mod:`starflow.presets`).

Field names follow the reference training arguments (``channels``, ``layers_per_block``,
``txt_size``, ``noise_std``, ``soft_clip``, ...). The model works on ``(channel_size, img_size,
img_size)`` inputs: latents of the autoencoder, or pixels when ``vae`` is ``None``.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class StarFlowConfig(PretrainedConfig):
    """Deep-shallow layout ``l(N)-d`` (§3.2): ``layers_per_block[-1]`` is the deep block.

    ``txt_dim`` is the width of the conditioning sequence (T5 hidden size, or
    ``num_classes + 1`` for one-hot class labels) and ``txt_size`` its length.
    """

    model_type = "starflow"

    def __init__(
        self,
        channel_size: int = 4,
        img_size: int = 32,
        patch_size: int = 1,
        channels: int = 256,
        layers_per_block: list[int] | tuple[int, ...] = (2, 2, 8),
        head_dim: int = 64,
        expansion: float = 4.0,
        txt_size: int = 0,
        txt_dim: int = 0,
        num_classes: int = 0,
        soft_clip: float = 4.0,
        use_final_norm: bool = True,
        rope_theta: float = 10000.0,
        noise_std: float = 0.3,
        drop_label: float = 0.1,
        latent_norm_regularization: float = 1e-4,
        text_encoder: str | None = None,
        vae: str | None = None,
        **kwargs,
    ):
        self.channel_size = channel_size
        self.img_size = img_size
        self.patch_size = patch_size
        self.channels = channels
        self.layers_per_block = list(layers_per_block)
        self.head_dim = head_dim
        self.expansion = expansion
        if num_classes and not txt_dim:
            txt_size, txt_dim = 1, num_classes + 1  # one-hot labels, the reference's label embedder
        self.txt_size = txt_size
        self.txt_dim = txt_dim
        self.num_classes = num_classes
        self.soft_clip = soft_clip
        self.use_final_norm = use_final_norm
        self.rope_theta = rope_theta
        self.noise_std = noise_std
        self.drop_label = drop_label
        self.latent_norm_regularization = latent_norm_regularization
        self.text_encoder = text_encoder
        self.vae = vae
        super().__init__(**kwargs)
        self.check_fields()

    def check_fields(self) -> None:
        """Raise a ``ValueError`` naming the offending field."""
        if self.channels % self.head_dim:
            raise ValueError(f"channels ({self.channels}) must be a multiple of head_dim ({self.head_dim})")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size ({self.img_size}) must be divisible by patch_size ({self.patch_size})")
        if not self.layers_per_block or min(self.layers_per_block) < 1:
            raise ValueError(f"layers_per_block needs positive entries, got {self.layers_per_block}")
        if self.head_dim % 4 or (self.txt_size and self.head_dim // 2 <= 8):
            raise ValueError(
                f"head_dim {self.head_dim} does not fit 2-D/3-D RoPE (needs a multiple of 4, and > 16 with a condition)"
            )
        if bool(self.txt_size) != bool(self.txt_dim):
            raise ValueError("txt_size and txt_dim must both be zero (unconditional) or both positive")

    @property
    def seq_len(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def token_dim(self) -> int:
        return self.channel_size * self.patch_size**2

    @property
    def conditional(self) -> bool:
        return self.txt_dim > 0
