"""TarFlowLM (arXiv 2507.00425): language modelling with Transformer autoregressive flows over continuous latents."""

from tarflow_lm.codebook import GaussianCodebook
from tarflow_lm.configuration import PRESETS, TarFlowLMConfig, openwebtext_config, text8_config, tiny_config
from tarflow_lm.mixture import RootFindingError
from tarflow_lm.modeling import TarFlowLMModel, TarFlowLMOutput

__all__ = ["PRESETS", "GaussianCodebook", "RootFindingError", "TarFlowLMConfig", "TarFlowLMModel",
           "TarFlowLMOutput", "openwebtext_config", "text8_config", "tiny_config"]
