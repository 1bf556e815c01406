"""DiffuCoder (arXiv 2506.20639): Dream-compatible masked diffusion LM, sampler, AR-ness and coupled-GRPO."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from diffucoder.config import DreamConfig
from diffucoder.generation import DreamModelOutput, diffusion_generate
from diffucoder.modeling import DreamModel, shift_logits

AutoConfig.register("Dream", DreamConfig, exist_ok=True)
AutoModel.register(DreamConfig, DreamModel, exist_ok=True)
AutoModelForMaskedLM.register(DreamConfig, DreamModel, exist_ok=True)
# Not causal, but TRL builds policies/reference models through AutoModelForCausalLM.
AutoModelForCausalLM.register(DreamConfig, DreamModel, exist_ok=True)

__all__ = ["DreamConfig", "DreamModel", "DreamModelOutput", "diffusion_generate", "shift_logits"]
