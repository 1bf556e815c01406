"""Distilled energy diffusion models and Feynman–Kac SMC (Thornton et al., AISTATS 2025, arXiv 2502.12786)."""

from energy_diffusion.distill import distill, distillation_loss
from energy_diffusion.edm import EDMConfig, MLPDenoiser, UNetDenoiser, karras_sigmas, train_denoiser
from energy_diffusion.energy import EnergyModel, MLPEnergy, UNetEnergy
from energy_diffusion.smc import (
    FeynmanKac,
    SMCResult,
    box_log_potential,
    effective_sample_size,
    mala,
    reverse_diffusion,
    smc_sample,
)
from energy_diffusion.targets import GaussianMixture, grid, ring

__all__ = [
    "EDMConfig",
    "MLPDenoiser",
    "UNetDenoiser",
    "karras_sigmas",
    "train_denoiser",
    "EnergyModel",
    "MLPEnergy",
    "UNetEnergy",
    "distill",
    "distillation_loss",
    "FeynmanKac",
    "SMCResult",
    "smc_sample",
    "reverse_diffusion",
    "mala",
    "box_log_potential",
    "effective_sample_size",
    "GaussianMixture",
    "ring",
    "grid",
]
