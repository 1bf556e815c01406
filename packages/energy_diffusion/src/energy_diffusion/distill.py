"""Energy distillation: project a teacher's score field onto gradient fields (a Helmholtz projection).

The student energy E_θ minimises E_{σ, x_σ}[λ(σ)‖D_E(x_σ, σ) − D_teacher(x_σ, σ)‖²] with
D_E = x − σ²∇E_θ and the EDM weighting λ(σ). Equivalently λ(σ)σ⁴‖−∇E_θ − s_teacher‖²: in L²(p_σ)
the minimiser is the conservative (gradient) part of the teacher's score, whatever divergence-free
part the teacher carries.
"""

from __future__ import annotations

from functools import partial

import torch

from energy_diffusion.edm import Denoiser, EDMConfig, _expand, loss_weight, sample_sigma
from energy_diffusion.energy import EnergyModel
from energy_diffusion.training import fit


def distillation_loss(
    energy: EnergyModel, teacher: Denoiser, x0: torch.Tensor, cfg: EDMConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The conservative-projection loss on a batch of clean samples ``x0``."""
    sigma = sample_sigma(x0.shape[0], cfg, generator, x0.device)
    noisy = x0 + _expand(sigma, x0) * torch.randn(x0.shape, generator=generator, device=x0.device)
    with torch.no_grad():
        target = teacher(noisy, sigma)
    if target.shape != noisy.shape:
        raise ValueError(
            f"teacher returned shape {tuple(target.shape)} for inputs of shape {tuple(noisy.shape)}: "
            "it must be a denoiser D(x, σ) with output shaped like x"
        )
    student = energy(noisy, sigma, create_graph=True)
    err = (student - target).pow(2).flatten(1).sum(1)
    return (loss_weight(sigma, cfg.sigma_data) * err).mean()


def distill(
    energy: EnergyModel,
    teacher: Denoiser,
    data: torch.Tensor,
    cfg: EDMConfig,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    **fit_kwargs,
) -> list[float]:
    """Distil ``teacher`` into ``energy`` on clean samples ``data`` (resumable: see :func:`training.fit`)."""
    if hasattr(teacher, "eval"):
        teacher.eval()
    return fit(
        energy,
        partial(distillation_loss, energy, teacher, cfg=cfg),  # picklable, for Lightning's spawn strategies
        data,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        aux=[teacher] if isinstance(teacher, torch.nn.Module) else (),
        **fit_kwargs,
    )
