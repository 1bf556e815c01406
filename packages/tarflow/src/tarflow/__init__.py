"""TarFlow: Transformer autoregressive normalizing flows (Zhai et al., 2024, arXiv 2412.06329)."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".block": ("Guidance", "MetaBlock"),
        ".config": ("TarFlowConfig", "parse_reference_name"),
        ".layers": ("KVCache",),
        ".model": ("FlowOutput", "TarFlow"),
        ".presets": ("PRESETS", "create"),
    },
)
__version__ = "0.1.0"
