"""TarFlow (Zhai et al., 2024): a stack of Transformer autoregressive flow blocks on image patches.

``TarFlow`` has exactly the parameter and buffer names of apple/ml-tarflow's ``Model``, so the
official checkpoints load with :meth:`TarFlow.from_reference_checkpoint`; it is also a
Hugging Face Hub model under labcore's save/load contract (:class:`labcore.hub.HubMixin`:
``save_pretrained``/``from_pretrained``, safetensors + tagged ``config.json`` + model card, strict loading).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from labcore.checkpoint import load_state_dict_checked
from labcore.flows import at_least_fp32, patchify, score_denoise, unpatchify
from labcore.hub import HubMixin, read_state_file
from labcore.metrics import bits_per_dim
from labcore.validate import check_count, check_finite, check_number
from tarflow.block import Guidance, MetaBlock
from tarflow.config import TarFlowConfig, config_from_reference
from tarflow.layers import KVCache

BIN_WIDTH = 2 / 256  # 8-bit pixels mapped to [-1, 1]


class FlowOutput(NamedTuple):
    z: torch.Tensor  # (B, T, D) latent tokens
    logdet: torch.Tensor  # (B,) log|det ∂z/∂x| summed over all dimensions, float32
    outputs: list[torch.Tensor]  # the tokens after every block


class TarFlow(
    nn.Module,
    HubMixin,
    library_name="tarflow",
    repo_url="https://github.com/apple/ml-tarflow",
    paper_url="https://arxiv.org/abs/2412.06329",
):
    """Transformer autoregressive flow over ``(B, C, H, W)`` images in ``[-1, 1]`` (noise-augmented)."""

    VAR_LR = 0.1  # EMA rate of the prior variance of the volume-preserving variant
    var: torch.Tensor

    def __init__(self, config: TarFlowConfig):
        super().__init__()
        if isinstance(config, dict):
            config = TarFlowConfig(**config)
        self.config = config
        c = config
        self.blocks = nn.ModuleList(
            MetaBlock(
                c.token_dim,
                c.channels,
                c.num_patches,
                flip=i % 2 == 1,
                num_layers=c.layers_per_block,
                head_dim=c.head_dim,
                expansion=c.expansion,
                nvp=c.nvp,
                num_classes=c.num_classes,
            )
            for i in range(c.num_blocks)
        )
        # Prior N(0, diag(var)): ones for the NVP model, an EMA of E[z²] for nvp=False.
        self.register_buffer("var", torch.ones(c.num_patches, c.token_dim))

    # ---- input checks -----------------------------------------------------------------------

    def _check_images(self, x: torch.Tensor) -> None:
        c = self.config
        expected = (c.in_channels, c.img_size, c.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            hint = ""
            if x.ndim == 4 and x.shape[-1] % c.patch_size:
                hint = f" (size {x.shape[-1]} is not even divisible by patch_size={c.patch_size})"
            raise ValueError(
                f"expected images of shape (B, {c.in_channels}, {c.img_size}, {c.img_size}), "
                f"got {tuple(x.shape)}{hint}; resize or pick a config with this size/channel count"
            )
        if not x.dtype.is_floating_point:
            raise ValueError(
                f"expected float images in [-1, 1], got {x.dtype}; map 8-bit pixels with "
                f"x.float() / 127.5 - 1 (and dequantise, see tarflow.data)"
            )
        check_finite(x, "images x")

    def _check_labels(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if y is None:
            return None
        n = self.config.num_classes
        if n == 0:
            raise ValueError("this model is unconditional (num_classes=0); pass y=None")
        y = torch.as_tensor(y, device=self.var.device)
        if y.dtype.is_floating_point or y.shape != (batch,):
            raise ValueError(f"labels must be an integer tensor of shape ({batch},), got {y.dtype} {tuple(y.shape)}")
        if (y >= n).any():
            raise ValueError(
                f"class id {int(y.max())} out of range: the model has {n} classes (0..{n - 1}); use -1 for 'no label'"
            )
        return y.long()

    # ---- tokens -----------------------------------------------------------------------------

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        self._check_images(x)
        return patchify(x, self.config.patch_size)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        return unpatchify(tokens, self.config.patch_size, (self.config.img_size, self.config.img_size))

    # ---- density ----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> FlowOutput:
        """Images → latent tokens ``z`` and ``log|det ∂z/∂x|``; labels ``y < 0`` mean 'no label' (CFG dropout)."""
        y = self._check_labels(y, x.shape[0])
        h = self.patchify(x)
        logdet = torch.zeros(x.shape[0], device=x.device)
        outputs = []
        for block in self.blocks:
            h, ld = block(h, y)
            logdet = logdet + ld
            outputs.append(h)
        return FlowOutput(h, logdet, outputs)

    def get_loss(self, z: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
        """Training loss in nats/dim as the paper (eq. 6, up to the constant ½·log 2π)."""
        return 0.5 * at_least_fp32(z).pow(2).mean() - logdet.mean() / self.config.num_dims

    def nll(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``−log p(x)`` in nats per example under the standard normal prior (the reference's evaluation)."""
        z, logdet, _ = self(x, y)
        return self.latent_nll(z, logdet)

    def latent_nll(self, z: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
        """``−log N(z; 0, I) − logdet`` per example: the NLL of images that a forward pass mapped to ``(z, logdet)``."""
        d = self.config.num_dims
        return 0.5 * at_least_fp32(z).pow(2).flatten(1).sum(1) + 0.5 * d * math.log(2 * math.pi) - logdet

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.nll(x, y)

    def bits_per_dim(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Bits/dim of dequantised 8-bit data in [-1, 1] (bin width 2/256, as ``evaluate_bpd.py``)."""
        return bits_per_dim(self.nll(x, y), self.config.num_dims, bin_width=BIN_WIDTH)

    @torch.no_grad()
    def update_prior(self, z: torch.Tensor) -> None:
        """EMA of the latent second moment, the prior variance of the ``nvp=False`` variant."""
        self.var.lerp_(at_least_fp32(z).pow(2).mean(0).to(self.var.dtype), weight=self.VAR_LR)

    # ---- sampling ---------------------------------------------------------------------------

    def _guidance(self, guidance: float, guide_what: str, attn_temp: float, annealed: bool) -> Guidance:
        check_number(guidance, "guidance", minimum=0)
        check_number(attn_temp, "attn_temp", minimum=0, exclusive=True)
        if set(guide_what) - {"a", "b"}:
            raise ValueError(f"guide_what must be a subset of 'ab', got {guide_what!r}")
        return Guidance(guidance, guide_what, attn_temp, annealed)

    @torch.no_grad()
    def inverse(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        guidance: float = 0.0,
        guide_what: str = "ab",
        attn_temp: float = 1.0,
        annealed_guidance: bool = False,
        jacobi_tol: float | None = None,
    ) -> torch.Tensor:
        """Latent tokens ``(B, T, D)`` (standard normal) → images, blocks in reverse order.

        ``jacobi_tol`` switches to the parallel Jacobi sampler (:meth:`MetaBlock.inverse_jacobi`).
        """
        c = self.config
        if z.ndim != 3 or tuple(z.shape[1:]) != (c.num_patches, c.token_dim):
            raise ValueError(f"expected latents of shape (B, {c.num_patches}, {c.token_dim}), got {tuple(z.shape)}")
        check_finite(z, "latents z")
        if jacobi_tol is not None:
            check_number(jacobi_tol, "jacobi_tol", minimum=0, exclusive=True)
        y = self._check_labels(y, z.shape[0])
        g = self._guidance(guidance, guide_what, attn_temp, annealed_guidance)
        x = z * self.var.sqrt().to(z.dtype)
        cache = KVCache(c.layers_per_block, c.num_patches)
        for block in reversed(self.blocks):
            x = block.inverse(x, y, g, cache) if jacobi_tol is None else block.inverse_jacobi(x, y, g, jacobi_tol)[0]
        return self.unpatchify(x)

    def denoise(self, x: torch.Tensor, y: torch.Tensor | None = None, sigma: float | None = None) -> torch.Tensor:
        """Score-based denoising ``x + σ²∇log p(x)`` of samples from a noise-augmented model (§2.3)."""
        sigma = self.config.noise_std if sigma is None else sigma
        dtype = next(self.parameters()).dtype
        return score_denoise(x, sigma, lambda v: self.log_prob(v.to(dtype), y))

    def sampling_modules(self) -> list[nn.Module]:
        """What ``compile`` compiles for :meth:`sample`: the model (the Jacobi sampler's and the denoising
        score's forward passes) and every Transformer layer's MLP, which the sequential KV-cached inverse calls
        once per token; its attention steps stay eager (:func:`labcore.compiling.maybe_compile`)."""
        return [self, *(layer.mlp for block in self.blocks for layer in block.attn_blocks)]

    def sample(
        self,
        num: int,
        y: torch.Tensor | None = None,
        guidance: float = 0.0,
        guide_what: str = "ab",
        attn_temp: float = 1.0,
        annealed_guidance: bool = False,
        denoise: bool | None = None,
        jacobi_tol: float | None = None,
        generator: torch.Generator | None = None,
        max_redraws: int = 10,
    ) -> torch.Tensor:
        """Draw ``num`` images; samples with NaN/inf are re-drawn from fresh noise (the reference redraws NaNs).

        ``denoise`` defaults to True for Gaussian-noise-augmented models.
        """
        c = self.config
        check_count(num, "num")
        check_count(max_redraws, "max_redraws", minimum=0)
        self._guidance(guidance, guide_what, attn_temp, annealed_guidance)
        denoise = c.noise_type == "gaussian" if denoise is None else denoise
        device, dtype = self.var.device, next(self.parameters()).dtype
        y = self._check_labels(y, num)
        out = torch.empty(
            num, c.in_channels, c.img_size, c.img_size, device=device, dtype=at_least_fp32(self.var).dtype
        )
        todo = torch.arange(num, device=device)
        for _ in range(max_redraws + 1):
            noise = torch.randn(len(todo), c.num_patches, c.token_dim, generator=generator, device=device)
            sub_y = None if y is None else y[todo]
            x = self.inverse(noise.to(dtype), sub_y, guidance, guide_what, attn_temp, annealed_guidance, jacobi_tol)
            x = x.to(out.dtype)
            bad = ~torch.isfinite(x).flatten(1).all(1)
            if denoise and not bad.all():  # denoise the finite rows (the density refuses NaN/inf inputs)
                x[~bad] = self.denoise(x[~bad], None if sub_y is None else sub_y[~bad])
                bad = ~torch.isfinite(x).flatten(1).all(1)
            out[todo] = x
            todo = todo[bad]
            if len(todo) == 0:
                return out
        raise RuntimeError(f"{len(todo)} samples were still NaN after {max_redraws} redraws; lower the guidance")

    # ---- checkpoints ------------------------------------------------------------------------

    @classmethod
    def from_reference_checkpoint(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu", in_channels: int | None = None
    ) -> TarFlow:
        """Load an official apple/ml-tarflow state dict, e.g. ``afhq_model_8_768_8_8_0.07.pth``.

        The config comes from the file name (``P_C_T_K_noise``) and the weights' shapes; any
        key or shape disagreement raises an error naming it (see :func:`config_from_reference`
        for ``in_channels``). The reference's ``train.py`` saves the bare ``model.state_dict()``;
        one level of ``{"model"|"state_dict"|"model_state_dict"|"ema": state_dict}`` is unwrapped.
        """
        path = Path(path)
        state = _unwrap_state_dict(read_state_file(path, map_location), path)
        config = config_from_reference(path.name, {k: tuple(v.shape) for k, v in state.items()}, in_channels)
        model = cls(config)
        load_state_dict_checked(model, state)
        return model


_STATE_DICT_WRAPPERS = ("model", "state_dict", "model_state_dict", "ema")


def _unwrap_state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` dict in a loaded ``.pth``: as saved, or under one wrapper key."""
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        found = [k for k in _STATE_DICT_WRAPPERS if isinstance(obj.get(k), dict)]
        if len(found) != 1:
            raise ValueError(
                f"{path} is not a state dict: it holds keys {sorted(map(str, obj))[:8]} with non-tensor values and "
                + (f"several wrappers {found}" if found else f"none of the wrappers {list(_STATE_DICT_WRAPPERS)}")
                + "; save the model's state_dict() itself (torch.save(model.state_dict(), path))"
            )
        obj = obj[found[0]]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise ValueError(f"{path} does not hold a state dict of tensors (got {type(obj).__name__})")
    return obj
