"""Autoregressive flow layers over a sequence of patch vectors (paper §3.2–3.3).

Each layer maps ``x (B, N, D)`` to ``u`` with ``u_n = g(x_n; θ(x_{<n}))`` where ``θ`` comes from a
causal Transformer; odd layers run right-to-left (alternating directions, §3.2). The per-patch
map ``g`` is one of: ``affine`` (TarFlow), ``mix1`` (per-dimension mixture CDF with a MADE over the
patch dimensions) or ``mixd`` (d-dimensional mixture Rosenblatt transform, Algorithm 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tarflow_lm.mixture import mixd_forward, mixd_inverse, mixture_cdf_forward, mixture_cdf_inverse
from tarflow_lm.transformer import CausalTransformer


def soft_clamp_log_scale(raw: torch.Tensor, low: float = -7.0, high: float = 3.0) -> torch.Tensor:
    """Map raw outputs smoothly into ``[low, high]`` so mixture scales stay numerically invertible."""
    mid, half = 0.5 * (high + low), 0.5 * (high - low)
    return mid + half * torch.tanh((raw - mid) / half)


class AutoregressiveFlowLayer(nn.Module):
    def __init__(self, dim: int, hidden: int, depth: int, heads: int, max_patches: int, reverse: bool):
        super().__init__()
        self.dim, self.reverse = dim, reverse
        self.start = nn.Parameter(torch.zeros(1, 1, dim))
        self.net = CausalTransformer(dim, hidden, depth, heads, max_patches)

    # Subclasses: per-patch map given context features.
    def patch_forward(self, x: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def patch_inverse(self, u: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _orient(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) if self.reverse else x

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Features for patch ``n`` computed from patches ``< n`` (a learned start vector for ``n = 0``)."""
        shifted = torch.cat([self.start.expand(x.shape[0], 1, -1), x[:, :-1]], dim=1)
        return self.net(shifted)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data → noise direction; returns ``u`` and the log-det per sequence ``(B,)``."""
        x = self._orient(x)
        u, logdet = self.patch_forward(x, self.context(x))
        return self._orient(u), logdet.flatten(1).sum(1)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """Noise → data, one patch at a time with a KV cache (the sequential AR inverse)."""
        u = self._orient(u)
        cache, prev, xs = self.net.new_cache(), self.start.expand(u.shape[0], 1, -1), []
        for n in range(u.shape[1]):
            ctx = self.net(prev, cache)
            prev = self.patch_inverse(u[:, n : n + 1], ctx)
            xs.append(prev)
        return self._orient(torch.cat(xs, dim=1))


class AffineFlowLayer(AutoregressiveFlowLayer):
    """TarFlow step ``u = (x − μ)·exp(−α)``, ``log-det = −Σα``; zero-initialised to the identity."""

    def __init__(self, dim, hidden, depth, heads, max_patches, reverse, num_mixtures: int = 0):
        super().__init__(dim, hidden, depth, heads, max_patches, reverse)
        self.head = nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _params(self, ctx):
        mu, alpha = self.head(ctx).chunk(2, dim=-1)
        return mu, soft_clamp_log_scale(alpha, -5.0, 5.0)

    def patch_forward(self, x, ctx):
        mu, alpha = self._params(ctx)
        return (x - mu) * torch.exp(-alpha), -alpha

    def patch_inverse(self, u, ctx):
        mu, alpha = self._params(ctx)
        return u * torch.exp(alpha) + mu


class MaskedLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float())  # persistent: from_pretrained builds on meta

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def init_mixture_bias(bias: torch.Tensor, k: int) -> None:
    """Start every mixture with equal weights, means spread over ``[-2, 2]`` and unit scales."""
    with torch.no_grad():
        b = bias.view(-1, 3, k)
        b[:, 0].zero_()
        b[:, 1].copy_(torch.linspace(-2.0, 2.0, k) if k > 1 else torch.zeros(1))
        b[:, 2].zero_()


class Mix1FlowLayer(AutoregressiveFlowLayer):
    """Mix-1: ``u_i = Φ⁻¹(F_mix(x_i; θ_i(x_{<n}, x_{n,<i})))`` per patch dimension ``i`` (MADE head)."""

    def __init__(self, dim, hidden, depth, heads, max_patches, reverse, num_mixtures: int = 8):
        super().__init__(dim, hidden, depth, heads, max_patches, reverse)
        self.k = num_mixtures
        made_hidden = max(hidden, 2 * dim)
        in_deg = torch.arange(1, dim + 1)
        hid_deg = torch.arange(made_hidden) % dim  # degrees 0..dim−1; degree 0 sees only the context
        self.ctx_proj = nn.Linear(hidden, made_hidden)
        self.made_in = MaskedLinear(dim, made_hidden, hid_deg[:, None] >= in_deg[None, :])
        out_mask = (in_deg[:, None] > hid_deg[None, :]).repeat_interleave(3 * self.k, dim=0)
        self.made_out = MaskedLinear(made_hidden, dim * 3 * self.k, out_mask)
        with torch.no_grad():
            self.made_out.weight.mul_(0.01)
        init_mixture_bias(self.made_out.bias, self.k)

    def _params(self, x, ctx):
        h = F.gelu(self.ctx_proj(ctx) + self.made_in(x))
        raw = self.made_out(h).unflatten(-1, (self.dim, 3, self.k))
        return torch.log_softmax(raw[..., 0, :], -1), raw[..., 1, :], soft_clamp_log_scale(raw[..., 2, :])

    def patch_forward(self, x, ctx):
        return mixture_cdf_forward(x, *self._params(x, ctx))

    def patch_inverse(self, u, ctx):
        x = torch.zeros_like(u)
        for i in range(self.dim):  # within-patch autoregression over the small patch width
            lw, m, ls = self._params(x, ctx)
            x = x.clone()
            x[..., i] = mixture_cdf_inverse(u[..., i], lw[..., i, :], m[..., i, :], ls[..., i, :])
        return x


class MixDFlowLayer(AutoregressiveFlowLayer):
    """Mix-d: one K-component diagonal mixture over the whole patch, Rosenblatt-transformed (Algorithm 1)."""

    def __init__(self, dim, hidden, depth, heads, max_patches, reverse, num_mixtures: int = 8):
        super().__init__(dim, hidden, depth, heads, max_patches, reverse)
        self.k = num_mixtures
        self.head = nn.Linear(hidden, self.k + 2 * dim * self.k)
        with torch.no_grad():
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
            self.head.bias[self.k : self.k + dim * self.k].copy_(torch.randn(dim * self.k))

    def _params(self, ctx):
        raw = self.head(ctx)
        lw = torch.log_softmax(raw[..., : self.k], -1)
        m, ls = raw[..., self.k :].unflatten(-1, (2, self.dim, self.k)).unbind(-3)
        return lw, m, soft_clamp_log_scale(ls)

    def patch_forward(self, x, ctx):
        u, logdet = mixd_forward(x, *self._params(ctx))
        return u, logdet

    def patch_inverse(self, u, ctx):
        return mixd_inverse(u, *self._params(ctx))


class TiedMixDFlowLayer(MixDFlowLayer):
    """Mix-d whose K = V components are the codebook Gaussians ``N(μ_k, σ_k²I)``; only the weights are
    predicted. As ``σ → 0`` the layer becomes a discrete AR model over tokens (Proposition 4)."""

    def __init__(self, dim, hidden, depth, heads, max_patches, reverse, num_mixtures: int = 0, codebook=None):
        AutoregressiveFlowLayer.__init__(self, dim, hidden, depth, heads, max_patches, reverse)
        if codebook is None or codebook.latent_dim != dim:
            raise ValueError("mixd_tied needs the codebook and patch_size = 1 (components are single tokens)")
        self.k = codebook.vocab_size
        self.codebook_ref = lambda: codebook  # a reference, not a submodule: parameters stay owned by the model
        self.head = nn.Linear(hidden, self.k)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _params(self, ctx):
        cb = self.codebook_ref()
        means = cb.means.T.expand(*ctx.shape[:-1], -1, -1)  # (..., d, V)
        return torch.log_softmax(self.head(ctx), -1), means, cb.log_sigmas.expand_as(means)


LAYER_TYPES = {"affine": AffineFlowLayer, "mix1": Mix1FlowLayer, "mixd": MixDFlowLayer, "mixd_tied": TiedMixDFlowLayer}


def householder_vectors(dim: int, count: int, seed: int) -> torch.Tensor:
    """Random unit vectors ``(count, D)`` defining a product of Householder reflections (seeded)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(count, dim, generator=g)
    return v / v.norm(dim=-1, keepdim=True)


def channel_mix(x: torch.Tensor, vectors: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Orthogonal channel mixing across the tokens of a patch: ``x ↦ x H_1 ⋯ H_m`` with reflections
    ``H = I − 2vvᵀ`` (each its own inverse, so ``inverse`` applies them in reverse; |det| = 1)."""
    vs = vectors.to(x.dtype)
    for v in reversed(vs) if inverse else vs:
        x = x - 2 * (x @ v).unsqueeze(-1) * v / v.pow(2).sum()
    return x
