"""TarFlow: Transformer autoregressive normalizing flows (Zhai et al., 2024, arXiv 2412.06329)."""

from tarflow.block import Guidance, MetaBlock
from tarflow.config import PRESETS, TarFlowConfig, parse_reference_name, preset
from tarflow.layers import KVCache
from tarflow.model import FlowOutput, TarFlow

__all__ = [
    "TarFlow",
    "TarFlowConfig",
    "FlowOutput",
    "MetaBlock",
    "Guidance",
    "KVCache",
    "PRESETS",
    "preset",
    "parse_reference_name",
]
__version__ = "0.1.0"
