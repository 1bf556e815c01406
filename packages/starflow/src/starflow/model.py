"""The STARFlow model: N autoregressive flow blocks in the deep-shallow layout ``l(N)-d`` (§3.2).

``blocks[0 .. N-2]`` are shallow (nearest the data), ``blocks[-1]`` is the deep block nearest the
noise; it alone sees the condition and is sampled first. Blocks alternate token order, the deep
block reading raster order (the reference's ``seq_order: L2R``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from labcore.flows import at_least_fp32, patchify, score_denoise, unpatchify
from labcore.hub import PreTrainedMixin, read_state_file
from labcore.validate import check_finite
from starflow.config import StarFlowConfig
from starflow.flow import JacobiOptions, MetaBlock


@dataclass
class FlowOutput:
    z: torch.Tensor  # (B, T, D) tokens of the base Gaussian
    logdet: torch.Tensor  # (B,) total log|det| of the map x → z
    intermediates: list[torch.Tensor]  # outputs of the shallow blocks (latent-norm penalty)


class StarFlow(PreTrainedMixin, PreTrainedModel):
    """STARFlow: autoregressive flow blocks in the deep-shallow layout over image (or latent) patches."""

    paper_url = "https://arxiv.org/abs/2506.06276"
    repo_url = "https://github.com/apple/ml-starflow"
    config_class = StarFlowConfig
    main_input_name = "x"
    base_model_prefix = "starflow"

    def __init__(self, config: StarFlowConfig):
        super().__init__(config)
        n = len(config.layers_per_block)
        grid = config.img_size // config.patch_size
        self.blocks = nn.ModuleList(
            MetaBlock(
                config.token_dim,
                config.channels,
                layers,
                config.head_dim,
                grid,
                config.expansion,
                txt_dim=config.txt_dim if i == n - 1 else 0,
                text_axis=config.txt_size > 0,
                flip=i % 2 == 0,
                soft_clip=config.soft_clip,
                use_final_norm=config.use_final_norm,
                rope_theta=config.rope_theta,
            )
            for i, layers in enumerate(config.layers_per_block)
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:  # modules initialise themselves
        return

    # -- shapes ---------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        c = self.config
        return (c.channel_size, c.img_size, c.img_size)

    def tokens(self, x: torch.Tensor, name: str = "latents x") -> torch.Tensor:
        """Patch tokens of latents (or pixels) ``x``; refuses wrong shapes, integer dtypes and NaN/inf."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected latents of shape (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}; "
                "encode images with the autoencoder this model was trained with (starflow.LatentAutoencoder)"
            )
        if not x.dtype.is_floating_point:
            raise ValueError(
                f"expected float latents (or pixels in [-1, 1]), got {x.dtype}; convert 8-bit images "
                "with x.float() / 127.5 - 1"
            )
        check_finite(x, name)
        return patchify(x, self.config.patch_size)

    def image(self, tokens: torch.Tensor) -> torch.Tensor:
        c = self.config
        return unpatchify(tokens, c.patch_size, (c.img_size, c.img_size))

    # -- density --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> FlowOutput:
        """Map (noisy) latents to the base Gaussian through every block."""
        h = self.tokens(x)
        logdet = h.new_zeros(h.shape[0], dtype=at_least_fp32(h).dtype)
        inter = []
        for i, block in enumerate(self.blocks):
            h, ld = block(h, y if i == len(self.blocks) - 1 else None)
            logdet = logdet + ld
            if i < len(self.blocks) - 1:
                inter.append(h)
        return FlowOutput(h, logdet, inter)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact per-example ``log p(x)`` in nats (change of variables, standard normal prior)."""
        out = self(x, y)
        z = at_least_fp32(out.z).flatten(1)
        return -0.5 * (z.square() + math.log(2 * math.pi)).sum(1) + out.logdet

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-dimension NLL (the reference's ``0.5·z² − log-det`` mean) plus the latent-norm penalty (§3.1)."""
        out = self(x, y)
        dims = out.z[0].numel()
        loss_z = 0.5 * at_least_fp32(out.z).square().flatten(1).mean(1).mean()
        loss_logdet = -(out.logdet / dims).mean()
        # the reference's train.py sums mean(h²) over the patchified input and every shallow block's output
        # (the input term is constant; it keeps the reported loss equal to the reference's). Patchifying only
        # reorders elements, so the input term is mean(x²) without patchifying x a second time.
        penalty = sum((at_least_fp32(h).square().mean() for h in out.intermediates), at_least_fp32(x).square().mean())
        loss = loss_z + loss_logdet + self.config.latent_norm_regularization * penalty
        return {"loss": loss, "loss_z": loss_z.detach(), "loss_logdet": loss_logdet.detach()}

    # -- sampling -------------------------------------------------------------------------
    def sampling_modules(self) -> list[nn.Module]:
        """What ``compile`` compiles for :meth:`sample`: every Transformer layer, which the sequential inverse
        calls once per token with its KV cache, and the model (the denoising score's forward pass)
        (:func:`labcore.compiling.maybe_compile`)."""
        return [self, *(layer for block in self.blocks for layer in block.attn_blocks)]

    @torch.no_grad()
    def sample(
        self,
        noise: torch.Tensor,
        y: torch.Tensor | None = None,
        y_null: torch.Tensor | None = None,
        guidance: float = 0.0,
        jacobi: JacobiOptions | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Noise ``(B, C, H, W)`` → noisy latents: deep block first (guided), then the shallow ones."""
        h = self.tokens(noise, "noise")
        deep, shallow = self.blocks[-1], self.blocks[:-1]
        if use_cache:
            h = deep.reverse(h, y, y_null, guidance, jacobi)
        else:
            h = deep.reverse_uncached(h, y, y_null, guidance)
        for block in reversed(shallow):
            h = block.reverse(h, jacobi=jacobi) if use_cache else block.reverse_uncached(h)
        return self.image(h)

    def denoise(self, x: torch.Tensor, y: torch.Tensor | None = None, sigma: float | None = None) -> torch.Tensor:
        """One-step score denoiser ``x + σ_L²∇log p(x)`` (§3.1) removing the training noise."""
        sigma = self.config.noise_std if sigma is None else sigma
        return score_denoise(x, sigma, lambda v: self.log_prob(v, y))

    # -- official checkpoints ---------------------------------------------------------------
    @classmethod
    def from_official_checkpoint(cls, path: str, config: StarFlowConfig | None = None) -> StarFlow:
        """Load a reference ``.pth`` (e.g. ``starflow_3B_t2i_256x256.pth``) into a model of ``config``
        (default: the preset of a released checkpoint, recognised by its file name)."""
        from starflow.official import load_official_state_dict, official_config

        state = read_state_file(path)  # a missing, empty or corrupt file is refused before building the model
        model = cls(config if config is not None else official_config(path))
        load_official_state_dict(model, state)
        return model
