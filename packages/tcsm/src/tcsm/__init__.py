"""Target Concrete Score Matching (Zhang et al., 2025, arXiv 2504.16431) for discrete diffusion."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".config": ("TCSMConfig",),
        ".data": ("CharCorpus", "CharVocab"),
        ".likelihood": ("bits_per_char", "masked_nelbo", "nelbo", "perplexity_bound", "uniform_nelbo"),
        ".model": ("TCSMDenoiser",),
        ".noise": ("MaskedProcess", "Schedule", "UniformProcess", "make_process"),
        ".objective": ("TCSMObjective", "factorised", "joint"),
        ".presets": ("PRESETS", "create"),
        ".sampling": ("sample",),
        ".targets": ("DenoiserTarget", "JointTarget", "TiltedTarget", "ar_teacher_target"),
    },
)
