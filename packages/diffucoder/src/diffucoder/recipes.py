"""Coupled-GRPO recipes: TRL ``GRPOConfig`` and trainer settings by name.

``official`` is apple/ml-diffucoder's ``recipes/config_coupled_code.yaml`` (run on 8 GPUs: 8 × 5 completions
per micro-batch; one process here gives 5). The recipe's gradient checkpointing and bf16 only save
memory/time and are left to the caller. ``clean`` is this package's earlier small-scale CLI setting.
"""

from __future__ import annotations

from types import MappingProxyType

OFFICIAL_CONFIG = MappingProxyType(
    {
        "learning_rate": 1e-6,
        "adam_beta1": 0.9,
        "adam_beta2": 0.99,
        "weight_decay": 0.1,
        "max_grad_norm": 0.2,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
        "warmup_steps": 0.0001,  # the recipe's warmup_ratio (transformers 5 reads a float < 1 as a ratio)
        "num_train_epochs": 1,
        "seed": 42,
        "beta": 0.01,
        "epsilon": 0.5,
        "scale_rewards": "none",  # the recipe's scale_rewards: false
        "num_generations": 10,
        "num_iterations": 2,
        "per_device_train_batch_size": 5,
        "gradient_accumulation_steps": 2,
        "max_completion_length": 256,
        "sync_ref_model": True,
        "ref_model_sync_steps": 64,
        "reward_weights": [2.0, 0.5],  # code, code_format
    }
)
OFFICIAL_TRAINER = MappingProxyType(
    {"recipe": "official", "diffusion_steps": 256, "generation_temperature": 1.0, "random_masking": True}
)
OFFICIAL_MAX_PROMPT_TOKENS = 200  # the recipe's max_prompt_length (left truncation)
OFFICIAL_SYSTEM_PROMPT = "You are a helpful assistant."

CLEAN_CONFIG = MappingProxyType(
    {
        "learning_rate": 1e-6,
        "beta": 0.01,
        "epsilon": 0.5,
        "scale_rewards": "none",
        "num_generations": 4,
        "num_iterations": 2,
        "per_device_train_batch_size": 4,
        "max_completion_length": 64,
        "max_steps": 100,
        "reward_weights": [2.0, 0.5],
    }
)
CLEAN_TRAINER = MappingProxyType(
    {"recipe": "clean", "diffusion_steps": 64, "generation_temperature": 1.2, "random_masking": True}
)

RECIPES = {"official": (OFFICIAL_CONFIG, OFFICIAL_TRAINER), "clean": (CLEAN_CONFIG, CLEAN_TRAINER)}


def recipe_settings(name: str) -> tuple[dict, dict]:
    """``(GRPOConfig kwargs, CoupledGRPOTrainer kwargs)`` of a named recipe (copies, safe to edit)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    config, trainer = RECIPES[name]
    return dict(config), dict(trainer)
