"""DiffuCoder (arXiv 2506.20639): Dream-compatible masked diffusion LM, sampler, AR-ness and coupled-GRPO."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from diffucoder.arness import global_arness, local_arness, order_from_history
from diffucoder.cached import cached_generate
from diffucoder.config import DreamConfig
from diffucoder.coupled_grpo import coupled_grpo_loss, coupled_per_token_logps, leave_one_out_advantages
from diffucoder.generation import DreamModelOutput, diffusion_generate
from diffucoder.losses import masked_diffusion_loss
from diffucoder.modeling import DreamModel, shift_logits

AutoConfig.register("Dream", DreamConfig, exist_ok=True)
AutoModel.register(DreamConfig, DreamModel, exist_ok=True)
AutoModelForMaskedLM.register(DreamConfig, DreamModel, exist_ok=True)
# Not causal, but TRL builds policies/reference models through AutoModelForCausalLM.
AutoModelForCausalLM.register(DreamConfig, DreamModel, exist_ok=True)

__all__ = [
    "DreamConfig",
    "DreamModel",
    "DreamModelOutput",
    "cached_generate",
    "coupled_grpo_loss",
    "coupled_per_token_logps",
    "diffusion_generate",
    "global_arness",
    "leave_one_out_advantages",
    "local_arness",
    "masked_diffusion_loss",
    "order_from_history",
    "shift_logits",
]
