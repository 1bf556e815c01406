"""One autoregressive affine flow block (TarFlow block as modified by STARFlow §3).

Forward (data → noise): ``z_t = (x_t − μ_t(x_<t, c)) / σ_t(x_<t, c)`` with ``σ = softplus(o + 0.5413)``
(σ = 1 at zero output), a learnable SOS token in place of TarFlow's output shift, soft clipping
``4·tanh(o/4)`` of the head and the affine maths in float32. A conditioned block (the deep one)
prepends the projected text/label sequence as a causal prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labcore.flows import at_least_fp32
from labcore.kernels import affine_forward, affine_inverse
from labcore.validate import check_finite, check_number
from starflow.guidance import guided_gaussian
from starflow.layers import AttentionBlock, KVCache, RMSNorm, Rope, causal_mask, inverse_softplus, rope_angles

SOFTPLUS_OFFSET = inverse_softplus(1.0)  # 0.5413: σ = 1 at initialisation


@dataclass(frozen=True)
class JacobiOptions:
    """Block-wise Jacobi decoding (§3.4): ``block_size`` tokens iterated until the relative squared
    change falls below ``threshold`` or ``max_iter`` iterations. ``max_iter >= block_size`` with
    ``threshold=0`` is exactly sequential decoding. Defaults are the reference ``sample.py``'s
    (``--jacobi_block_size 64 --jacobi_max_iter 32 --jacobi_th 0.005``)."""

    block_size: int = 64
    max_iter: int = 32
    threshold: float = 5e-3

    def __post_init__(self):
        if self.block_size < 1 or self.max_iter < 1 or self.threshold < 0:
            raise ValueError(f"invalid Jacobi options {self}: block_size, max_iter >= 1, threshold >= 0")


class MetaBlock(nn.Module):
    """An autoregressive flow over ``grid²`` tokens, optionally reversed (``flip``)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_layers: int,
        head_dim: int,
        grid: int,
        expansion: float = 4.0,
        txt_dim: int = 0,
        text_axis: bool = False,
        flip: bool = False,
        soft_clip: float = 4.0,
        use_final_norm: bool = True,
        rope_theta: float = 1e4,
    ):
        super().__init__()
        self.proj_in = nn.Linear(in_channels, channels)
        self.proj_out = nn.Linear(channels, 2 * in_channels)
        nn.init.zeros_(self.proj_out.weight)  # the block starts as (near) identity
        self.sos_embed = nn.Parameter(torch.randn(1, 1, in_channels))
        if txt_dim:
            self.proj_txt = nn.Linear(txt_dim, channels)
        self.attn_blocks = nn.ModuleList(AttentionBlock(channels, head_dim, expansion) for _ in range(num_layers))
        self.final_norm = RMSNorm(channels) if use_final_norm else nn.Identity()
        self.txt_dim, self.text_axis, self.flip = txt_dim, text_axis, flip
        self.grid, self.head_dim, self.soft_clip, self.rope_theta = grid, head_dim, soft_clip, rope_theta
        self.num_heads = channels // head_dim
        self._ropes: dict = {}

    # -- pieces ---------------------------------------------------------------------------
    def permute(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) if self.flip else x

    def rope(self, txt_len: int, device: torch.device) -> Rope:
        key = (txt_len, str(device))
        if key not in self._ropes:
            angles = rope_angles(self.grid, txt_len, self.head_dim, self.text_axis, self.rope_theta)
            self._ropes[key] = Rope(angles).to(device)
        return self._ropes[key]

    def trunk(
        self, h: torch.Tensor, rope: Rope, cache: KVCache | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        for i, layer in enumerate(self.attn_blocks):
            h = layer(h, rope, cache, i, mask)
        return self.final_norm(h)

    def head(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, σ)`` in float32 (float64 in a float64 model) from hidden states."""
        out = at_least_fp32(self.proj_out(h))
        if self.soft_clip > 0:
            out = self.soft_clip * torch.tanh(out / self.soft_clip)
        raw_sigma, mu = out.chunk(2, dim=-1)
        return mu, F.softplus(raw_sigma + SOFTPLUS_OFFSET)

    def check_condition(self, y: torch.Tensor | None, batch: int) -> None:
        if not self.txt_dim:  # unconditional block: y is ignored
            return
        if y is None:
            raise ValueError(
                "this block is conditional: pass y (encoded text or one-hot labels, see starflow.conditioning)"
            )
        if y.ndim != 3 or y.shape[0] != batch or y.shape[-1] != self.txt_dim:
            raise ValueError(
                f"condition must have shape ({batch}, L, {self.txt_dim}) for a batch of {batch}, got {tuple(y.shape)}"
            )
        if not y.dtype.is_floating_point:
            raise ValueError(
                f"condition must be float hidden states or one-hot labels, got {y.dtype}; "
                "encode labels with starflow.conditioning.ClassEmbedder"
            )
        check_finite(y, "condition y")

    def params(
        self, x: torch.Tensor, y: torch.Tensor | None = None, explicit_mask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced ``(μ, σ)`` for every position of ``x`` (tokens already in block order)."""
        b = x.shape[0]
        inp = torch.cat([self.sos_embed.expand(b, -1, -1), x[:, :-1]], 1).to(self.proj_in.weight.dtype)
        h = self.proj_in(inp)
        txt_len = 0
        if self.txt_dim:
            self.check_condition(y, b)
            txt = self.proj_txt(y.to(h.dtype))
            txt_len = txt.shape[1]
            h = torch.cat([txt, h], 1)
        mask = causal_mask(h.shape[1], h.device) if explicit_mask else None
        h = self.trunk(h, self.rope(txt_len, x.device), mask=mask)
        return self.head(h[:, txt_len:])

    # -- density direction ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``x (B, T, C)`` → ``(z, log|det ∂z/∂x|)`` with the log-det per example."""
        xp = self.permute(x)
        mu, sigma = self.params(xp, y)
        z = affine_forward(at_least_fp32(xp), sigma.log(), mu)
        return self.permute(z).to(x.dtype), -sigma.log().flatten(1).sum(1)

    # -- sampling direction ---------------------------------------------------------------
    @staticmethod
    def _guide(mu: torch.Tensor, sigma: torch.Tensor, guidance: float, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        if guidance <= 0:
            return mu, sigma
        return guided_gaussian(mu[:b], sigma[:b], mu[b:], sigma[b:], guidance)

    @torch.no_grad()
    def reverse(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        y_null: torch.Tensor | None = None,
        guidance: float = 0.0,
        jacobi: JacobiOptions | None = None,
    ) -> torch.Tensor:
        """Invert the block with a preallocated KV cache; the condition prefix is prefilled once.

        With ``guidance > 0`` conditional and null rows run as one batch of ``2B`` and each step
        uses the closed-form guided Gaussian.
        """
        guidance = check_number(guidance, "guidance", minimum=0) * bool(self.txt_dim)
        self.check_condition(y, z.shape[0])
        cond = y
        if guidance > 0:
            if y_null is None:
                raise ValueError("guidance needs both the condition y and the null condition y_null")
            if y_null.ndim != 3 or y_null.shape[0] not in (1, y.shape[0]) or y_null.shape[1:] != y.shape[1:]:
                raise ValueError(
                    f"y_null must have shape (1 or {y.shape[0]}, {y.shape[1]}, {y.shape[2]}) like y, "
                    f"got {tuple(y_null.shape)}"
                )
            cond = torch.cat([y, y_null.expand_as(y)])
        zp = self.permute(at_least_fp32(z))
        b, t, c = zp.shape
        rows = 2 * b if guidance > 0 else b
        txt_len = cond.shape[1] if self.txt_dim else 0
        dtype = self.proj_in.weight.dtype
        cache = KVCache(len(self.attn_blocks), rows, self.num_heads, txt_len + t, self.head_dim, z.device, dtype)
        rope = self.rope(txt_len, z.device)
        if txt_len:
            self.trunk(self.proj_txt(cond.to(dtype)), rope, cache)
        run = self._jacobi if jacobi is not None else self._sequential
        x = run(zp, rope, cache, guidance, rows // b, jacobi)
        return self.permute(x).to(z.dtype)

    def _step(self, tokens: torch.Tensor, rope: Rope, cache: KVCache, guidance: float, b: int):
        h = self.trunk(self.proj_in(tokens.to(self.proj_in.weight.dtype)), rope, cache)
        return self._guide(*self.head(h), guidance, b)

    def _sequential(self, z, rope, cache, guidance, reps, _):
        b, t, _c = z.shape
        x = torch.empty_like(z)
        tok = self.sos_embed.expand(b * reps, -1, -1)
        for i in range(t):
            mu, sigma = self._step(tok, rope, cache, guidance, b)
            x[:, i : i + 1] = affine_inverse(z[:, i : i + 1], sigma.log(), mu)
            tok = x[:, i : i + 1].repeat(reps, 1, 1)
        return x

    def _jacobi(self, z, rope, cache, guidance, reps, opts: JacobiOptions):
        b, t, _c = z.shape
        xs = torch.cat([self.sos_embed.expand(b, -1, -1).to(z.dtype), z.clone()], 1)  # initial guess: x = z
        start = 0
        while start < t:
            n = min(opts.block_size, t - start)
            for it in range(opts.max_iter):
                mu, sigma = self._step(xs[:, start : start + n].repeat(reps, 1, 1), rope, cache, guidance, b)
                new = affine_inverse(z[:, start : start + n], sigma.log(), mu)
                old = xs[:, start + 1 : start + 1 + n]
                change = (new - old).square().mean() / new.square().mean().clamp_min(1e-12)
                xs[:, start + 1 : start + 1 + n] = new
                if change < opts.threshold or it == opts.max_iter - 1:
                    break
                cache.rewind(n)
            start += n
        return xs[:, 1:]

    @torch.no_grad()
    def reverse_uncached(
        self, z: torch.Tensor, y: torch.Tensor | None = None, y_null: torch.Tensor | None = None, guidance: float = 0.0
    ) -> torch.Tensor:
        """Reference-strategy inverse: recompute the prefix each step with an explicit mask, and
        run the conditional and null passes as two calls. The baseline of the benchmark and tests."""
        guidance = check_number(guidance, "guidance", minimum=0) * bool(self.txt_dim)
        zp = self.permute(at_least_fp32(z))
        x = torch.zeros_like(zp)
        for i in range(zp.shape[1]):
            mu, sigma = (p[:, i] for p in self.params(x[:, : i + 1], y, explicit_mask=True))
            if guidance > 0:
                mu_u, sigma_u = (p[:, i] for p in self.params(x[:, : i + 1], y_null.expand_as(y), explicit_mask=True))
                mu, sigma = guided_gaussian(mu, sigma, mu_u, sigma_u, guidance)
            x[:, i] = affine_inverse(zp[:, i], sigma.log(), mu)
        return self.permute(x).to(z.dtype)
