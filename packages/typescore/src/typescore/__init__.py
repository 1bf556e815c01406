"""TypeScore (Sampaio et al., arXiv 2411.02437): fidelity of the text rendered by text-to-image models.

Extract the text from each generated image, normalise it, compare it with the prompt's quoted (instructed)
text by an ensemble of NED, Smith-Waterman and NLCS similarities, and average over the prompt set.
"""

from typescore.extract import (
    CallableExtractor,
    EasyOCRExtractor,
    Extractor,
    RapidOCRExtractor,
    get_extractor,
    reading_order,
)
from typescore.generate import generate_images, load_pipeline, match_images
from typescore.metric import SampleScore, TypeScore, TypeScoreResult, bootstrap_ci, paired_difference_ci
from typescore.normalize import RAW, Normalizer
from typescore.prompts import PromptItem, builtin_prompts, instructed_text, load_prompts, quoted_spans
from typescore.render import RenderModel, corrupt_text, render_text
from typescore.similarity import (
    best_matching_span,
    ensemble_similarity,
    ned_similarity,
    nlcs_similarity,
    similarities,
    smith_waterman_score,
    sw_similarity,
)

__all__ = [
    "RAW",
    "CallableExtractor",
    "EasyOCRExtractor",
    "Extractor",
    "Normalizer",
    "PromptItem",
    "RapidOCRExtractor",
    "RenderModel",
    "SampleScore",
    "TypeScore",
    "TypeScoreResult",
    "best_matching_span",
    "bootstrap_ci",
    "builtin_prompts",
    "corrupt_text",
    "ensemble_similarity",
    "generate_images",
    "get_extractor",
    "instructed_text",
    "load_pipeline",
    "load_prompts",
    "match_images",
    "ned_similarity",
    "paired_difference_ci",
    "nlcs_similarity",
    "quoted_spans",
    "reading_order",
    "render_text",
    "similarities",
    "smith_waterman_score",
    "sw_similarity",
]
