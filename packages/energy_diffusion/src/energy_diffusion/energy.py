"""Energy-parameterised diffusion models whose implied denoiser is the gradient of a scalar.

With EDM preconditioning and a scalar network ``g(u, c_noise)``, the energy

    E(x, σ) = ‖x‖²/(2(σ² + σ_d²)) − c_out/(σ²·c_in) · g(c_in·x, c_noise)

gives ``D(x, σ) = x − σ²∇ₓE = c_skip·x + c_out·∇ᵤg(c_in·x)``: the EDM denoiser with the raw
network output replaced by a gradient field, so ``−∇E`` is a conservative score and ``E`` itself is
available for Feynman–Kac potentials. ``g(u) = −½‖u − f(u)‖²`` (Salimans & Ho, 2021 style).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from energy_diffusion.edm import _expand, _mlp, preconditioning
from labcore.hub import HubMixin


class EnergyModel(nn.Module):
    """Base class: subclasses implement ``features(u, c_noise)`` (``f`` above, shaped like ``u``)."""

    def __init__(self, sigma_data: float = 0.5):
        super().__init__()
        self.sigma_data = sigma_data

    def features(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sampling_modules(self) -> list[nn.Module]:
        """What ``compile`` compiles for sampling: the feature network ``f`` (:meth:`energy` and :meth:`score`
        call it, not ``forward``; :func:`labcore.compiling.maybe_compile`)."""
        return list(self.children())

    def energy(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """E(x, σ) per example, shape ``(N,)``."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if not bool((sigma > 0).all() & torch.isfinite(sigma).all()):
            raise ValueError(f"sigma must be finite and > 0, got {sigma.flatten()[:4].tolist()}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or inf")
        _, c_out, c_in, c_noise = preconditioning(sigma, self.sigma_data)
        u = _expand(c_in, x) * x
        g = -0.5 * (u - self.features(u, c_noise)).pow(2).flatten(1).sum(1)
        quad = x.pow(2).flatten(1).sum(1) / (2 * (sigma**2 + self.sigma_data**2))
        return quad - c_out / (sigma**2 * c_in) * g

    def score(self, x: torch.Tensor, sigma: torch.Tensor, create_graph: bool | None = None) -> torch.Tensor:
        """−∇ₓE(x, σ). ``create_graph`` (default: whether grad mode is on, like any module's output) keeps the
        graph of the gradient, so the score can be differentiated again (w.r.t. ``x`` or the parameters);
        without it the score is a constant to autograd. Sample under ``torch.no_grad()`` to skip that graph."""
        create_graph = torch.is_grad_enabled() if create_graph is None else create_graph
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x, sigma).sum(), x, create_graph=create_graph)
        return -grad

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, create_graph: bool | None = None) -> torch.Tensor:
        """The implied denoiser ``x + σ²·score``: an EnergyModel is also a Denoiser.

        Differentiable by default whenever grad mode is on (``create_graph`` as in :meth:`score`); with
        ``create_graph=False`` the output's Jacobian would be exactly the identity, so it is refused
        when ``x`` requires grad."""
        if create_graph is False and torch.is_grad_enabled() and x.requires_grad:
            raise ValueError(
                "create_graph=False makes the denoiser's Jacobian the identity (the score is a constant to "
                "autograd) while x requires grad; leave create_graph at its default to differentiate the denoiser"
            )
        return x + _expand(sigma, x) ** 2 * self.score(x, sigma, create_graph)


class MLPEnergy(EnergyModel, HubMixin, library_name="energy_diffusion", paper_url="https://arxiv.org/abs/2502.12786"):
    """Energy model for low-dimensional data: ``f`` is a SiLU MLP of ``(u, c_noise)``.

    ``save_pretrained``/``from_pretrained`` follow labcore's contract; ``hub_info`` keeps the training noise range
    ``sigma_max`` and the ``target`` it was trained on."""

    hub_info_fields = ("sigma_max", "target")

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, sigma_data: float = 0.5):
        super().__init__(sigma_data)
        self.dim = dim
        self.net = _mlp(dim + 1, hidden, depth, dim)

    def features(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([u, c_noise[:, None]], dim=1))


class UNetEnergy(EnergyModel):
    """Energy model for images: ``f`` is a diffusers ``UNet2DModel`` (smooth activations advised).

    Attention runs on SDPA's math backend: the score needs second derivatives, which the fused
    flash/memory-efficient kernels do not provide.
    """

    def __init__(self, unet: nn.Module, sigma_data: float = 0.5):
        super().__init__(sigma_data)
        self.unet = unet

    def features(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel(SDPBackend.MATH):
            return self.unet(u, c_noise).sample
