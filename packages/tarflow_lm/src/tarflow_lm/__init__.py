"""TarFlowLM (arXiv 2507.00425): language modelling with Transformer autoregressive flows over continuous latents."""

from transformers import AutoConfig, AutoModel

from tarflow_lm.codebook import GaussianCodebook
from tarflow_lm.configuration import PRESETS, TarFlowLMConfig, openwebtext_config, text8_config, tiny_config
from tarflow_lm.mixture import RootFindingError
from tarflow_lm.modeling import InverseAccuracyError, TarFlowLMModel, TarFlowLMOutput

AutoConfig.register("tarflow_lm", TarFlowLMConfig, exist_ok=True)
AutoModel.register(TarFlowLMConfig, TarFlowLMModel, exist_ok=True)

__all__ = [
    "PRESETS",
    "GaussianCodebook",
    "InverseAccuracyError",
    "RootFindingError",
    "TarFlowLMConfig",
    "TarFlowLMModel",
    "TarFlowLMOutput",
    "openwebtext_config",
    "text8_config",
    "tiny_config",
]
