"""TarFlowLM: Gaussian-codebook VAE bridge + stacked autoregressive flow prior (arXiv 2507.00425)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from labcore.hub import PreTrainedMixin
from labcore.validate import check_count, check_finite
from tarflow_lm.codebook import LOG_2PI, GaussianCodebook
from tarflow_lm.configuration import TarFlowLMConfig
from tarflow_lm.flows import LAYER_TYPES, channel_mix, householder_vectors
from tarflow_lm.mixture import RootFindingError


class InverseAccuracyError(RootFindingError):
    """The flow's inverse cannot give the data back to the requested accuracy (it is ill-conditioned there)."""


@dataclass
class TarFlowLMOutput(ModelOutput):
    loss: torch.Tensor | None = None  # −ELBO in nats per token, batch mean
    elbo: torch.Tensor | None = None  # (B,) nats per sequence
    reconstruction: torch.Tensor | None = None  # (B,) Σ_t log p(x_t | z_t)
    log_prior: torch.Tensor | None = None  # (B,) log p(z)
    log_posterior: torch.Tensor | None = None  # (B,) log q(z | x)


class TarFlowLMModel(PreTrainedMixin, PreTrainedModel):
    paper_url = "https://arxiv.org/abs/2507.00425"
    config_class = TarFlowLMConfig
    base_model_prefix = "tarflow_lm"
    main_input_name = "input_ids"

    def __init__(self, config: TarFlowLMConfig):
        super().__init__(config)
        c = config
        self.patch_dim = c.patch_size * c.latent_dim
        self.codebook = GaussianCodebook(c.vocab_size, c.latent_dim, c.init_log_sigma)
        max_patches = c.max_seq_len // c.patch_size
        self.flows = nn.ModuleList(
            LAYER_TYPES[kind](
                self.patch_dim,
                c.hidden_size,
                c.layers_per_block,
                c.num_heads,
                max_patches,
                reverse=bool(i % 2),
                num_mixtures=k,
                **({"codebook": self.codebook} if kind == "mixd_tied" else {}),
            )
            for i, (kind, k) in enumerate(zip(c.layer_types, c.num_mixtures, strict=True))
        )
        mix = [householder_vectors(self.patch_dim, 4, seed=i) for i in range(len(self.flows))]
        self.register_buffer("mixing_vectors", torch.stack(mix))  # (L, 4, P·d) reflection vectors
        self.active_layers = len(self.flows)  # progressive training trains a prefix of the stack
        self.post_init()

    def _init_weights(self, module):  # every submodule initialises itself (identity-like flow heads)
        pass

    # --- layout -------------------------------------------------------------------------------------
    def _uses_mixing(self) -> bool:
        return self.config.channel_mixing and self.config.patch_size > 1

    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, T, d) → (B, T/P, P·d)``; ``T`` must be a multiple of the patch size (no silent padding)."""
        b, t, d = z.shape
        p = self.config.patch_size
        if t % p:
            raise ValueError(
                f"sequence length {t} is not divisible by patch_size {p}: trim or pad the "
                f"input to a multiple of {p} tokens"
            )
        return z.reshape(b, t // p, p * d)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1, self.config.latent_dim)

    def _layer_forward(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``i`` in channel-mixed coordinates (Algorithm 2): unmix ∘ flow ∘ mix, orthogonal so log-det adds 0."""
        if self._uses_mixing():
            u, logdet = self.flows[i](channel_mix(x, self.mixing_vectors[i]))
            return channel_mix(u, self.mixing_vectors[i], inverse=True), logdet
        return self.flows[i](x)

    def _layer_inverse(self, i: int, u: torch.Tensor) -> torch.Tensor:
        if self._uses_mixing():
            mixed = self.flows[i].inverse(channel_mix(u, self.mixing_vectors[i]))
            return channel_mix(mixed, self.mixing_vectors[i], inverse=True)
        return self.flows[i].inverse(u)

    # --- prior ----------------------------------------------------------------------------------------
    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z) = log N(f(z); 0, I) + Σ_l log|det ∂f_l|`` over the active layers (change of variables)."""
        x = self.patchify(check_finite(z, "latents z"))
        total = x.new_zeros(x.shape[0])
        for i in range(self.active_layers):
            x, logdet = self._layer_forward(i, x)
            total = total + logdet
        return total + (-0.5 * x.pow(2) - 0.5 * LOG_2PI).flatten(1).sum(1)

    def prior_forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Every intermediate state ``[z⁰ = z, z¹, …, z^L = u]`` in token layout ``(B, T, d)``."""
        x, states = self.patchify(check_finite(z, "latents z")), [z]
        for i in range(self.active_layers):
            x, _ = self._layer_forward(i, x)
            states.append(self.unpatchify(x))
        return states

    @torch.no_grad()
    def prior_inverse(self, u: torch.Tensor, check: bool = True, tol: float | None = None) -> list[torch.Tensor]:
        """Invert the stack from noise; returns ``[z^L = u, z^{L−1}, …, z⁰]`` (coarse → fine passes).

        Each patch is inverted given the patches before it, so an error in one patch moves the
        context of all later ones: the noise-side residual ``|f(z) − u|`` can be at rounding level
        while ``z`` is far from the data that gave ``u`` (patch size 4, Mix-d, float64, random
        weights: residual 1e-14, data-space error up to 7). With ``check`` (the default) the inverse
        also runs, in the same batch, on ``u + δ`` with ``|δ| = 1e-3·√ε·|u|``; the spread of the
        results, scaled to the noise-side floor ``max(|f(z) − u|, ε·(1 + |u|))``, estimates the
        data-space error, and :class:`InverseAccuracyError` is raised when it exceeds ``tol``
        (default ``√ε`` of the dtype: 1.5e-8 in float64, 3.5e-4 in float32). Sampling needs no
        check (any preimage of ``u`` is a sample), so :meth:`generate` turns it off.
        """
        x = self.patchify(check_finite(u, "noise u"))
        if not check:
            return self._inverse_states(u, x)
        eps = torch.finfo(u.dtype).eps
        tol = math.sqrt(eps) if tol is None else tol
        scale = 1 + u.detach().abs().amax()
        delta = torch.randn(u.shape, generator=torch.Generator().manual_seed(0), dtype=u.dtype).to(u.device)
        delta = delta * (1e-3 * math.sqrt(eps) * scale / delta.abs().amax())
        both = self._inverse_states(torch.cat([u, u + delta]), torch.cat([x, self.patchify(u + delta)]))
        states = [s[: len(u)] for s in both]
        z, z_moved = both[-1].chunk(2)
        if not bool(torch.isfinite(both[-1]).all()):
            raise InverseAccuracyError("the flow's inverse produced NaN/inf latents from finite noise u")
        residual = (self.prior_forward(z)[-1] - u).abs().amax()
        floor = torch.maximum(residual, eps * scale)
        gain = ((z_moved - z).flatten(1).norm(dim=1) / delta.flatten(1).norm(dim=1)).amax()
        error = float(gain * floor)
        if not error <= tol:  # also catches NaN
            raise InverseAccuracyError(
                f"the flow's inverse is ill-conditioned here: estimated data-space error {error:.2e} > tol {tol:.1e} "
                f"(noise-side residual {float(residual):.1e}, amplification {float(gain):.1e} through the patch "
                "contexts); the latents are not recoverable from this noise to that accuracy. Use float64, a "
                "better-trained model, or prior_inverse(u, check=False) if any preimage will do (sampling)"
            )
        return states

    def _inverse_states(self, u: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        states = [u]
        for i in reversed(range(self.active_layers)):
            x = self._layer_inverse(i, x)
            states.append(self.unpatchify(x))
        return states

    # --- likelihood -----------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, noise: torch.Tensor | None = None, **_) -> TarFlowLMOutput:
        """Single-sample ELBO (Eq. 2): ``E_q[log p(x|z)] + E_q[log p(z) − log q(z|x)]``."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        if noise is not None:
            check_finite(noise, "noise")
        z, log_q = self.codebook.encode(input_ids, noise)
        recon = self.codebook.decode_logits(z).gather(-1, input_ids.unsqueeze(-1)).squeeze(-1).sum(-1)
        log_q = log_q.sum(-1)
        log_prior = self.prior_log_prob(z)
        elbo = recon + log_prior - log_q
        return TarFlowLMOutput(
            loss=-elbo.mean() / input_ids.shape[1],
            elbo=elbo,
            reconstruction=recon,
            log_prior=log_prior,
            log_posterior=log_q,
        )

    @torch.no_grad()
    def importance_weighted_bound(
        self, input_ids: torch.Tensor, num_samples: int = 16, samples_per_pass: int = 64
    ) -> torch.Tensor:
        """IWAE bound ``log (1/K) Σ_k p(x, z_k)/q(z_k|x)`` per sequence (nats); K = 1 is the ELBO.

        The K posterior samples are evaluated ``samples_per_pass`` at a time, so memory does not grow with K.
        """
        if num_samples < 1 or samples_per_pass < 1:
            raise ValueError(f"num_samples and samples_per_pass must be >= 1, got {num_samples}, {samples_per_pass}")
        b = input_ids.shape[0]
        elbos = []
        for start in range(0, num_samples, samples_per_pass):
            k = min(samples_per_pass, num_samples - start)
            elbos.append(self(input_ids.repeat(k, 1)).elbo.view(k, b))
        return torch.logsumexp(torch.cat(elbos), dim=0) - math.log(num_samples)

    # --- generation -----------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Most likely token under the tied decoder, per position."""
        return self.codebook.decode_logits(z).argmax(-1)

    @torch.no_grad()
    def multipass_decode(self, u: torch.Tensor) -> list[torch.Tensor]:
        """Hierarchical multi-pass decoding: token ids read off every intermediate state, noise → data.

        ``u`` is fresh noise here, so any preimage is a valid sample: the inverse is not checked
        against a data point (see :meth:`prior_inverse`).
        """
        return [self.decode(z) for z in self.prior_inverse(u, check=False)]

    def sampling_modules(self) -> list[nn.Module]:
        """What ``compile`` compiles for :meth:`generate`: every flow layer's causal Transformer, which the
        inverse calls once per patch with its KV cache (:func:`labcore.compiling.maybe_compile`)."""
        return [flow.net for flow in self.flows]

    @torch.no_grad()
    def generate(
        self,
        batch_size: int = 1,
        seq_len: int | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        return_passes: bool = False,
    ):
        """Sample ``u ~ N(0, τ²I)``, invert the flow, decode with the tied decoder (``seq_len=None``: the maximum)."""
        seq_len = self.config.max_seq_len if seq_len is None else check_count(seq_len, "seq_len")
        check_count(batch_size, "batch_size")
        if seq_len > self.config.max_seq_len:
            raise ValueError(f"seq_len {seq_len} exceeds max_seq_len {self.config.max_seq_len}")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a positive finite number (1.0 = the model), got {temperature}")
        u = temperature * torch.randn(
            batch_size, seq_len, self.config.latent_dim, generator=generator, device=self.device, dtype=self.dtype
        )
        passes = self.multipass_decode(u)
        return passes if return_passes else passes[-1]

    # --- progressive training -------------------------------------------------------------------------
    def set_progressive_stage(self, num_layers: int) -> None:
        """Use the first ``num_layers`` flow layers; freeze all earlier ones but the newest (§4, progressive)."""
        if not 1 <= num_layers <= len(self.flows):
            raise ValueError(f"num_layers must be in [1, {len(self.flows)}], got {num_layers}")
        self.active_layers = num_layers
        for i, layer in enumerate(self.flows):
            layer.requires_grad_(i == num_layers - 1)
        self.codebook.requires_grad_(num_layers == 1)


def _register_auto_classes() -> None:
    """Let ``AutoConfig``/``AutoModel.from_pretrained`` build TarFlowLM folders (importing this module registers)."""
    from transformers import AutoConfig, AutoModel

    AutoConfig.register("tarflow_lm", TarFlowLMConfig, exist_ok=True)
    AutoModel.register(TarFlowLMConfig, TarFlowLMModel, exist_ok=True)


_register_auto_classes()
