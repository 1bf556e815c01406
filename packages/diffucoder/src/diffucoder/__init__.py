"""DiffuCoder (arXiv 2506.20639): Dream-compatible masked diffusion LM, sampler, AR-ness and coupled-GRPO.

Importing :mod:`diffucoder.modeling` (``from diffucoder import DreamModel``) registers ``Dream`` with transformers'
``AutoConfig``/``AutoModel*``; ``import diffucoder`` alone imports nothing heavy.
"""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".arness": ("global_arness", "local_arness", "order_from_history"),
        ".cached": ("cached_generate",),
        ".config": ("DreamConfig",),
        ".coupled_grpo": ("coupled_grpo_loss", "coupled_per_token_logps", "leave_one_out_advantages"),
        ".generation": ("DreamModelOutput", "diffusion_generate"),
        ".losses": ("masked_diffusion_loss",),
        ".modeling": ("DreamModel", "shift_logits"),
        ".presets": ("PRESETS", "create"),
    },
)
