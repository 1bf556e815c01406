"""TarFlowLM (arXiv 2507.00425): language modelling with Transformer autoregressive flows over continuous latents.

Importing :mod:`tarflow_lm.modeling` (``from tarflow_lm import TarFlowLMModel``) registers ``tarflow_lm`` with
transformers' ``AutoConfig``/``AutoModel``; ``import tarflow_lm`` alone imports nothing heavy.
"""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".codebook": ("GaussianCodebook",),
        ".configuration": ("TarFlowLMConfig",),
        ".mixture": ("RootFindingError",),
        ".modeling": ("InverseAccuracyError", "TarFlowLMModel", "TarFlowLMOutput"),
        ".presets": ("PRESETS", "create"),
    },
)
