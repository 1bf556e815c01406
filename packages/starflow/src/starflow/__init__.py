"""STARFlow (Gu et al., arXiv 2506.06276): deep-shallow autoregressive flows in latent space."""

from starflow.config import PRESETS, StarFlowConfig, preset
from starflow.flow import JacobiOptions, MetaBlock
from starflow.guidance import guided_gaussian
from starflow.model import FlowOutput, StarFlow

__all__ = [
    "StarFlow",
    "StarFlowConfig",
    "MetaBlock",
    "JacobiOptions",
    "FlowOutput",
    "guided_gaussian",
    "preset",
    "PRESETS",
]
