"""Right-to-left language models and reverse-thinking MCQ scoring (Zhang et al., arXiv 2502.18435)."""

from r2l_lm.model import DIRECTION_KEY, R2LModel, model_direction
from r2l_lm.official import load_official_checkpoint
from r2l_lm.reversal import (
    R2LDataCollator,
    ReversedTextDataset,
    decode,
    encode_pair,
    reverse_ids,
    reverse_padded,
    to_model_order,
)
from r2l_lm.scoring import PARADIGMS, MCQScorer, conditional_entropy_proxy, continuation_logprobs

__all__ = [
    "DIRECTION_KEY",
    "PARADIGMS",
    "MCQScorer",
    "R2LDataCollator",
    "R2LModel",
    "ReversedTextDataset",
    "conditional_entropy_proxy",
    "continuation_logprobs",
    "decode",
    "encode_pair",
    "load_official_checkpoint",
    "model_direction",
    "reverse_ids",
    "reverse_padded",
    "to_model_order",
]
__version__ = "0.1.0"
