"""Distilled energy diffusion models and Feynman–Kac SMC (Thornton et al., AISTATS 2025, arXiv 2502.12786)."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".distill": ("distill", "distillation_loss"),
        ".edm": ("EDMConfig", "MLPDenoiser", "UNetDenoiser", "karras_sigmas", "train_denoiser"),
        ".energy": ("EnergyModel", "MLPEnergy", "UNetEnergy"),
        ".presets": ("PRESETS", "create"),
        ".smc": (
            "FeynmanKac",
            "SMCResult",
            "box_log_potential",
            "effective_sample_size",
            "mala",
            "reverse_diffusion",
            "smc_sample",
        ),
        ".targets": ("GaussianMixture", "grid", "ring"),
    },
)
