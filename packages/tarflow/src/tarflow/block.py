"""One autoregressive flow block (paper §2.1-2.2; reference ``MetaBlock``, same parameter names).

In its permuted order, token ``i`` is transformed by ``z_i = (x_i − b_i)·exp(−a_i)`` (eq. 3)
with ``(a_i, b_i)`` predicted causally from ``x_{<i}``: a causal Transformer over the tokens,
then the one-token output shift, so ``z_0 = x_0`` and ``log|det J| = −Σ a`` (eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labcore.flows import at_least_fp32
from labcore.kernels import affine_forward, affine_inverse
from tarflow.layers import AttentionBlock, KVCache


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance settings (§2.4): ``w`` on ``a``/``b``, optional annealing and attention temperature.

    Conditional and unconditional branches run as one batch of ``2B``: labels ``y`` for the first
    half, the mean class embedding (label ``-1``) and attention temperature ``attn_temp`` for the second.
    """

    weight: float = 0.0
    guide_what: str = "ab"
    attn_temp: float = 1.0
    annealed: bool = False

    @property
    def active(self) -> bool:
        return self.weight > 0 and bool(self.guide_what)

    def weights(self, positions: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """Guidance weight for the parameters of token ``positions`` (annealed: ``w·j/(T−1)``)."""
        if self.annealed:
            return positions.float() / (num_tokens - 1) * self.weight
        return torch.full_like(positions, self.weight, dtype=torch.float32)


class MetaBlock(nn.Module):
    """Autoregressive affine flow over ``num_patches`` tokens in identity or flipped order."""

    attn_mask: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_patches: int,
        flip: bool,
        num_layers: int,
        head_dim: int = 64,
        expansion: int = 4,
        nvp: bool = True,
        num_classes: int = 0,
    ):
        super().__init__()
        self.flip = flip  # permutation π_t of the paper: identity for even blocks, reversal for odd ones
        self.nvp = nvp
        self.proj_in = nn.Linear(in_channels, channels)
        self.pos_embed = nn.Parameter(torch.randn(num_patches, channels) * 1e-2)
        self.class_embed = nn.Parameter(torch.randn(num_classes, 1, channels) * 1e-2) if num_classes else None
        self.attn_blocks = nn.ModuleList(AttentionBlock(channels, head_dim, expansion) for _ in range(num_layers))
        self.proj_out = nn.Linear(channels, 2 * in_channels if nvp else in_channels)
        self.proj_out.weight.data.zero_()  # zero-initialised output: every block starts as the identity
        # Part of the reference state dict; attention itself uses is_causal / the KV cache instead.
        self.register_buffer("attn_mask", torch.tril(torch.ones(num_patches, num_patches)))

    def permute(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        return x.flip(dim) if self.flip else x

    def class_embedding(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | float:
        """Embedding added to every token: ``class_embed[y]``, the mean embedding where ``y < 0`` or ``y`` is None."""
        if self.class_embed is None:
            return 0.0
        mean = self.class_embed.mean(0)
        if y is None:
            return mean.expand(batch, 1, -1)
        return torch.where((y < 0).view(-1, 1, 1), mean, self.class_embed[y.clamp(min=0)])

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.nvp:
            a, b = out.chunk(2, dim=-1)
            return a, b
        return torch.zeros_like(out), out  # volume-preserving variant: shift only

    def params(
        self, x: torch.Tensor, y: torch.Tensor | None, temp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b)`` for every token of the permuted sequence ``x``, token ``i`` seeing only ``x_{<i}``."""
        h = self.proj_in(x) + self.permute(self.pos_embed, dim=0) + self.class_embedding(y, x.shape[0])
        for layer in self.attn_blocks:
            h = layer(h, temp)
        out = self.proj_out(h)
        out = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)  # the one-token shift
        return self._split(out)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x → (z, log|det ∂z/∂x|)`` with the log-det summed per example (eq. 4)."""
        x = self.permute(x)
        a, b = self.params(x, y)
        z = affine_forward(x, a, b)
        logdet = -at_least_fp32(a).sum(dim=(1, 2))
        return self.permute(z), logdet

    # ---- inverse (sampling, §2.4) -------------------------------------------------------------

    def _branches(
        self, y: torch.Tensor | None, batch: int, guidance: Guidance, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Labels and attention temperatures of the (conditional[, unconditional]) batch."""
        if not guidance.active:
            return y, None
        cond = y if y is not None else torch.full((batch,), -1, dtype=torch.long, device=device)
        labels = torch.cat([cond, torch.full_like(cond, -1)])
        if guidance.attn_temp == 1.0:
            return labels, None
        temps = torch.ones(2 * batch, device=device)
        temps[batch:] = guidance.attn_temp
        return labels, temps

    @staticmethod
    def _guide(
        a: torch.Tensor, b: torch.Tensor, guidance: Guidance, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CFG on the affine parameters: ``p + w·(p_cond − p_uncond)`` for p in the guided set."""
        if not guidance.active:
            return a, b
        (a_c, a_u), (b_c, b_u) = a.chunk(2), b.chunk(2)
        w = w.to(a.dtype)
        if "a" in guidance.guide_what:
            a_c = a_c + w * (a_c - a_u)
        if "b" in guidance.guide_what:
            b_c = b_c + w * (b_c - b_u)
        return a_c, b_c

    def inverse(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        guidance: Guidance = Guidance(),
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Exact inverse, one token at a time with a preallocated KV cache (eq. 5)."""
        batch, length, _ = z.shape
        x = self.permute(z).clone()
        labels, temps = self._branches(y, batch, guidance, z.device)
        n = 2 * batch if guidance.active else batch
        cache = cache or KVCache(len(self.attn_blocks), length)
        embed = self.permute(self.pos_embed, dim=0).unsqueeze(0) + self.class_embedding(labels, n)  # (n|1, T, C)
        weights = guidance.weights(torch.arange(length, device=z.device), length)
        for i in range(length - 1):
            h = x[:, i : i + 1]
            if guidance.active:
                h = torch.cat([h, h])
            h = self.proj_in(h) + embed[:, i : i + 1]
            for j, layer in enumerate(self.attn_blocks):
                h = layer.step(h, cache, j, i, temps)
            a, b = self._split(self.proj_out(h)[:, 0])
            a, b = self._guide(a, b, guidance, weights[i + 1])
            x[:, i + 1] = affine_inverse(x[:, i + 1], a.to(x.dtype), b.to(x.dtype))
        return self.permute(x)

    def inverse_jacobi(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        guidance: Guidance = Guidance(),
        tol: float = 1e-5,
        max_iters: int | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Inverse by Jacobi fixed-point iteration ``x ← z·exp(a(x)) + b(x)`` over all tokens in parallel.

        Token ``i`` is exact after ``i`` sweeps, so ``T − 1`` sweeps reproduce :meth:`inverse`;
        iteration stops earlier once no token moves by more than ``tol``. Returns ``(x, sweeps)``.
        """
        batch, length, _ = z.shape
        zp = self.permute(z)
        labels, temps = self._branches(y, batch, guidance, z.device)
        w = guidance.weights(torch.arange(length, device=z.device), length).view(-1, 1)
        x = zp.clone()
        max_iters = length - 1 if max_iters is None else max_iters
        sweeps = 0
        for sweeps in range(1, max_iters + 1):  # noqa: B007 - the count is returned
            inp = torch.cat([x, x]) if guidance.active else x
            a, b = self._guide(*self.params(inp, labels, temps), guidance, w)
            x_new = affine_inverse(zp, a.to(zp.dtype), b.to(zp.dtype))
            delta = (x_new - x).abs().max().item()
            x = x_new
            if delta <= tol:
                break
        return self.permute(x), sweeps
