import pytest
import torch

from diffucoder import PRESETS, DreamConfig, DreamModel
from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)

MASK_ID = 15


def tiny_config(**overrides) -> DreamConfig:
    return PRESETS["tiny"](**overrides)  # 16 symbols: mask 15, pad 14, BOS/EOS 13


def tiny_model(seed: int = 0, **overrides) -> DreamModel:
    torch.manual_seed(seed)
    model = DreamModel(tiny_config(**overrides)).eval()
    with torch.no_grad():  # sharper logits than the 0.02-std init, so orders and confidences are not all ties
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.5)
    return model


def no_mask_hook(mask_id: int = MASK_ID):
    """Logits hook forbidding the mask token as a sampled value."""

    def hook(step, x, logits):
        logits = logits.clone()
        logits[..., mask_id] = -torch.inf
        return logits

    return hook


@pytest.fixture
def model() -> DreamModel:
    return tiny_model()


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture
def make_config():
    return tiny_config


@pytest.fixture
def mask_hook():
    return no_mask_hook


@pytest.fixture
def make_grpo_trainer(tmp_path):
    """A ``CoupledGRPOTrainer`` on a fresh one-layer Dream model with a tokenizer trained on ``texts``."""

    def build(reward_funcs, rows, texts, hidden=16, trainer_kwargs=None, **config):
        from datasets import Dataset
        from trl import GRPOConfig

        from diffucoder.coupled_grpo import CoupledGRPOTrainer
        from diffucoder.tokenizer import dream_config_kwargs, train_tiny_tokenizer

        tok = train_tiny_tokenizer(texts, vocab_size=300)
        cfg = DreamConfig(
            **dream_config_kwargs(tok),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
        torch.manual_seed(0)
        DreamModel(cfg).save_pretrained(tmp_path / "init")
        args = GRPOConfig(
            output_dir=str(tmp_path / "out"),
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            logging_steps=1,
            disable_tqdm=True,
            **config,
        )
        return CoupledGRPOTrainer(
            model=str(tmp_path / "init"),
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            **(trainer_kwargs or {}),
        )

    return build
