"""TypeScore (Sampaio et al., arXiv 2411.02437): fidelity of the text rendered by text-to-image models.

Extract the text from each generated image, normalise it, compare it with the prompt's quoted (instructed)
text by an ensemble of NED, Smith-Waterman and NLCS similarities, and average over the prompt set.
"""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".extract": (
            "CallableExtractor",
            "EasyOCRExtractor",
            "Extractor",
            "RapidOCRExtractor",
            "get_extractor",
            "reading_order",
        ),
        ".generate": ("generate_images", "load_pipeline", "match_images"),
        ".metric": ("SampleScore", "TypeScore", "TypeScoreResult", "bootstrap_ci", "paired_difference_ci"),
        ".normalize": ("RAW", "Normalizer"),
        ".prompts": ("PromptItem", "builtin_prompts", "instructed_text", "load_prompts", "quoted_spans"),
        ".render": ("RenderModel", "corrupt_text", "render_text"),
        ".similarity": (
            "best_matching_span",
            "ensemble_similarity",
            "ned_similarity",
            "nlcs_similarity",
            "similarities",
            "smith_waterman_score",
            "sw_similarity",
        ),
    },
)
