"""Right-to-left language models and reverse-thinking MCQ scoring (Zhang et al., arXiv 2502.18435)."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".model": ("DIRECTION_KEY", "R2LModel", "model_direction"),
        ".official": ("load_official_checkpoint",),
        ".presets": ("PRESETS", "create"),
        ".reversal": (
            "R2LDataCollator",
            "ReversedTextDataset",
            "decode",
            "encode_pair",
            "reverse_ids",
            "reverse_padded",
            "to_model_order",
        ),
        ".scoring": ("PARADIGMS", "MCQScorer", "conditional_entropy_proxy", "continuation_logprobs"),
    },
)
__version__ = "0.1.0"
