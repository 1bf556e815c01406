"""STARFlow (Gu et al., arXiv 2506.06276): deep-shallow autoregressive flows in latent space."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".config": ("StarFlowConfig",),
        ".flow": ("JacobiOptions", "MetaBlock"),
        ".guidance": ("guided_gaussian",),
        ".model": ("FlowOutput", "StarFlow"),
        ".presets": ("PRESETS", "create"),
    },
)
